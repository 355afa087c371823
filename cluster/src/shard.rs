//! Sharding (`--shards S`): S independent replication groups inside the same kvnode
//! processes, keys split over them by [`group_of`], transactions across groups by two-phase
//! commit ([`crate::twopc`]).
//!
//! Every process runs one [`NodeCore`] per group, each with its own engine (Raft or
//! Multi-Paxos, one instance per group, elections independent) and its own log in
//! `<data-dir>/shard-<g>/`. They share the process's peer links: a [`ShardFrame`] carries a
//! group's engine message with the group id, so the transport needs no change (it ships any
//! serde type).
//!
//! A node acts for a group only through that group's log. Proposals the 2PC layer makes in
//! a group this node does not lead go to the group's leader as [`ShardFrame::Forward`] and
//! come back as [`ShardFrame::ForwardReply`]; a "not leader" answer with a leader hint is
//! forwarded there, one without a hint retried a little later, until the proposal's
//! deadline, when it counts as unknown. Only "not leader" is ever re-sent: it means the
//! command was not proposed, so nothing applies twice.
//!
//! Client requests: a `/kv` read or write goes to its key's group on this node and is
//! answered as in the unsharded node (421 with that group's leader if this node does not
//! lead it). A transaction is always coordinated here: one group → one `Txn` entry in that
//! group's log (forwarded to its leader); several groups → two-phase commit.
//!
//! [`Shards`] is the synchronous core (one turn: route, submit, iterate every group, feed
//! answers back to the 2PC layer); [`ShardedDriver`] is its async shell, the counterpart of
//! `node.rs`'s driver for the unsharded node.

use crate::driver::{ClientOp, NodeCore, NodeError, NodeIo};
use crate::engine::{Engine, Role, Status};
use crate::membership::ChangeError;
use crate::msg::{Command, Entry, NodeId, Op, Reply};
use crate::node::{
    drive, wall_ms, AdminRequest, ClientRequest, Inputs, RealIo, ShardStatus, StatusHandle, Waiting,
};
use crate::snapshot::Snapshot;
use crate::state_machine::KvStateMachine;
use crate::storage::{Storage, StorageError};
use crate::transport::Transport;
use crate::twopc::{Action, Tag, TwoPc, TwoPcConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::twopc::group_of;

/// Ticks before a proposal that met "not leader, leader unknown" is submitted again.
const RETRY_TICKS: u64 = 2;
/// Ticks between scans of the groups this node leads for stalled prepared transactions.
const SCAN_TICKS: u64 = 5;
/// Most rounds of "iterate every group, feed the answers back" in one turn (each round lets
/// the 2PC layer submit its next step without waiting for the next wake-up).
const ROUNDS: usize = 8;

/// What travels between sharded nodes (inside the transport's frame).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ShardFrame<M> {
    /// An engine message of group `g`.
    Engine {
        /// Group.
        g: u32,
        /// The engine's message.
        m: M,
    },
    /// Propose `cmd` in group `g` on the receiver (believed to lead it); answer `id`.
    Forward {
        /// The sender's proposal id.
        id: u64,
        /// Group.
        g: u32,
        /// What to propose.
        cmd: Command,
    },
    /// The receiver's answer to its forwarded proposal `id`.
    ForwardReply {
        /// The proposal id.
        id: u64,
        /// The group's answer.
        reply: Reply,
    },
}

/// Who waits for a group's answer.
enum Token<T> {
    /// A client of this node (a `/kv` request).
    Client(T),
    /// A proposal of this node's 2PC layer.
    Local(u64),
    /// A proposal forwarded by `from` under its id `id`.
    Remote { from: NodeId, id: u64 },
}

/// A group's [`NodeIo`]: tags its messages with the group, routes answers by token.
struct GroupIo<'a, I, T> {
    g: u32,
    io: &'a mut I,
    local: &'a mut Vec<(u64, Reply)>,
    _t: PhantomData<T>,
}

