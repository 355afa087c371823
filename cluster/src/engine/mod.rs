//! The replication engine contract: a pure, deterministic state machine that orders client
//! commands. Everything with I/O (sockets, disk, clocks, HTTP) lives outside, in
//! `node.rs` (the driver), `transport.rs`, `storage.rs` and `http.rs`, and is shared by every
//! engine. The shape follows raft-rs's `RawNode`: inputs are [`Engine::tick`],
//! [`Engine::step`], [`Engine::propose`] and [`Engine::read`]; the output is a [`Ready`].
//!
//! # Layering
//!
//! ```text
//!   http.rs  --ClientRequest-->  node.rs (driver, async, owns everything below)
//!                                  |  tick / step / propose / read
//!                                  v
//!                              Engine (engine/raft.rs, engine/multipaxos.rs, engine/nwr.rs)
//!                                  |  Ready
//!                                  v
//!        storage.rs (persist) -> transport.rs (send) -> state_machine.rs (apply) -> replies
//! ```
//!
//! # The driver loop (what `node.rs` does, in order)
//!
//! 1. Feed inputs: `tick(now)` once per `--tick-ms` of the *monotonic* clock (catching up on
//!    missed ticks, e.g. after SIGSTOP), `step(from, msg)` for every peer message,
//!    `propose(req, cmd)` for writes (and for reads under `--read log`), `read(req, key)`
//!    for reads.
//! 2. If [`Engine::has_ready`], take [`Engine::ready`]. The driver must not call any input
//!    method between `ready()` and `advance()`.
//! 3. Send [`Ready::messages`] right away (they do not depend on this Ready's persistence,
//!    e.g. a Raft leader's AppendEntries may go out in parallel with its own fsync).
//! 4. Persist: first a snapshot received from a peer ([`Ready::install`], unless it is the
//!    node's own from disk), with [`Storage::save_snapshot`](crate::storage::Storage); then
//!    apply [`Ready::truncate_from`], then write [`Ready::entries`] (an entry replaces any
//!    stored entry at the same index), then [`Ready::hard_state`]; fsync if
//!    [`Ready::sync`]. If persisting fails the node exits: an engine must never believe
//!    something is durable that is not.
//! 5. Send [`Ready::persisted_messages`] (votes, acks: promises that need the fsync).
//! 6. Call [`Engine::advance`]: everything from this Ready is now durable.
//! 7. Load [`Ready::install`]'s snapshot into the state machine (its applied index becomes
//!    the snapshot's), then apply [`Ready::committed`] in order; an entry whose `req` is set
//!    answers that waiting client with the state machine's result. If [`Ready::snapshot`]
//!    asks for one, serialize the state machine (now at that index), make it durable and
//!    compact the stored log ([`Storage::save_snapshot`](crate::storage::Storage)), and hand
//!    it back with [`Engine::snapshot_taken`].
//! 8. [`Ready::reads`]: answer each with a state-machine read once the applied index is at
//!    least `index` (read-index / lease reads).
//! 9. [`Ready::replies`]: answer those clients directly (not-leader, unknown outcome after a
//!    leadership loss, or — for leaderless engines like NWR — the final value after R
//!    replies).
//!
//! # Adding an engine
//!
//! Write `engine/<name>.rs` with a type implementing [`Engine`] (its own `Msg` type, its own
//! hard-state encoding in bytes), add a variant to `EngineKind` in `cli.rs` and one match
//! arm there that constructs it from [`EngineConfig`] and [`crate::storage::Recovered`].
//! Transport, storage, state machine and HTTP are generic and need no change.
//!
//! A leaderless engine (NWR) answers client requests itself: it fans out messages on
//! `propose`/`read`, counts replies in `step`, and puts the final [`Reply`] in
//! [`Ready::replies`]. It may keep its replicas' data as entries in storage (any index, holes
//! allowed) and never emit `committed` at all.
//!
//! # Determinism
//!
//! Engines take randomness only from [`EngineConfig::seed`] (a `ChaCha8Rng`) and time only
//! from `tick` (logical ticks plus the wall-clock reading passed in), so a seed and an input
//! sequence replay a run exactly. Tests drive engines with an in-memory network, no sockets.

pub mod multipaxos;
pub mod nwr;
pub mod raft;
#[cfg(test)]
pub mod sim;

