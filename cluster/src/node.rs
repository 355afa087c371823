//! The async driver: the one task that owns an [`Engine`], its [`Storage`] and the
//! [`KvStateMachine`], and runs the loop documented in `engine/mod.rs` — ticks from the
//! monotonic clock, peer messages, client requests in; persistence, sends, applies and
//! client replies out.
//!
//! Group commit falls out of the loop shape: while one Ready is being fsynced, new peer
//! messages and client requests queue in their channels; the next iteration drains them all
//! (up to a cap) before taking one Ready, so one fsync covers every entry that arrived
//! meanwhile, and one heartbeat round confirms every read that arrived meanwhile.

use crate::engine::{Engine, Role};
use crate::msg::{Command, NodeId, Payload, Reply, ReqId};
use crate::state_machine::KvStateMachine;
use crate::storage::{Storage, StorageError};
use crate::transport::Transport;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Most inputs of one kind handled per loop iteration (bounds latency of a Ready).
const DRAIN_MAX: usize = 4096;

/// A client operation submitted by the HTTP layer.
#[derive(Debug)]
pub enum ClientOp {
    /// A write or CAS (goes through the engine's ordering).
    Write(Command),
    /// A read of a key.
    Read(String),
}

/// A client request with its reply channel.
#[derive(Debug)]
pub struct ClientRequest {
    /// What to do.
    pub op: ClientOp,
    /// Where the answer goes (dropped sender = unknown outcome).
    pub reply: oneshot::Sender<Reply>,
}

/// What `GET /status` reports, refreshed by the driver after every iteration.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// Node id.
    pub id: NodeId,
    /// Engine name.
    pub engine: &'static str,
    /// Engine role.
    pub role: Role,
    /// Term / ballot.
    pub term: u64,
    /// Known leader.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: u64,
    /// Applied index.
    pub applied_index: u64,
}

/// Shared, cheaply readable status.
pub type StatusHandle = Arc<Mutex<NodeStatus>>;

/// Errors that stop the driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Persisting failed; the node must stop (the engine assumed durability).
    #[error("storage failed, stopping node: {0}")]
    Storage(#[from] StorageError),
}

struct Waiter {
    tx: oneshot::Sender<Reply>,
    key: Option<String>,
}

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Length of one engine tick.
    pub tick: Duration,
}