impl<M, S, T, I: NodeIo<ShardFrame<M>, S, T>> NodeIo<M, S, Token<T>> for GroupIo<'_, I, T> {
    fn send(&mut self, to: &str, msg: M) {
        self.io.send(to, ShardFrame::Engine { g: self.g, m: msg });
    }

    fn persist(
        &mut self,
        storage: &mut S,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
        sync: bool,
    ) -> Result<(), StorageError> {
        self.io
            .persist(storage, truncate_from, entries, hard_state, sync)
    }

    fn save_snapshot(
        &mut self,
        storage: &mut S,
        snapshot: &Snapshot,
        keep_log: bool,
    ) -> Result<(), StorageError>
    where
        S: Storage,
    {
        self.io.save_snapshot(storage, snapshot, keep_log)
    }

    fn reply(&mut self, token: Token<T>, reply: Reply) {
        match token {
            Token::Client(t) => self.io.reply(t, reply),
            Token::Local(id) => self.local.push((id, reply)),
            Token::Remote { from, id } => {
                self.io.send(&from, ShardFrame::ForwardReply { id, reply })
            }
        }
    }

    fn abandoned(&self, token: &Token<T>) -> bool {
        match token {
            Token::Client(t) => self.io.abandoned(t),
            Token::Local(_) | Token::Remote { .. } => false,
        }
    }
}

/// A proposal of the 2PC layer waiting for its group's answer.
struct Pending {
    tag: Tag,
    group: u32,
    cmd: Command,
    deadline: u64,
    /// Submit again at this tick (after "not leader" without a hint).
    retry_at: Option<u64>,
    /// The node it was last forwarded to.
    forwarded: Option<NodeId>,
}

/// The groups of one node and its 2PC layer; see the module doc.
pub struct Shards<E: Engine, S: Storage, T> {
    id: NodeId,
    cores: Vec<NodeCore<E, S, Token<T>>>,
    twopc: TwoPc<T>,
    pending: HashMap<u64, Pending>,
    next_pid: u64,
    tick_ns: u128,
    now: u64,
    last_scan: u64,
    local: Vec<(u64, Reply)>,
}

impl<E: Engine, S: Storage, T> Shards<E, S, T> {
    /// Node `id` with one engine and storage per group (group `g` at position `g`), ticks of
    /// `tick_ns`, and the 2PC settings `cfg`; `boot` makes its transaction ids unique.
    pub fn new(id: NodeId, groups: Vec<(E, S)>, tick_ns: u64, cfg: TwoPcConfig, boot: u64) -> Self {
        let prefix = format!("{id}/{boot:016x}");
        Shards {
            id,
            cores: groups
                .into_iter()
                .map(|(e, s)| NodeCore::new(e, s, tick_ns))
                .collect(),
            twopc: TwoPc::new(cfg, prefix),
            pending: HashMap::new(),
            next_pid: 0,
            tick_ns: u128::from(tick_ns.max(1)),
            now: 0,
            last_scan: 0,
            local: Vec::new(),
        }
    }

    /// Group `g`'s replica of the key-value state machine.
    pub fn state_machine(&self, g: u32) -> Option<&KvStateMachine> {
        self.cores.get(g as usize).map(|c| c.state_machine())
    }

    /// Number of groups.
    pub fn groups(&self) -> u32 {
        self.cores.len() as u32
    }

    /// Each group's engine status and applied index.
    pub fn statuses(&self) -> Vec<(Status, u64)> {
        self.cores
            .iter()
            .map(|c| (c.status(), c.applied_index()))
            .collect()
    }

