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
//!
//! Membership changes arrive on their own channel ([`AdminRequest`]): a refusal is answered
//! at once, an accepted change like a write. When the engine's configuration names a node
//! the transport cannot reach yet, the shell starts a sender to the address the change
//! entry carries (see `membership.rs` for which address wins).

use crate::driver::{NodeCore, NodeIo, DRAIN_MAX};
use crate::engine::{Engine, Role};
use crate::membership::{ChangeError, ConfChange, Membership};
use crate::msg::{Entry, NodeId, Reply};
use crate::snapshot::Snapshot;
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

/// The answer to a membership change: the engine's reply (`Ok` once committed, `Unknown`
/// when leadership was lost first), or why it was refused.
pub type AdminReply = Result<Reply, ChangeError>;

/// A membership change from the admin API with its reply channel.
#[derive(Debug)]
pub struct AdminRequest {
    /// The change.
    pub change: ConfChange,
    /// Where the answer goes (dropped sender = unknown outcome).
    pub reply: oneshot::Sender<AdminReply>,
}

/// Who waits for an answer: a client request or a membership change.
enum Waiting {
    Client(oneshot::Sender<Reply>),
    Admin(oneshot::Sender<AdminReply>),
}

impl Waiting {
    fn closed(&self) -> bool {
        match self {
            Waiting::Client(t) => t.is_closed(),
            Waiting::Admin(t) => t.is_closed(),
        }
    }
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
    /// The engine's configuration (engines with membership changes).
    pub membership: Option<Membership>,
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
    /// Membership changes in.
    pub admin: mpsc::Receiver<AdminRequest>,
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

impl<M, S: Storage> NodeIo<M, S, Waiting> for RealIo<'_, M>
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

    fn save_snapshot(
        &mut self,
        storage: &mut S,
        snapshot: &Snapshot,
        keep_log: bool,
    ) -> Result<(), StorageError> {
        let start = Instant::now();
        tokio::task::block_in_place(|| storage.save_snapshot(snapshot, keep_log))?;
        tracing::info!(
            index = snapshot.index,
            bytes = snapshot.data.len(),
            keep_log,
            elapsed_ms = start.elapsed().as_secs_f64() * 1e3,
            "snapshot durable, log compacted"
        );
        Ok(())
    }

    fn reply(&mut self, token: Waiting, reply: Reply) {
        match token {
            Waiting::Client(t) => {
                let _ = t.send(reply);
            }
            Waiting::Admin(t) => {
                let _ = t.send(Ok(reply));
            }
        }
    }

    fn abandoned(&self, token: &Waiting) -> bool {
        token.closed()
    }
}

/// Starts senders to members the transport cannot reach yet, at the address their change
/// entry gives for this node (flags' addresses were set at start and win).
fn dial_new_members<M: serde::Serialize + Send + 'static>(
    transport: &Transport<M>,
    me: &str,
    conf: &Membership,
) {
    for (id, addr) in &conf.addrs {
        if id != me && !transport.has_peer(id) {
            let a = addr.for_dialer(me);
            tracing::info!(peer = %id, addr = a, "dialing new member");
            transport.set_peer(id, a);
        }
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
            mut admin,
            status,
        } = self;
        let me = status.lock().expect("status lock").id.clone();
        let tick_ns = u64::try_from(cfg.tick.as_nanos()).unwrap_or(u64::MAX);
        let mut core: NodeCore<E, S, Waiting> = NodeCore::new(engine, storage, tick_ns);
        let mut conf_seen = None;
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
                    match r { Some(r) => reqs.push((r.op, Waiting::Client(r.reply))), None => break }
                    while reqs.len() < DRAIN_MAX {
                        match clients.try_recv() {
                            Ok(r) => reqs.push((r.op, Waiting::Client(r.reply))),
                            Err(_) => break,
                        }
                    }
                }
                Some(a) = admin.recv() => {
                    if let Err((e, Waiting::Admin(t))) =
                        core.change_membership(a.change, Waiting::Admin(a.reply))
                    {
                        let _ = t.send(Err(e));
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
            let conf = core.engine().membership();
            let conf_changed = conf.map(|c| c.index) != conf_seen;
            if let Some(c) = conf.filter(|_| conf_changed) {
                dial_new_members(&transport, &me, c);
            }
            conf_seen = conf.map(|c| c.index);
            let mut s = status.lock().expect("status lock");
            if conf_changed {
                s.membership = conf.cloned();
            }
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