/// Inputs and outputs of the driver.
pub struct Driver<E: Engine, S: Storage> {
    /// The engine.
    pub engine: E,
    /// Its storage.
    pub storage: S,
    /// Peer sender.
    pub transport: Transport<E::Msg>,
    /// Peer messages in.
    pub inbound: mpsc::Receiver<(NodeId, E::Msg)>,
    /// Client requests in.
    pub clients: mpsc::Receiver<ClientRequest>,
    /// Status published for HTTP.
    pub status: StatusHandle,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<E: Engine, S: Storage> Driver<E, S> {
    /// Runs until `shutdown` fires or storage fails.
    pub async fn run(
        mut self,
        cfg: DriverConfig,
        shutdown: CancellationToken,
    ) -> Result<(), NodeError> {
        let mut sm = KvStateMachine::default();
        let mut waiters: HashMap<ReqId, Waiter> = HashMap::new();
        let mut pending_reads: BTreeMap<u64, Vec<ReqId>> = BTreeMap::new();
        let mut applied: u64 = 0;
        let mut next_req: ReqId = 1;
        let start = Instant::now();
        let tick_ns = cfg.tick.as_nanos().max(1);
        let mut ticks_done: u128 = 0;
        let mut interval = tokio::time::interval(cfg.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut msgs = Vec::new();
        let mut reqs = Vec::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = interval.tick() => {}
                m = self.inbound.recv() => {
                    if let Some(m) = m { msgs.push(m); }
                    while msgs.len() < DRAIN_MAX {
                        match self.inbound.try_recv() { Ok(m) => msgs.push(m), Err(_) => break }
                    }
                }
                r = self.clients.recv() => {
                    match r { Some(r) => reqs.push(r), None => break }
                    while reqs.len() < DRAIN_MAX {
                        match self.clients.try_recv() { Ok(r) => reqs.push(r), Err(_) => break }
                    }
                }
            }
            // Catch up on ticks first (also after SIGSTOP), so leases expire before
            // requests that arrived meanwhile are considered.
            let due = start.elapsed().as_nanos() / tick_ns;
            if due > ticks_done {
                let now = wall_ms();
                while ticks_done < due {
                    self.engine.tick(now);
                    ticks_done += 1;
                }
                if ticks_done & 63 == 0 {
                    waiters.retain(|_, w| !w.tx.is_closed());
                }
            }
            for (from, m) in msgs.drain(..) {
                self.engine.step(&from, m);
            }
            if !reqs.is_empty() {
                self.engine.observe_wall(wall_ms());
            }
            for r in reqs.drain(..) {
                let req = next_req;
                next_req += 1;
                match r.op {
                    ClientOp::Write(cmd) => {
                        waiters.insert(
                            req,
                            Waiter {
                                tx: r.reply,
                                key: None,
                            },
                        );
                        self.engine.propose(req, cmd);
                    }
                    ClientOp::Read(key) => {
                        waiters.insert(
                            req,
                            Waiter {
                                tx: r.reply,
                                key: Some(key.clone()),
                            },
                        );
                        self.engine.read(req, key);
                    }
                }
            }
            while self.engine.has_ready() {
                let rd = self.engine.ready();
                for m in rd.messages {
                    self.transport.send(&m.to, m.msg);
                }
                if rd.truncate_from.is_some() || !rd.entries.is_empty() || rd.hard_state.is_some() {
                    let storage = &mut self.storage;
                    tokio::task::block_in_place(|| {
                        storage.persist(
                            rd.truncate_from,
                            &rd.entries,
                            rd.hard_state.as_deref(),
                            rd.sync,
                        )
                    })?;
                }
                for m in rd.persisted_messages {
                    self.transport.send(&m.to, m.msg);
                }
                self.engine.advance();
                for a in rd.committed {
                    let result = match &a.entry.payload {
                        Payload::Command(c) => Some(sm.apply(c)),
                        Payload::Noop | Payload::Engine(_) => None,
                    };
                    applied = applied.max(a.entry.index);
                    if let (Some(req), Some(result)) = (a.req, result) {
                        if let Some(w) = waiters.remove(&req) {
                            let _ = w.tx.send(result);
                        }
                    }
                }
                for r in rd.reads {
                    if r.index <= applied {
                        answer_read(&mut waiters, &sm, r.req);
                    } else {
                        pending_reads.entry(r.index).or_default().push(r.req);
                    }
                }
                while let Some(entry) = pending_reads.first_entry() {
                    if *entry.key() > applied {
                        break;
                    }
                    for req in entry.remove() {
                        answer_read(&mut waiters, &sm, req);
                    }
                }
                for (req, reply) in rd.replies {
                    if let Some(w) = waiters.remove(&req) {
                        let _ = w.tx.send(reply);
                    }
                }
            }
            let st = self.engine.status();
            let mut s = self.status.lock().expect("status lock");
            if s.role != st.role || s.leader != st.leader {
                tracing::info!(role = st.role.as_str(), term = st.term, leader = ?st.leader, "role/leader change");
            }
            s.role = st.role;
            s.term = st.term;
            s.leader = st.leader;
            s.commit_index = st.commit_index;
            s.applied_index = applied;
        }
        Ok(())
    }
}

fn answer_read(waiters: &mut HashMap<ReqId, Waiter>, sm: &KvStateMachine, req: ReqId) {
    if let Some(w) = waiters.remove(&req) {
        let v = w.key.as_deref().and_then(|k| sm.get(k));
        let _ = w.tx.send(Reply::Value(v));
    }
}