    /// One turn: catch up on ticks, route peer frames and client requests, run the 2PC
    /// layer's proposals through the groups, answer clients. `frames` and `clients` are
    /// drained.
    pub fn iterate<I: NodeIo<ShardFrame<E::Msg>, S, T>>(
        &mut self,
        mono_ns: u128,
        wall_ms: impl Fn() -> u64,
        frames: &mut Vec<(NodeId, ShardFrame<E::Msg>)>,
        clients: &mut Vec<(ClientOp, T)>,
        io: &mut I,
    ) -> Result<(), NodeError> {
        let n = self.cores.len();
        let mut msgs: Vec<Vec<(NodeId, E::Msg)>> = (0..n).map(|_| Vec::new()).collect();
        let mut reqs: Vec<Vec<(ClientOp, Token<T>)>> = (0..n).map(|_| Vec::new()).collect();
        for (from, f) in frames.drain(..) {
            match f {
                ShardFrame::Engine { g, m } => match msgs.get_mut(g as usize) {
                    Some(q) => q.push((from, m)),
                    None => {
                        tracing::warn!(%from, group = g, "message for a group this node does not have (different --shards?)")
                    }
                },
                ShardFrame::Forward { id, g, cmd } => match reqs.get_mut(g as usize) {
                    Some(q) => q.push((ClientOp::Write(cmd), Token::Remote { from, id })),
                    None => io.send(
                        &from,
                        ShardFrame::ForwardReply {
                            id,
                            reply: Reply::Unavailable(format!(
                                "no group {g} here (different --shards?)"
                            )),
                        },
                    ),
                },
                ShardFrame::ForwardReply { id, reply } => self.answered(id, reply, io),
            }
        }
        let shards = self.twopc.config().shards;
        for (op, t) in clients.drain(..) {
            let key_group = |k: &str| group_of(k, shards) as usize;
            match op {
                ClientOp::Read(key) => {
                    reqs[key_group(&key)].push((ClientOp::Read(key), Token::Client(t)))
                }
                ClientOp::Write(cmd) => match &cmd.op {
                    Op::Txn { .. } => self.twopc.submit(t, cmd),
                    Op::Get { key } | Op::Put { key, .. } | Op::Cas { key, .. } => {
                        let g = key_group(key);
                        reqs[g].push((ClientOp::Write(cmd), Token::Client(t)));
                    }
                    Op::Prepare { .. } | Op::Decide { .. } | Op::Resolve { .. } => {
                        io.reply(t, Reply::Unsupported)
                    }
                },
            }
        }
        let now = u64::try_from(mono_ns / self.tick_ns).unwrap_or(u64::MAX);
        if now > self.now {
            self.now = now;
            self.twopc.tick(now);
            self.expire(&mut reqs);
            if now >= self.last_scan + SCAN_TICKS {
                self.last_scan = now;
                self.scan();
            }
        }
        for round in 0..=ROUNDS {
            self.run_actions(&mut reqs, io);
            for (g, core) in self.cores.iter_mut().enumerate() {
                let mut gio = GroupIo {
                    g: g as u32,
                    io: &mut *io,
                    local: &mut self.local,
                    _t: PhantomData,
                };
                core.iterate(mono_ns, &wall_ms, &mut msgs[g], &mut reqs[g], &mut gio)?;
            }
            // Answers left after the last round are handled at the next turn (within a tick).
            if round == ROUNDS || self.local.is_empty() {
                break;
            }
            for (pid, reply) in std::mem::take(&mut self.local) {
                self.answered(pid, reply, io);
            }
        }
        Ok(())
    }

    /// Turns the 2PC layer's actions into submissions and client answers.
    fn run_actions<I: NodeIo<ShardFrame<E::Msg>, S, T>>(
        &mut self,
        reqs: &mut [Vec<(ClientOp, Token<T>)>],
        io: &mut I,
    ) {
        for a in self.twopc.take_actions() {
            match a {
                Action::Propose {
                    group,
                    cmd,
                    tag,
                    deadline,
                } => {
                    let pid = self.next_pid;
                    self.next_pid += 1;
                    reqs[group as usize].push((ClientOp::Write(cmd.clone()), Token::Local(pid)));
                    self.pending.insert(
                        pid,
                        Pending {
                            tag,
                            group,
                            cmd,
                            deadline,
                            retry_at: None,
                            forwarded: None,
                        },
                    );
                }
                Action::Reply { client, reply } => io.reply(client, reply),
            }
        }
    }

    /// A group answered proposal `pid` (here or, forwarded, elsewhere).
    fn answered<I: NodeIo<ShardFrame<E::Msg>, S, T>>(
        &mut self,
        pid: u64,
        reply: Reply,
        io: &mut I,
    ) {
        let Some(p) = self.pending.get_mut(&pid) else {
            return;
        };
        match &reply {
            Reply::NotLeader(Some(l)) if *l != self.id && p.forwarded.as_ref() != Some(l) => {
                io.send(
                    l,
                    ShardFrame::Forward {
                        id: pid,
                        g: p.group,
                        cmd: p.cmd.clone(),
                    },
                );
                p.forwarded = Some(l.clone());
            }
            Reply::NotLeader(_) => {
                p.forwarded = None;
                p.retry_at = Some(self.now + RETRY_TICKS);
            }
            _ => {
                let p = self.pending.remove(&pid).expect("present");
                self.twopc.on_reply(p.tag, reply);
            }
        }
    }

