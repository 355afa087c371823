//! The driver loop of `engine/mod.rs`, once, as synchronous code: [`NodeCore`] owns an
//! [`Engine`], its [`Storage`], the [`KvStateMachine`], the clients waiting for answers, the
//! reads waiting for the applied index, and the tick counter. Its one entry point,
//! [`NodeCore::iterate`], is one turn of the loop: catch up on ticks, step peer messages,
//! submit client requests, then act on every `Ready` in the order the contract fixes.
//!
//! Two shells drive it and nothing else does: the real node (`node.rs`: tokio timers,
//! channels, the TCP transport, oneshot replies, fsync in `block_in_place`) and the
//! deterministic simulator (the `sim` crate: simulated time, network, disks and clients).
//! Each shell only gathers inputs and carries out effects through [`NodeIo`], so what the
//! simulator proves about the loop holds for the real node: it is the same code.
//!
//! A shell decides what a reply token is (`T`): a oneshot sender for the real node, an id of
//! a simulated HTTP exchange for the simulator, nothing at all for white-box engine tests.

use crate::engine::{Apply, Engine, ReadReady, Status};
use crate::membership::{ChangeError, ConfChange};
use crate::msg::{Command, Entry, Payload, Reply, ReqId};
use crate::snapshot::Snapshot;
use crate::state_machine::KvStateMachine;
use crate::storage::{Storage, StorageError};
use std::collections::{BTreeMap, HashMap};

/// Most inputs of one kind a shell hands to one [`NodeCore::iterate`] (bounds the latency of
/// a Ready: the rest waits for the next turn).
pub const DRAIN_MAX: usize = 4096;

/// A client operation (submitted by the HTTP layer, or by a simulated client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// A write or CAS (goes through the engine's ordering).
    Write(Command),
    /// A read of a key.
    Read(String),
}

/// Errors that stop the driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Persisting failed; the node must stop (the engine assumed durability).
    #[error("storage failed, stopping node: {0}")]
    Storage(#[from] StorageError),
    /// A snapshot's state machine bytes do not decode (its checksums held: a bug or a
    /// snapshot from an incompatible version).
    #[error("snapshot at index {index} holds an undecodable state machine: {reason}")]
    Snapshot {
        /// The snapshot's index.
        index: u64,
        /// The decoder's complaint.
        reason: String,
    },
}

/// The effects of one turn of the loop, carried out by the shell. The driver calls them in
/// the order `engine/mod.rs` fixes: `send` for a Ready's messages, `persist`, `send` for its
/// persisted messages, then `reply` for clients.
pub trait NodeIo<M, S, T> {
    /// Hands a peer message to the network (must not block).
    fn send(&mut self, to: &str, msg: M);
    /// Makes a Ready durable ([`Storage::persist`]); returns only when it is, if `sync`.
    fn persist(
        &mut self,
        storage: &mut S,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
        sync: bool,
    ) -> Result<(), StorageError>;
    /// Makes a snapshot durable and compacts the stored log ([`Storage::save_snapshot`]).
    fn save_snapshot(
        &mut self,
        storage: &mut S,
        snapshot: &Snapshot,
        keep_log: bool,
    ) -> Result<(), StorageError>
    where
        S: Storage,
    {
        storage.save_snapshot(snapshot, keep_log)
    }
    /// Answers a client.
    fn reply(&mut self, token: T, reply: Reply);
    /// True when nobody waits for this token any more (the HTTP request timed out); such
    /// waiters are forgotten every 64 ticks.
    fn abandoned(&self, _token: &T) -> bool {
        false
    }
    /// Observes a committed entry as the engine handed it out (white-box engine tests).
    fn on_apply(&mut self, _apply: &Apply) {}
    /// Observes a read the engine declared servable (white-box engine tests).
    fn on_read(&mut self, _read: &ReadReady) {}
    /// Observes a direct engine reply (white-box engine tests).
    fn on_reply(&mut self, _req: ReqId, _reply: &Reply) {}
    /// Observes a snapshot taken here (`installed` false) or loaded into the state machine
    /// (`installed` true: received from a peer or read from disk at startup).
    fn on_snapshot(&mut self, _snapshot: &Snapshot, _installed: bool) {}
}