use crate::membership::{ChangeError, ConfChange, Membership};
use crate::msg::{Command, Entry, NodeId, Reply, ReqId};
use crate::snapshot::{Install, Snapshot, SnapshotRequest, DEFAULT_CHUNK};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;

/// How linearizable (or deliberately not) reads are served; engines support what makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Leader confirms it is still leader with a heartbeat round (Raft read-index). Safe.
    ReadIndex,
    /// Leader serves reads while its lease (measured in monotonic ticks) holds. Safe if clock
    /// *rates* are sane.
    Lease,
    /// Reads go through the log like writes. Safe, slowest.
    Log,
    /// UNSAFE: the leader answers from local state without confirming leadership.
    UnsafeLocal,
    /// UNSAFE: lease measured on the wall clock (breaks under clock skew/jumps).
    UnsafeLeaseWallclock,
}

/// Static configuration of one engine instance.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's id.
    pub id: NodeId,
    /// The other nodes' ids (not including `id`).
    pub peers: Vec<NodeId>,
    /// Seed for all engine randomness (election timeouts, ...).
    pub seed: u64,
    /// Base election timeout in ticks (randomized in `[election_ticks, 2*election_ticks)`).
    pub election_ticks: u64,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u64,
    /// Length of a tick in milliseconds (to convert tick timeouts to wall-clock time).
    pub tick_ms: u64,
    /// Read strategy.
    pub read_mode: ReadMode,
    /// Raft: run a pre-vote round before campaigning.
    pub prevote: bool,
    /// Raft UNSAFE: commit entries of earlier terms by counting replicas (Figure 8 bug).
    pub unsafe_commit_previous_term: bool,
    /// Max entries per AppendEntries message (batching).
    pub max_batch: usize,
    /// Max un-acknowledged entries in flight per follower (pipelining window).
    pub max_inflight: u64,
    /// Snapshot the state machine and compact the log once this many entries were applied
    /// since the last snapshot (0: never by count).
    pub snapshot_entries: u64,
    /// ... or once the entries applied since the last snapshot take this many bytes
    /// (serialized; 0: never by size).
    pub snapshot_bytes: u64,
    /// Largest piece of a snapshot sent to a peer in one message.
    pub snapshot_chunk: usize,
    /// Raft: this node joins an existing cluster: it starts with no configuration (it is
    /// nobody's voter and never campaigns) until the leader's log or snapshot gives it one.
    pub join: bool,
    /// Raft UNSAFE: accept changes of several voters in one configuration entry.
    pub unsafe_multi_server_change: bool,
}

impl EngineConfig {
    /// A config with test-friendly defaults for node `id` among `peers`.
    pub fn new(id: &str, peers: &[&str]) -> Self {
        EngineConfig {
            id: id.to_string(),
            peers: peers.iter().map(|p| p.to_string()).collect(),
            seed: 0,
            election_ticks: 10,
            heartbeat_ticks: 2,
            tick_ms: 10,
            read_mode: ReadMode::ReadIndex,
            prevote: false,
            unsafe_commit_previous_term: false,
            max_batch: 512,
            max_inflight: 8192,
            snapshot_entries: 0,
            snapshot_bytes: 0,
            snapshot_chunk: DEFAULT_CHUNK,
            join: false,
            unsafe_multi_server_change: false,
        }
    }
}

/// A committed log entry to apply, with the client waiting for it on this node (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    /// The entry.
    pub entry: Entry,
    /// The request that proposed it here, if this node still waits for it.
    pub req: Option<ReqId>,
}

/// A read that may be served from the state machine once `applied_index >= index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReady {
    /// The waiting request.
    pub req: ReqId,
    /// Minimum applied index for a linearizable answer.
    pub index: u64,
}

/// A peer message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound<M> {
    /// Destination node.
    pub to: NodeId,
    /// Message.
    pub msg: M,
}

/// Everything an engine wants done, taken by [`Engine::ready`]; see the module doc for the
/// order in which the driver must act on the fields.
#[derive(Debug)]
pub struct Ready<M> {
    /// Send now, before or while persisting.
    pub messages: Vec<Outbound<M>>,
    /// Drop stored entries with index >= this before writing `entries` (log conflict).
    pub truncate_from: Option<u64>,
    /// Entries to store (replacing any stored entry at the same index).
    pub entries: Vec<Entry>,
    /// New engine-encoded hard state to store (Raft: term, vote, commit).
    pub hard_state: Option<Vec<u8>>,
    /// fsync before continuing (false only when nothing must be durable).
    pub sync: bool,
    /// Send only after the persistence above is durable.
    pub persisted_messages: Vec<Outbound<M>>,
    /// Committed entries to apply, in order.
    pub committed: Vec<Apply>,
    /// Reads to answer once applied far enough.
    pub reads: Vec<ReadReady>,
    /// Direct answers to client requests.
    pub replies: Vec<(ReqId, Reply)>,
    /// A snapshot to load into the state machine (and to persist first unless durable).
    pub install: Option<Install>,
    /// Snapshot the state machine after applying `committed`, and compact the log.
    pub snapshot: Option<SnapshotRequest>,
}