    /// Proposals past their deadline are answered unknown; those due for a retry resubmitted.
    fn expire(&mut self, reqs: &mut [Vec<(ClientOp, Token<T>)>]) {
        let now = self.now;
        let mut expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for pid in expired {
            let p = self.pending.remove(&pid).expect("present");
            self.twopc.on_reply(p.tag, Reply::Unknown);
        }
        for (pid, p) in &mut self.pending {
            if p.retry_at.is_some_and(|t| t <= now) {
                p.retry_at = None;
                reqs[p.group as usize].push((ClientOp::Write(p.cmd.clone()), Token::Local(*pid)));
            }
        }
    }

    /// Hands the 2PC layer the prepared transactions of every group this node leads.
    fn scan(&mut self) {
        for (g, core) in self.cores.iter().enumerate() {
            let g = g as u32;
            if core.status().role == Role::Leader {
                let prepared = core
                    .state_machine()
                    .prepared()
                    .map(|(txn, p)| (txn, p.coordinator));
                self.twopc.scan_prepared(g, prepared);
            } else {
                self.twopc.forget_group(g);
            }
        }
    }
}

/// The async shell around [`Shards`] (the sharded counterpart of `node::Driver`).
pub struct ShardedDriver<E: Engine, S: Storage> {
    /// The groups.
    pub shards: Shards<E, S, Waiting>,
    /// Peer sender.
    pub transport: Transport<ShardFrame<E::Msg>>,
    /// Peer frames in.
    pub inbound: mpsc::Receiver<(NodeId, ShardFrame<E::Msg>)>,
    /// Client requests in.
    pub clients: mpsc::Receiver<ClientRequest>,
    /// Membership changes in: each is refused ([`ChangeError::Sharded`]).
    pub admin: mpsc::Receiver<AdminRequest>,
    /// Status published for HTTP (group 0 in the top-level fields, every group in `shards`).
    pub status: StatusHandle,
}

impl<E: Engine, S: Storage> ShardedDriver<E, S> {
    /// Runs until `shutdown` fires or a group's storage fails.
    pub async fn run(self, tick: Duration, shutdown: CancellationToken) -> Result<(), NodeError> {
        let ShardedDriver {
            mut shards,
            transport,
            mut inbound,
            mut clients,
            mut admin,
            status,
        } = self;
        let mut io = RealIo {
            transport: &transport,
        };
        let inputs = Inputs {
            inbound: &mut inbound,
            clients: &mut clients,
            admin: &mut admin,
        };
        drive(tick, &shutdown, inputs, |t| {
            // Refused at once (never left waiting): a change would have to be one per group.
            for a in t.admin.drain(..) {
                let _ = a.reply.send(Err(ChangeError::Sharded));
            }
            shards.iterate(t.mono, wall_ms, t.msgs, t.reqs, &mut io)?;
            publish(&shards, &status);
            Ok(())
        })
        .await
    }
}

/// Publishes every group's status (group 0's also in the top-level fields).
fn publish<E: Engine, S: Storage, T>(shards: &Shards<E, S, T>, status: &StatusHandle) {
    let all = shards.statuses();
    let mut s = status.lock().expect("status lock");
    for (g, (st, _)) in all.iter().enumerate() {
        let changed = s
            .shards
            .get(g)
            .is_none_or(|old| old.role != st.role || old.leader != st.leader);
        if changed {
            tracing::info!(group = g, role = st.role.as_str(), term = st.term, leader = ?st.leader, "role/leader change");
        }
    }
    if let Some((st, applied)) = all.first() {
        s.role = st.role;
        s.term = st.term;
        s.leader = st.leader.clone();
        s.commit_index = st.commit_index;
        s.applied_index = *applied;
    }
    s.shards = all
        .into_iter()
        .enumerate()
        .map(|(g, (st, applied))| ShardStatus {
            group: g as u32,
            role: st.role,
            term: st.term,
            leader: st.leader,
            commit_index: st.commit_index,
            applied_index: applied,
        })
        .collect();
}
