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

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The real node's effects: the TCP transport, fsync on a blocking thread, oneshot replies.
struct RealIo<'a, M> {
    transport: &'a Transport<M>,
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
        let start = Instant::now();
        let mut interval = tokio::time::interval(cfg.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut msgs = Vec::new();
        let mut reqs = Vec::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = interval.tick() => {}
                m = inbound.recv() => {
                    if let Some(m) = m { msgs.push(m); }
                    while msgs.len() < DRAIN_MAX {
                        match inbound.try_recv() { Ok(m) => msgs.push(m), Err(_) => break }
                    }
                }
                r = clients.recv() => {
                    match r { Some(r) => reqs.push((r.op, r.reply)), None => break }
                    while reqs.len() < DRAIN_MAX {
                        match clients.try_recv() {
                            Ok(r) => reqs.push((r.op, r.reply)),
                            Err(_) => break,
                        }
                    }
                }
            }
            core.iterate(
                start.elapsed().as_nanos(),
                wall_ms,
                &mut msgs,
                &mut reqs,
                &mut io,
            )?;
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
        }
        Ok(())
    }
}