struct Waiter<T> {
    token: T,
    /// The key of a read (answered from the state machine); `None` for writes.
    key: Option<String>,
}

/// One node's engine, storage, state machine and waiting clients; see the module doc.
pub struct NodeCore<E: Engine, S: Storage, T> {
    engine: E,
    storage: S,
    sm: KvStateMachine,
    waiters: HashMap<ReqId, Waiter<T>>,
    /// Reads confirmed by the engine, waiting for `applied` to reach their index.
    pending_reads: BTreeMap<u64, Vec<ReqId>>,
    applied: u64,
    next_req: ReqId,
    /// Length of one tick on the node's monotonic clock, ns.
    tick_ns: u128,
    ticks_done: u128,
}

impl<E: Engine, S: Storage, T> NodeCore<E, S, T> {
    /// A node that starts now (its monotonic clock reads 0) with ticks of `tick_ns`.
    pub fn new(engine: E, storage: S, tick_ns: u64) -> Self {
        NodeCore {
            engine,
            storage,
            sm: KvStateMachine::default(),
            waiters: HashMap::new(),
            pending_reads: BTreeMap::new(),
            applied: 0,
            next_req: 1,
            tick_ns: u128::from(tick_ns.max(1)),
            ticks_done: 0,
        }
    }

    /// The engine (status, white-box tests).
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The engine, mutably (white-box tests feed it directly).
    pub fn engine_mut(&mut self) -> &mut E {
        &mut self.engine
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, mutably (the simulator completes fsyncs and crashes disks).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// The key-value state machine.
    pub fn state_machine(&self) -> &KvStateMachine {
        &self.sm
    }

    /// Highest log index applied to the state machine.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// The engine's status.
    pub fn status(&self) -> Status {
        self.engine.status()
    }

    /// Clients still waiting for an answer.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Stops the node and gives its storage back (a crash: every waiting client is dropped).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Submits a membership change (the admin API). A refusal comes back at once with the
    /// token; otherwise `token` is answered like a write (when the change commits, or with
    /// `Unknown` if leadership is lost). Call [`NodeCore::process`] (or `iterate`) after.
    pub fn change_membership(
        &mut self,
        change: ConfChange,
        token: T,
    ) -> Result<(), (ChangeError, T)> {
        let req = self.next_req;
        self.next_req += 1;
        match self.engine.change_membership(req, change) {
            Ok(()) => {
                self.waiters.insert(req, Waiter { token, key: None });
                Ok(())
            }
            Err(e) => Err((e, token)),
        }
    }

    /// One turn of the loop (`engine/mod.rs`, steps 1 to 9).
    ///
    /// `mono_ns` is the node's monotonic clock (ns since it started): every tick boundary it
    /// passed since the last turn is a `tick`, all with one reading of `wall_ms`, so a node
    /// that was stopped catches up before anything that arrived meanwhile is considered
    /// (leases expire first). Then every message in `msgs` is stepped and every request in
    /// `reqs` submitted (both are drained), and every Ready is acted on through `io`. A
    /// message's sender is anything that reads as a node id (`NodeId` on the real node).
    pub fn iterate<I: NodeIo<E::Msg, S, T>, F: AsRef<str>>(
        &mut self,
        mono_ns: u128,
        wall_ms: impl Fn() -> u64,
        msgs: &mut Vec<(F, E::Msg)>,
        reqs: &mut Vec<(ClientOp, T)>,
        io: &mut I,
    ) -> Result<(), NodeError> {
        let due = mono_ns / self.tick_ns;
        if due > self.ticks_done {
            let now = wall_ms();
            while self.ticks_done < due {
                self.engine.tick(now);
                self.ticks_done += 1;
            }
            if self.ticks_done & 63 == 0 {
                self.waiters.retain(|_, w| !io.abandoned(&w.token));
            }
        }
        for (from, m) in msgs.drain(..) {
            self.engine.step(from.as_ref(), m);
        }
        if !reqs.is_empty() {
            self.engine.observe_wall(wall_ms());
        }
        for (op, token) in reqs.drain(..) {
            let req = self.next_req;
            self.next_req += 1;
            match op {
                ClientOp::Write(cmd) => {
                    self.waiters.insert(req, Waiter { token, key: None });
                    self.engine.propose(req, cmd);
                }
                ClientOp::Read(key) => {
                    self.waiters.insert(
                        req,
                        Waiter {
                            token,
                            key: Some(key.clone()),
                        },
                    );
                    self.engine.read(req, key);
                }
            }
        }
        self.process(io)
    }

    /// Acts on every pending Ready (steps 2 to 9); white-box tests that feed the engine
    /// directly call this alone.
    pub fn process<I: NodeIo<E::Msg, S, T>>(&mut self, io: &mut I) -> Result<(), NodeError> {
        while self.engine.has_ready() {
            let rd = self.engine.ready();
            for m in rd.messages {
                io.send(&m.to, m.msg);
            }
            if let Some(inst) = rd.install.as_ref().filter(|i| !i.durable) {
                io.save_snapshot(&mut self.storage, &inst.snapshot, inst.keep_log)?;
            }
            if rd.truncate_from.is_some() || !rd.entries.is_empty() || rd.hard_state.is_some() {
                io.persist(
                    &mut self.storage,
                    rd.truncate_from,
                    &rd.entries,
                    rd.hard_state.as_deref(),
                    rd.sync,
                )?;
            }
            for m in rd.persisted_messages {
                io.send(&m.to, m.msg);
            }
            self.engine.advance();
            if let Some(inst) = rd.install {
                let snap = &inst.snapshot;
                self.sm = KvStateMachine::decode(&snap.data).map_err(|e| NodeError::Snapshot {
                    index: snap.index,
                    reason: e.to_string(),
                })?;
                self.applied = snap.index;
                io.on_snapshot(snap, true);
            }
            for a in rd.committed {
                io.on_apply(&a);
                let result = match &a.entry.payload {
                    Payload::Command(c) => Some(self.sm.apply(c)),
                    Payload::Noop | Payload::Engine(_) => None,
                };
                self.applied = self.applied.max(a.entry.index);
                if let (Some(req), Some(result)) = (a.req, result) {
                    if let Some(w) = self.waiters.remove(&req) {
                        io.reply(w.token, result);
                    }
                }
            }
            if let Some(req) = rd.snapshot {
                let snap = Snapshot {
                    index: req.index,
                    term: req.term,
                    meta: req.meta,
                    data: self.sm.encode(),
                };
                io.save_snapshot(&mut self.storage, &snap, true)?;
                io.on_snapshot(&snap, false);
                self.engine.snapshot_taken(&snap);
            }
            for r in rd.reads {
                io.on_read(&r);
                if r.index <= self.applied {
                    self.answer_read(r.req, io);
                } else {
                    self.pending_reads.entry(r.index).or_default().push(r.req);
                }
            }
            while let Some(entry) = self.pending_reads.first_entry() {
                if *entry.key() > self.applied {
                    break;
                }
                for req in entry.remove() {
                    self.answer_read(req, io);
                }
            }
            for (req, reply) in rd.replies {
                io.on_reply(req, &reply);
                if let Some(w) = self.waiters.remove(&req) {
                    io.reply(w.token, reply);
                }
            }
        }
        Ok(())
    }

    fn answer_read<I: NodeIo<E::Msg, S, T>>(&mut self, req: ReqId, io: &mut I) {
        if let Some(w) = self.waiters.remove(&req) {
            let v = w.key.as_deref().and_then(|k| self.sm.get(k));
            io.reply(w.token, Reply::Value(v));
        }
    }
}