impl<M> Default for Ready<M> {
    fn default() -> Self {
        Ready {
            messages: Vec::new(),
            truncate_from: None,
            entries: Vec::new(),
            hard_state: None,
            sync: false,
            persisted_messages: Vec::new(),
            committed: Vec::new(),
            reads: Vec::new(),
            replies: Vec::new(),
            install: None,
            snapshot: None,
        }
    }
}

impl<M> Ready<M> {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && self.persisted_messages.is_empty()
            && self.committed.is_empty()
            && self.reads.is_empty()
            && self.replies.is_empty()
            && self.install.is_none()
            && self.snapshot.is_none()
    }
}

/// A node's role as reported by `GET /status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts client writes.
    Leader,
    /// Follows a leader.
    Follower,
    /// Running an election.
    Candidate,
    /// Running a pre-vote.
    PreCandidate,
}

impl Role {
    /// The wire name used in `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::PreCandidate => "precandidate",
        }
    }
}

/// Snapshot of engine state for `GET /status` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Current role (leaderless engines report `Leader` on every node... or `Follower`).
    pub role: Role,
    /// Current term / ballot round.
    pub term: u64,
    /// Known leader, if any.
    pub leader: Option<NodeId>,
    /// Highest index known committed.
    pub commit_index: u64,
}

/// The contract every replication engine implements. Must be pure: no I/O, no clocks, no
/// global randomness; see the module documentation for the driver loop.
pub trait Engine: Send + 'static {
    /// Peer-to-peer message type (serialized as JSON by the transport).
    type Msg: Serialize + DeserializeOwned + Debug + Clone + Send + Sync + 'static;

    /// Engine name as given to `--engine` (reported in `/status`).
    fn name(&self) -> &'static str;
    /// One logical clock tick. `wall_ms` is the node's wall clock (ms since the Unix epoch),
    /// for engines or unsafe variants that use it; everything else must use ticks only.
    fn tick(&mut self, wall_ms: u64);
    /// The node's wall clock now (ms since the Unix epoch), given just before client requests
    /// so engines that stamp requests with it (nwr) use the time the request arrived, not the
    /// last tick's — two coordinators' writes a few ms apart must not share a stale reading.
    /// Engines that only count ticks ignore it.
    fn observe_wall(&mut self, _wall_ms: u64) {}
    /// A message from peer `from`.
    fn step(&mut self, from: &str, msg: Self::Msg);
    /// Order a command; its outcome arrives as an [`Apply`] with `req` or a reply.
    fn propose(&mut self, req: ReqId, cmd: Command);
    /// Serve a read of `key`; the answer arrives as a [`ReadReady`] or a reply.
    fn read(&mut self, req: ReqId, key: String);
    /// Whether [`Engine::ready`] has anything.
    fn has_ready(&self) -> bool;
    /// Take everything pending.
    fn ready(&mut self) -> Ready<Self::Msg>;
    /// The last Ready was persisted and its persisted messages handed to the transport.
    fn advance(&mut self);
    /// Current status.
    fn status(&self) -> Status;
    /// The driver made the snapshot asked for in [`Ready::snapshot`] durable and compacted
    /// the stored log up to its index: the engine may drop that prefix of its log.
    fn snapshot_taken(&mut self, _snapshot: &Snapshot) {}
    /// The current membership configuration, for engines that have one.
    fn membership(&self) -> Option<&Membership> {
        None
    }
    /// Starts a membership change; its outcome arrives in [`Ready::replies`] (`Ok` once the
    /// change is committed, `Unknown` if leadership is lost first). A refusal is immediate.
    fn change_membership(&mut self, _req: ReqId, _change: ConfChange) -> Result<(), ChangeError> {
        Err(ChangeError::Unsupported(self.name()))
    }
}
