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
#[derive(Debug)]
pub enum Waiting {
    /// A client request's reply channel.
    Client(oneshot::Sender<Reply>),
    /// A membership change's reply channel.
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
    /// Every group's status under `--shards` (the fields above are group 0's); empty
    /// otherwise.
    pub shards: Vec<ShardStatus>,
    /// The engine's configuration (engines with membership changes).
    pub membership: Option<Membership>,
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
    /// Membership changes in.
    pub admin: mpsc::Receiver<AdminRequest>,
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

/// The channels a driver loop reads: peer messages, client requests, membership changes.
pub(crate) struct Inputs<'a, M> {
    /// Peer messages (or frames) in.
    pub(crate) inbound: &'a mut mpsc::Receiver<(NodeId, M)>,
    /// Client requests in.
    pub(crate) clients: &'a mut mpsc::Receiver<ClientRequest>,
    /// Membership changes in.
    pub(crate) admin: &'a mut mpsc::Receiver<AdminRequest>,
}

/// What one turn of a driver loop gets: the monotonic time since the start and everything
/// queued since the last turn (the turn drains what it handles).
pub(crate) struct Turn<'a, M> {
    /// Nanoseconds since the loop started.
    pub(crate) mono: u128,
    /// Peer messages.
    pub(crate) msgs: &'a mut Vec<(NodeId, M)>,
    /// Client requests with their waiters.
    pub(crate) reqs: &'a mut Vec<(ClientOp, Waiting)>,
    /// Membership changes.
    pub(crate) admin: &'a mut Vec<AdminRequest>,
}

/// Runs a driver loop until `shutdown` fires, the HTTP side is gone or `turn` fails: wakes
/// on every tick, peer message, client request or membership change and hands `turn`
/// everything queued (the unsharded and the sharded node share it).
pub(crate) async fn drive<M>(
    tick: Duration,
    shutdown: &CancellationToken,
    mut inputs: Inputs<'_, M>,
    mut turn: impl FnMut(Turn<'_, M>) -> Result<(), NodeError>,
) -> Result<(), NodeError> {
    let start = Instant::now();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut msgs = Vec::new();
    let mut reqs = Vec::new();
    let mut admin = Vec::new();
    while next_inputs(
        shutdown,
        &mut interval,
        &mut inputs,
        &mut msgs,
        &mut reqs,
        &mut admin,
    )
    .await
    {
        turn(Turn {
            mono: start.elapsed().as_nanos(),
            msgs: &mut msgs,
            reqs: &mut reqs,
            admin: &mut admin,
        })?;
    }
    Ok(())
}

/// Waits for something to do — a tick of `interval`, peer messages, client requests,
/// membership changes — and drains what is queued into `msgs`, `reqs` and `admin` (up to
/// [`DRAIN_MAX`] each). False when the node must stop (shutdown, or the HTTP side is gone).
async fn next_inputs<M>(
    shutdown: &CancellationToken,
    interval: &mut tokio::time::Interval,
    inputs: &mut Inputs<'_, M>,
    msgs: &mut Vec<(NodeId, M)>,
    reqs: &mut Vec<(ClientOp, Waiting)>,
    admin: &mut Vec<AdminRequest>,
) -> bool {
    let Inputs {
        inbound,
        clients,
        admin: admin_rx,
    } = inputs;
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
            match r { Some(r) => reqs.push((r.op, Waiting::Client(r.reply))), None => return false }
            while reqs.len() < DRAIN_MAX {
                match clients.try_recv() {
                    Ok(r) => reqs.push((r.op, Waiting::Client(r.reply))),
                    Err(_) => break,
                }
            }
        }
        Some(a) = admin_rx.recv() => admin.push(a),
    }
    true
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
        let inputs = Inputs {
            inbound: &mut inbound,
            clients: &mut clients,
            admin: &mut admin,
        };
        drive(cfg.tick, &shutdown, inputs, |t| {
            for a in t.admin.drain(..) {
                if let Err((e, Waiting::Admin(w))) =
                    core.change_membership(a.change, Waiting::Admin(a.reply))
                {
                    let _ = w.send(Err(e));
                }
            }
            core.iterate(t.mono, wall_ms, t.msgs, t.reqs, &mut io)?;
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
            Ok(())
        })
        .await
    }
}
