//! The async shell of the real node around the driver loop of `driver.rs`: tokio timers,
//! the peer channels and the TCP [`Transport`], client requests from the HTTP layer with
//! oneshot replies, fsync off the async workers (`block_in_place`), and the status `GET
//! /status` reads. Everything the loop decides is in [`NodeCore`]; the simulator drives the
//! same core, so this file holds only what a simulation cannot share.
//!
//! Group commit falls out of the loop shape: while one Ready is being fsynced, new peer
//! messages and client requests queue in their channels; the next iteration drains them all
//! (up to [`DRAIN_MAX`]) before taking one Ready, so one fsync covers every entry that
//! arrived meanwhile, and one heartbeat round confirms every read that arrived meanwhile.

use crate::driver::{NodeCore, NodeIo, DRAIN_MAX};
use crate::engine::{Engine, Role};
use crate::msg::{Entry, NodeId, Reply};
use crate::storage::{Storage, StorageError};
use crate::transport::Transport;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use crate::driver::{ClientOp, NodeError};

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
    /// Every group's status under `--shards` (the fields above are group 0's); empty
    /// otherwise.
    pub shards: Vec<ShardStatus>,
}

/// One replication group's status under `--shards`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// Group number.
    pub group: u32,
    /// This node's role in it.
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

/// The node's wall clock, ms since the Unix epoch (0 if it reads before the epoch).
pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The real node's effects: the TCP transport, fsync on a blocking thread, oneshot replies
/// (also the sharded node's, with `M` its frame type).
pub(crate) struct RealIo<'a, M> {
    pub(crate) transport: &'a Transport<M>,
}

/// Runs a driver loop until `shutdown` fires, the HTTP side is gone or `turn` fails: wakes
/// on every tick, peer message or client request, and hands `turn` the monotonic time since
/// the start and everything queued (the unsharded and the sharded node share it).
pub(crate) async fn drive<M>(
    tick: Duration,
    shutdown: &CancellationToken,
    inbound: &mut mpsc::Receiver<(NodeId, M)>,
    clients: &mut mpsc::Receiver<ClientRequest>,
    mut turn: impl FnMut(
        u128,
        &mut Vec<(NodeId, M)>,
        &mut Vec<(ClientOp, oneshot::Sender<Reply>)>,
    ) -> Result<(), NodeError>,
) -> Result<(), NodeError> {
    let start = Instant::now();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut msgs = Vec::new();
    let mut reqs = Vec::new();
    while next_inputs(
        shutdown,
        &mut interval,
        inbound,
        clients,
        &mut msgs,
        &mut reqs,
    )
    .await
    {
        turn(start.elapsed().as_nanos(), &mut msgs, &mut reqs)?;
    }
    Ok(())
}

/// Waits for something to do — a tick of `interval`, peer messages, client requests — and
/// drains what is queued into `msgs` and `reqs` (up to [`DRAIN_MAX`] each). False when the
/// node must stop (shutdown, or the HTTP side is gone).
async fn next_inputs<M>(
    shutdown: &CancellationToken,
    interval: &mut tokio::time::Interval,
    inbound: &mut mpsc::Receiver<(NodeId, M)>,
    clients: &mut mpsc::Receiver<ClientRequest>,
    msgs: &mut Vec<(NodeId, M)>,
    reqs: &mut Vec<(ClientOp, oneshot::Sender<Reply>)>,
) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => return false,
        _ = interval.tick() => {}
        m = inbound.recv() => {
            if let Some(m) = m { msgs.push(m); }
            while msgs.len() < DRAIN_MAX {
                match inbound.try_recv() { Ok(m) => msgs.push(m), Err(_) => break }
            }
        }
        r = clients.recv() => {
            match r { Some(r) => reqs.push((r.op, r.reply)), None => return false }
            while reqs.len() < DRAIN_MAX {
                match clients.try_recv() {
                    Ok(r) => reqs.push((r.op, r.reply)),
                    Err(_) => break,
                }
            }
        }
    }
    true
}

impl<M, S: Storage> NodeIo<M, S, oneshot::Sender<Reply>> for RealIo<'_, M>
where
    M: serde::Serialize + Send + 'static,
{
    fn send(&mut self, to: &str, msg: M) {
        self.transport.send(to, msg);
    }

    fn persist(
        &mut self,
        storage: &mut S,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
        sync: bool,
    ) -> Result<(), StorageError> {
        tokio::task::block_in_place(|| storage.persist(truncate_from, entries, hard_state, sync))
    }

    fn reply(&mut self, token: oneshot::Sender<Reply>, reply: Reply) {
        let _ = token.send(reply);
    }

    fn abandoned(&self, token: &oneshot::Sender<Reply>) -> bool {
        token.is_closed()
    }
}

impl<E: Engine, S: Storage> Driver<E, S> {
    /// Runs until `shutdown` fires or storage fails.
    pub async fn run(
        self,
        cfg: DriverConfig,
        shutdown: CancellationToken,
    ) -> Result<(), NodeError> {
        let Driver {
            engine,
            storage,
            transport,
            mut inbound,
            mut clients,
            status,
        } = self;
        let tick_ns = u64::try_from(cfg.tick.as_nanos()).unwrap_or(u64::MAX);
        let mut core: NodeCore<E, S, oneshot::Sender<Reply>> =
            NodeCore::new(engine, storage, tick_ns);
        let mut io = RealIo {
            transport: &transport,
        };
        drive(cfg.tick, &shutdown, &mut inbound, &mut clients, |mono, msgs, reqs| {
            core.iterate(mono, wall_ms, msgs, reqs, &mut io)?;
            let st = core.status();
            let mut s = status.lock().expect("status lock");
            if s.role != st.role || s.leader != st.leader {
                tracing::info!(role = st.role.as_str(), term = st.term, leader = ?st.leader, "role/leader change");
            }
            s.role = st.role;
            s.term = st.term;
            s.leader = st.leader;
            s.commit_index = st.commit_index;
            s.applied_index = core.applied_index();
            Ok(())
        })
        .await
    }
}
