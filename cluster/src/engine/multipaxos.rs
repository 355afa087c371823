//! Multi-Paxos (Lamport, "Paxos Made Simple", 2001, section 3 "Implementing a State
//! Machine") as a pure [`Engine`], in the Chubby / Spanner / OceanBase style of log
//! replication, including OceanBase's *StartWorking* entry that prevents "ghost
//! reappearance".
//!
//! # The protocol here
//!
//! * Every log position ("instance") is an independent Paxos instance. An acceptor keeps a
//!   single promised ballot for all instances and, per instance, the ballot and value it
//!   accepted. Both are persisted (hard state / log entries) before the acceptor answers:
//!   promises and acks are `persisted_messages`, sent by the driver only after fsync.
//! * Ballots are globally unique and increasing: `round << 16 | node index` (the node's
//!   1-based position among all sorted node ids), see [`ballot`].
//! * A node that hears nothing from a leader for a randomized election timeout runs Prepare
//!   *once* for all instances from its first unchosen one onward. A majority of promises
//!   makes it leader; from then on it only sends Accepts (one round trip per command).
//!   Followers that heard from a leader within `election_ticks` refuse Prepares (a lease
//!   that avoids duelling proposers and makes lease reads safe); a rejected proposer backs
//!   off to a fresh randomized timeout drawn from the seeded RNG, which breaks duels.
//! * Instances are chosen out of order, so the log may have holes; commands are applied in
//!   instance order only once every earlier instance is chosen.
//! * Unlike Raft, a leader does not need a complete log to be elected. It learns the
//!   highest instance from its Prepare quorum and re-proposes every instance it cannot
//!   prove chosen with its own ballot, adopting the highest-ballot accepted value or a
//!   no-op for a hole. Then it appends a **StartWorking** entry carrying its ballot.
//! * Chosen notifications ride on Accepts and heartbeats (the leader's contiguous chosen
//!   prefix: a follower's value accepted in the leader's current ballot at or below it is
//!   chosen); a follower that is behind gets the chosen values themselves (`Learn`), which
//!   it stores with the marker ballot [`CHOSEN`].
//!
//! # Ghost reappearance, and why StartWorking prevents it
//!
//! Each value carries its *origin*: the ballot of the leader that first proposed it, kept
//! when a later leader re-proposes it. Worked example on three nodes A, B, C:
//!
//! ```text
//! A leads (ballot a): writes 1..10; 6..10 reach only A (clients time out: unknown)
//! B leads (ballot b > a), quorum {B, C} sees instances up to 5:
//!     safe:   6 = StartWorking(b), 7 = x:=20 (acknowledged, read back by clients)
//!     unsafe: 6 = x:=20
//! A leads again (ballot c > b), quorum {A, C}; it must re-propose A's own 8..10 (7 too
//! in unsafe mode), it cannot know whether they were chosen.
//!     safe:   8..10 have origin a < b and sit after StartWorking(b): skipped when applied
//!     unsafe: 7..10 are applied after x:=20 — writes that were invisible for a whole
//!             leadership term reappear
//! ```
//!
//! Applying is deterministic, so every replica skips the same entries. A skipped entry was
//! never applied anywhere before (it sits after a StartWorking whose leader's Prepare
//! quorum had not seen it), and its client only ever got "unknown".
//!
//! `--unsafe-no-start-working` writes no StartWorking entry, skips nothing at apply time,
//! and lets a new leader serve lease/local reads before its re-proposals are chosen.
//!
//! # Reads
//!
//! `log` and `read-index` go through the log (a read is a `Get` command). `lease` serves
//! from the leader while a heartbeat round acknowledged by a quorum is younger than the
//! lease (monotonic ticks) and the leader's StartWorking is applied; otherwise it falls back
//! to the log. `unsafe-local` answers from whatever a self-believed leader has;
//! `unsafe-lease-wallclock` measures the lease on the wall clock. Both unsafe read modes
//! also disable check-quorum, so a deposed leader in a minority keeps answering reads.
//!
//!
//! # Checkpoints and state transfer
//!
//! Once `snapshot_entries` instances (or `snapshot_bytes` bytes) were applied since the last
//! checkpoint, the node asks the driver for a snapshot of the state machine at its applied
//! index; every instance up to it is chosen and applied, so its slots are discarded (in
//! memory and, through compaction, on disk). The snapshot's metadata is the StartWorking
//! barrier at that index, so ghost skipping continues identically after it. Accepted but
//! unchosen values above the checkpoint are acceptor state and are always kept.
//!
//! A node whose chosen prefix ends below a peer's checkpoint cannot learn the discarded
//! values one by one: it gets the state machine instead (state transfer: the snapshot in
//! chunks, `Snapshot`/`SnapshotResp`). The leader starts one when a heartbeat answer shows a
//! follower behind its checkpoint. A candidate that is behind must not lead either: it
//! would re-propose no-ops over chosen instances its Prepare quorum can no longer show it.
//! An acceptor therefore reports its checkpoint in its Promise; a candidate that hears of
//! one at or above its first open instance gives up the round, and the acceptor starts a
//! state transfer to it; the next Prepare starts above the checkpoint.

use super::{Apply, Engine, EngineConfig, Outbound, ReadMode, ReadReady, Ready, Role, Status};
use crate::msg::{Command, Entry, NodeId, Op, Payload, Reply, ReqId};
use crate::snapshot::{
    Chunk, Compaction, Install, Offer, Outgoing, Receiver, Snapshot, SnapshotRequest,
};
use crate::storage::Recovered;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// Marker ballot of a stored value known to be chosen (learned through catch-up). It beats
/// every real ballot when a new leader picks the highest accepted value, which is safe:
/// every ballot at or above the one at which a value was chosen carries that value.
pub const CHOSEN: u64 = u64::MAX;

/// The ballot of `round` for the node at 1-based position `node_index` among sorted ids.
pub fn ballot(round: u64, node_index: u64) -> u64 {
    (round << 16) | (node_index & 0xffff)
}

/// The round of a ballot.
pub fn ballot_round(b: u64) -> u64 {
    if b == CHOSEN {
        0
    } else {
        b >> 16
    }
}

/// What an instance holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Hole filler.
    Noop,
    /// A client command.
    Command(Command),
    /// A new leader's barrier: entries with an older origin after it are skipped.
    StartWorking,
}

/// A proposed value: its contents and the ballot of the leader that first proposed it
/// (kept when re-proposed by later leaders; the ghost check compares it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PValue {
    /// Ballot of the leader that created the value.
    pub origin: u64,
    /// Contents.
    pub kind: Kind,
}

/// Multi-Paxos peer messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaxosMsg {
    /// Phase 1a for every instance >= `from`.
    Prepare {
        /// Proposer's ballot.
        ballot: u64,
        /// First instance the proposer does not know chosen.
        from: u64,
    },
    /// Phase 1b.
    Promise {
        /// The ballot answered.
        ballot: u64,
        /// Promised (false: refused, see `promised`).
        ok: bool,
        /// The acceptor's promised ballot.
        promised: u64,
        /// Accepted (instance, ballot, value) for instances >= `from`.
        accepted: Vec<(u64, u64, PValue)>,
        /// The acceptor's checkpoint: instances up to it are chosen and no longer listed.
        #[serde(default)]
        checkpoint: u64,
    },
    /// Phase 2a, batched; `chosen` is the leader's contiguous chosen prefix.
    Accept {
        /// Leader's ballot.
        ballot: u64,
        /// (instance, value) pairs.
        entries: Vec<(u64, PValue)>,
        /// Every instance <= this is chosen.
        chosen: u64,
    },
    /// Phase 2b.
    Accepted {
        /// The ballot answered.
        ballot: u64,
        /// Accepted (false: refused, see `promised`).
        ok: bool,
        /// The acceptor's promised ballot.
        promised: u64,
        /// Instances accepted.
        instances: Vec<u64>,
    },
    /// Leader liveness, lease round and chosen notification.
    Heartbeat {
        /// Leader's ballot.
        ballot: u64,
        /// Every instance <= this is chosen.
        chosen: u64,
        /// Heartbeat round (leases).
        ctx: u64,
    },
    /// Answer to `Heartbeat`.
    HeartbeatResp {
        /// The ballot answered.
        ballot: u64,
        /// Still following that ballot.
        ok: bool,
        /// The acceptor's promised ballot.
        promised: u64,
        /// Round acknowledged.
        ctx: u64,
        /// The follower's contiguous chosen prefix (catch-up starts after it).
        chosen_upto: u64,
    },
    /// Chosen values for a follower that missed them.
    Learn {
        /// (instance, value) pairs, all chosen.
        entries: Vec<(u64, PValue)>,
    },
    /// State transfer: one chunk of the sender's snapshot.
    Snapshot {
        /// The chunk.
        chunk: Chunk,
    },
    /// Answer to `Snapshot`.
    SnapshotResp {
        /// Index of the snapshot answered.
        index: u64,
        /// Byte offset wanted next (when not `done`).
        next: u64,
        /// The receiver's chosen prefix reaches `index` now.
        done: bool,
    },
}

/// What a Multi-Paxos snapshot carries besides the state machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SnapMeta {
    /// Origin ballot of the last StartWorking applied at the snapshot's index.
    sw_barrier: u64,
}

/// Errors building the engine from storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaxosError {
    /// Stored hard state cannot be decoded.
    #[error("stored multipaxos hard state is undecodable: {0}")]
    HardState(String),
    /// The stored snapshot's metadata cannot be decoded.
    #[error("stored snapshot at index {index} has undecodable multipaxos metadata: {reason}")]
    SnapshotMeta {
        /// The snapshot's index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// A stored instance cannot be decoded.
    #[error("stored multipaxos instance {index} is undecodable: {reason}")]
    Instance {
        /// Instance.
        index: u64,
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HardState {
    promised: u64,
    chosen_upto: u64,
}

/// Acceptor state of one instance (plus whether it is known chosen).
#[derive(Debug, Clone)]
struct Slot {
    ballot: u64,
    value: PValue,
    chosen: bool,
}

/// A Prepare round in progress.
#[derive(Debug)]
struct Prep {
    ballot: u64,
    from: u64,
    granted: u64,
    refused: u64,
    /// Highest-ballot accepted value seen per instance.
    merged: BTreeMap<u64, (u64, PValue)>,
}

/// Leader's view of a peer.
#[derive(Debug, Clone, Default)]
struct PeerState {
    active: bool,
    acked_ctx: u64,
}

/// The Multi-Paxos engine.
pub struct MultiPaxos {
    cfg: EngineConfig,
    rng: ChaCha8Rng,
    my_index: u64,
    unsafe_no_start_working: bool,
    // Durable.
    promised: u64,
    /// Slots above `checkpoint`.
    log: BTreeMap<u64, Slot>,
    chosen_upto: u64,
    /// Instances up to here are chosen, applied and discarded (the snapshot's index).
    checkpoint: u64,
    // Snapshots.
    /// The latest snapshot, encoded for state transfer.
    outgoing: Option<Outgoing>,
    /// State transfers under way: peer -> (snapshot, offset it asked for last).
    transfers: BTreeMap<NodeId, (Outgoing, u64)>,
    /// Chunks of a snapshot arriving.
    receiver: Receiver,
    /// A snapshot for the driver to install with the next Ready.
    install: Option<Install>,
    /// Instances applied since the last checkpoint, against the thresholds.
    compaction: Compaction,
    // Volatile.
    max_round: u64,
    role: Role,
    leader: Option<NodeId>,
    /// Ballot this node leads with (0 unless leader).
    lead_ballot: u64,
    next_instance: u64,
    /// Leader: instance of its StartWorking (0 when none: unsafe mode).
    sw_instance: u64,
    prep: Option<Prep>,
    /// Leader: unchosen instances of its ballot -> (ack bitmask, tick last sent).
    votes: BTreeMap<u64, (u64, u64)>,
    proposals: HashMap<u64, (u64, ReqId)>,
    peer_state: Vec<PeerState>,
    ticks: u64,
    wall_ms: u64,
    election_elapsed: u64,
    heartbeat_elapsed: u64,
    check_elapsed: u64,
    randomized_timeout: u64,
    /// No Prepare is promised during the first election timeout after start (lease mode).
    startup_lease: bool,
    hb_ctx: u64,
    hb_sent: VecDeque<(u64, u64, u64)>,
    quorum_ctx: u64,
    lease_until_tick: u64,
    lease_until_wall: u64,
    applied_handed: u64,
    /// Apply-time barrier: origin ballot of the last StartWorking applied.
    sw_barrier: u64,
    // Ready accumulators.
    msgs: Vec<Outbound<PaxosMsg>>,
    persisted_msgs: Vec<Outbound<PaxosMsg>>,
    pending_accepts: Vec<(u64, PValue)>,
    unstable: BTreeSet<u64>,
    hs_dirty: bool,
    must_sync: bool,
    persisting: Vec<u64>,
    reads_ready: Vec<ReadReady>,
    replies: Vec<(ReqId, Reply)>,
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Encodes an acceptor slot as a storage entry (`term` = accepted ballot).
pub fn encode_slot(index: u64, accepted_ballot: u64, value: &PValue) -> Entry {
    Entry {
        index,
        term: accepted_ballot,
        payload: Payload::Engine(serde_json::to_vec(value).expect("values serialize")),
    }
}

impl MultiPaxos {
    /// Builds a node from configuration and what storage recovered. With
    /// `unsafe_no_start_working` the node reproduces ghost reappearance (module doc).
    pub fn new(
        cfg: EngineConfig,
        recovered: Recovered,
        unsafe_no_start_working: bool,
    ) -> Result<MultiPaxos, PaxosError> {
        let hs: HardState = match &recovered.hard_state {
            Some(b) => {
                serde_json::from_slice(b).map_err(|e| PaxosError::HardState(e.to_string()))?
            }
            None => HardState::default(),
        };
        let (checkpoint, sw_barrier) = match &recovered.snapshot {
            Some(snap) => {
                let meta: SnapMeta =
                    serde_json::from_slice(&snap.meta).map_err(|e| PaxosError::SnapshotMeta {
                        index: snap.index,
                        reason: e.to_string(),
                    })?;
                (snap.index, meta.sw_barrier)
            }
            None => (0, 0),
        };
        let mut log = BTreeMap::new();
        for (index, e) in recovered
            .entries
            .into_iter()
            .filter(|(i, _)| *i > checkpoint)
        {
            let Payload::Engine(bytes) = &e.payload else {
                return Err(PaxosError::Instance {
                    index,
                    reason: "not a multipaxos value".into(),
                });
            };
            let value: PValue =
                serde_json::from_slice(bytes).map_err(|err| PaxosError::Instance {
                    index,
                    reason: err.to_string(),
                })?;
            let chosen = e.term == CHOSEN || index <= hs.chosen_upto;
            log.insert(
                index,
                Slot {
                    ballot: e.term,
                    value,
                    chosen,
                },
            );
        }
        let mut ids: Vec<&str> = cfg.peers.iter().map(|s| s.as_str()).collect();
        ids.push(&cfg.id);
        ids.sort_unstable();
        let my_index = ids.iter().position(|i| *i == cfg.id).unwrap_or(0) as u64 + 1;
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ fnv(&cfg.id) ^ 0x9a05);
        let startup_lease = matches!(
            cfg.read_mode,
            ReadMode::Lease | ReadMode::UnsafeLeaseWallclock
        );
        let mut p = MultiPaxos {
            rng,
            my_index,
            unsafe_no_start_working,
            promised: hs.promised,
            log,
            chosen_upto: checkpoint,
            checkpoint,
            outgoing: recovered.snapshot.as_deref().map(Outgoing::new),
            transfers: BTreeMap::new(),
            receiver: Receiver::default(),
            install: recovered.snapshot.as_ref().map(|s| Install {
                snapshot: s.clone(),
                durable: true,
                keep_log: true,
            }),
            compaction: Compaction::new(cfg.snapshot_entries, cfg.snapshot_bytes),
            max_round: ballot_round(hs.promised),
            role: Role::Follower,
            leader: None,
            lead_ballot: 0,
            next_instance: 1,
            sw_instance: 0,
            prep: None,
            votes: BTreeMap::new(),
            proposals: HashMap::new(),
            peer_state: vec![PeerState::default(); cfg.peers.len()],
            ticks: 0,
            wall_ms: 0,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            check_elapsed: 0,
            randomized_timeout: cfg.election_ticks,
            startup_lease,
            hb_ctx: 0,
            hb_sent: VecDeque::new(),
            quorum_ctx: 0,
            lease_until_tick: 0,
            lease_until_wall: 0,
            applied_handed: checkpoint,
            sw_barrier,
            msgs: Vec::new(),
            persisted_msgs: Vec::new(),
            pending_accepts: Vec::new(),
            unstable: BTreeSet::new(),
            hs_dirty: false,
            must_sync: false,
            persisting: Vec::new(),
            reads_ready: Vec::new(),
            replies: Vec::new(),
            cfg,
        };
        p.advance_chosen_prefix();
        p.reset_timeout();
        Ok(p)
    }

    fn quorum(&self) -> usize {
        self.cfg.peers.len().div_ceil(2) + 1
    }

    fn last_instance(&self) -> u64 {
        self.log.keys().next_back().copied().unwrap_or(0)
    }

    fn peer_bit(&self, peer: &str) -> Option<u64> {
        self.cfg
            .peers
            .iter()
            .position(|p| p == peer)
            .map(|i| 1u64 << (i + 1))
    }

    fn peer_pos(&self, peer: &str) -> Option<usize> {
        self.cfg.peers.iter().position(|p| p == peer)
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The promised ballot.
    pub fn promised(&self) -> u64 {
        self.promised
    }

    /// Contiguous chosen prefix.
    pub fn chosen_upto(&self) -> u64 {
        self.chosen_upto
    }

    /// The value of `instance` if known chosen (tests and diagnostics).
    pub fn chosen_value(&self, instance: u64) -> Option<&PValue> {
        self.log
            .get(&instance)
            .filter(|s| s.chosen)
            .map(|s| &s.value)
    }

    /// The accepted (ballot, value) of `instance`, if any (tests and diagnostics).
    pub fn accepted(&self, instance: u64) -> Option<(u64, &PValue)> {
        self.log.get(&instance).map(|s| (s.ballot, &s.value))
    }

    /// Test hook: start a Prepare round now.
    #[cfg(test)]
    pub(crate) fn campaign_now(&mut self) {
        self.campaign();
    }

    /// Test hook: forget the leader and the lease, as if the election timeout had passed.
    #[cfg(test)]
    pub(crate) fn forget_leader(&mut self) {
        self.startup_lease = false;
        if self.role != Role::Leader {
            self.leader = None;
            self.election_elapsed = self.cfg.election_ticks;
        }
    }

    fn lease_ticks(&self) -> u64 {
        let margin = (self.cfg.election_ticks / 5).max(2);
        self.cfg.election_ticks.saturating_sub(margin)
    }

    /// A follower that heard from a live leader recently refuses Prepares.
    fn in_lease(&self) -> bool {
        self.startup_lease
            || (self.role == Role::Follower
                && self.leader.is_some()
                && self.election_elapsed < self.cfg.election_ticks)
    }

    fn reset_timeout(&mut self) {
        let base = self.cfg.election_ticks.max(1);
        self.randomized_timeout = self.rng.gen_range(base..2 * base);
        self.election_elapsed = 0;
    }

    fn send(&mut self, to: &str, msg: PaxosMsg) {
        self.msgs.push(Outbound {
            to: to.to_string(),
            msg,
        });
    }

    fn send_persisted(&mut self, to: &str, msg: PaxosMsg) {
        self.persisted_msgs.push(Outbound {
            to: to.to_string(),
            msg,
        });
    }

    fn observe(&mut self, b: u64) {
        self.max_round = self.max_round.max(ballot_round(b));
    }

    fn set_promised(&mut self, b: u64) {
        if b > self.promised {
            self.promised = b;
            self.hs_dirty = true;
            self.must_sync = true;
        }
        self.observe(b);
    }

    /// Stores an accepted value (to be persisted with the next Ready).
    fn store(&mut self, index: u64, ballot: u64, value: PValue, chosen: bool) {
        self.log.insert(
            index,
            Slot {
                ballot,
                value,
                chosen,
            },
        );
        self.unstable.insert(index);
    }

    fn become_follower(&mut self, leader: Option<NodeId>) {
        let was = self.role;
        if (leader.is_some() || was != Role::Follower) && self.leader != leader {
            tracing::info!(id = %self.cfg.id, promised = self.promised, leader = ?leader, "following");
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.prep = None;
        self.reset_timeout();
        if was == Role::Leader {
            tracing::info!(id = %self.cfg.id, ballot = self.lead_ballot, "stepped down from leader");
            self.abandon_leadership();
        }
    }

    /// Leadership lost: proposals have unknown outcome.
    fn abandon_leadership(&mut self) {
        let mut props: Vec<_> = self.proposals.drain().collect();
        props.sort();
        for (_, (_, req)) in props {
            self.replies.push((req, Reply::Unknown));
        }
        self.lead_ballot = 0;
        self.sw_instance = 0;
        self.votes.clear();
        self.pending_accepts.clear();
        self.hb_sent.clear();
        self.lease_until_tick = 0;
        self.lease_until_wall = 0;
    }

    fn campaign(&mut self) {
        if self.role == Role::Leader {
            self.become_follower(None);
        }
        self.startup_lease = false;
        let round = self.max_round.max(ballot_round(self.promised)) + 1;
        let b = ballot(round, self.my_index);
        self.set_promised(b);
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_timeout();
        let from = self.chosen_upto + 1;
        tracing::info!(id = %self.cfg.id, ballot = b, from, "starting prepare");
        let mut prep = Prep {
            ballot: b,
            from,
            granted: 1,
            refused: 0,
            merged: BTreeMap::new(),
        };
        for (&i, s) in self.log.range(from..) {
            prep.merged.insert(i, (s.ballot, s.value.clone()));
        }
        self.prep = Some(prep);
        if self.quorum() == 1 {
            self.become_leader();
            return;
        }
        for p in self.cfg.peers.clone() {
            self.send_persisted(&p, PaxosMsg::Prepare { ballot: b, from });
        }
    }

    fn become_leader(&mut self) {
        let Some(prep) = self.prep.take() else {
            return;
        };
        let b = prep.ballot;
        tracing::info!(id = %self.cfg.id, ballot = b, "became leader");
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.lead_ballot = b;
        self.heartbeat_elapsed = 0;
        self.check_elapsed = 0;
        self.hb_sent.clear();
        self.quorum_ctx = self.hb_ctx;
        for p in &mut self.peer_state {
            *p = PeerState {
                active: true,
                acked_ctx: 0,
            };
        }
        let max = prep
            .merged
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.last_instance())
            .max(self.chosen_upto);
        // Re-propose every instance not known chosen: highest-ballot value, or a no-op.
        for i in prep.from..=max {
            if self.log.get(&i).is_some_and(|s| s.chosen) {
                continue;
            }
            match prep.merged.get(&i) {
                Some((CHOSEN, v)) => {
                    let v = v.clone();
                    self.store(i, CHOSEN, v, true);
                }
                Some((_, v)) => {
                    let v = v.clone();
                    self.propose_at(i, v);
                }
                None => self.propose_at(
                    i,
                    PValue {
                        origin: b,
                        kind: Kind::Noop,
                    },
                ),
            }
        }
        self.next_instance = max + 1;
        if self.unsafe_no_start_working {
            self.sw_instance = 0;
        } else {
            let i = self.next_instance;
            self.next_instance += 1;
            self.sw_instance = i;
            self.propose_at(
                i,
                PValue {
                    origin: b,
                    kind: Kind::StartWorking,
                },
            );
        }
        self.advance_chosen_prefix();
        self.bcast_heartbeat();
    }

    /// Leader: accept `value` at `index` in its ballot and ask the peers to.
    fn propose_at(&mut self, index: u64, value: PValue) {
        let b = self.lead_ballot;
        self.store(index, b, value.clone(), false);
        self.votes.insert(index, (0, self.ticks));
        self.pending_accepts.push((index, value));
    }

    fn mark_chosen(&mut self, index: u64) {
        if let Some(s) = self.log.get_mut(&index) {
            s.chosen = true;
        }
        self.votes.remove(&index);
    }

    fn advance_chosen_prefix(&mut self) {
        let before = self.chosen_upto;
        while self
            .log
            .get(&(self.chosen_upto + 1))
            .is_some_and(|s| s.chosen)
        {
            self.chosen_upto += 1;
        }
        if self.chosen_upto != before {
            self.hs_dirty = true;
        }
    }

    fn count_vote(&mut self, index: u64, bit: u64) {
        let q = self.quorum() as u32;
        let Some((mask, _)) = self.votes.get_mut(&index) else {
            return;
        };
        *mask |= bit;
        if mask.count_ones() >= q {
            self.mark_chosen(index);
        }
    }

    fn bcast_heartbeat(&mut self) {
        self.hb_ctx += 1;
        let ctx = self.hb_ctx;
        self.hb_sent.push_back((ctx, self.ticks, self.wall_ms));
        while self.hb_sent.len() > 1024 {
            self.hb_sent.pop_front();
        }
        let (ballot, chosen) = (self.lead_ballot, self.chosen_upto);
        for p in self.cfg.peers.clone() {
            self.send(
                &p,
                PaxosMsg::Heartbeat {
                    ballot,
                    chosen,
                    ctx,
                },
            );
        }
        self.update_quorum_ctx();
    }

    fn update_quorum_ctx(&mut self) {
        let mut acks: Vec<u64> = self.peer_state.iter().map(|p| p.acked_ctx).collect();
        acks.push(self.hb_ctx);
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let q = acks[self.quorum() - 1];
        if q <= self.quorum_ctx {
            return;
        }
        self.quorum_ctx = q;
        if let Some(&(_, tick, wall)) = self.hb_sent.iter().find(|(c, _, _)| *c == q) {
            let lt = self.lease_ticks();
            self.lease_until_tick = self.lease_until_tick.max(tick + lt);
            self.lease_until_wall = self
                .lease_until_wall
                .max(wall + lt * self.cfg.tick_ms.max(1));
        }
    }

    /// Resends Accepts that have been outstanding for a heartbeat interval.
    fn retransmit(&mut self) {
        let due = self.ticks.saturating_sub(self.cfg.heartbeat_ticks);
        let peers = self.cfg.peers.clone();
        let mut per_peer: Vec<Vec<(u64, PValue)>> = vec![Vec::new(); peers.len()];
        for (&i, (mask, sent)) in self.votes.iter_mut() {
            if *sent > due {
                continue;
            }
            *sent = self.ticks;
            let Some(slot) = self.log.get(&i) else {
                continue;
            };
            for (j, out) in per_peer.iter_mut().enumerate() {
                if *mask & (1 << (j + 1)) == 0 && out.len() < self.cfg.max_batch {
                    out.push((i, slot.value.clone()));
                }
            }
        }
        let (ballot, chosen) = (self.lead_ballot, self.chosen_upto);
        for (p, entries) in peers.iter().zip(per_peer) {
            if !entries.is_empty() {
                self.send(
                    p,
                    PaxosMsg::Accept {
                        ballot,
                        entries,
                        chosen,
                    },
                );
            }
        }
    }

    /// Follower: everything it accepted in the leader's `ballot` up to `chosen` is chosen.
    fn learn_prefix(&mut self, ballot: u64, chosen: u64) {
        if chosen <= self.chosen_upto {
            return;
        }
        let ids: Vec<u64> = self
            .log
            .range(self.chosen_upto + 1..=chosen)
            .filter(|(_, s)| !s.chosen && s.ballot == ballot)
            .map(|(i, _)| *i)
            .collect();
        for i in ids {
            self.mark_chosen(i);
        }
        self.advance_chosen_prefix();
    }

    /// Recognizes `from` (ballot `b` >= promised) as leader.
    fn follow(&mut self, from: &str, b: u64) {
        self.set_promised(b);
        if self.role != Role::Follower || self.leader.as_deref() != Some(from) {
            self.become_follower(Some(from.to_string()));
        }
        self.election_elapsed = 0;
        self.startup_lease = false;
    }

    /// A refusal carrying a higher promise: a leader or candidate with a lower ballot yields
    /// and backs off to a fresh randomized timeout.
    fn refused(&mut self, promised: u64) {
        self.observe(promised);
        let mine = match self.role {
            Role::Leader => self.lead_ballot,
            Role::Candidate => self.prep.as_ref().map_or(0, |p| p.ballot),
            _ => return,
        };
        if promised > mine {
            tracing::info!(id = %self.cfg.id, mine, promised, "ballot refused, backing off");
            self.become_follower(None);
        }
    }

    fn handle_prepare(&mut self, from: &str, b: u64, first: u64) {
        self.observe(b);
        let refuse = b < self.promised
            || (b > self.promised && self.in_lease() && self.leader.as_deref() != Some(from))
            || (self.role == Role::Leader && b != self.lead_ballot && b > self.promised);
        if refuse {
            let promised = self.promised;
            self.send_persisted(
                from,
                PaxosMsg::Promise {
                    ballot: b,
                    ok: false,
                    promised,
                    accepted: Vec::new(),
                    checkpoint: 0,
                },
            );
            return;
        }
        if b > self.promised && self.role != Role::Follower {
            self.become_follower(None);
        }
        if b > self.promised {
            self.leader = None;
            self.election_elapsed = 0;
        }
        self.set_promised(b);
        let accepted = self
            .log
            .range(first..)
            .map(|(&i, s)| (i, s.ballot, s.value.clone()))
            .collect();
        let checkpoint = self.checkpoint;
        self.send_persisted(
            from,
            PaxosMsg::Promise {
                ballot: b,
                ok: true,
                promised: b,
                accepted,
                checkpoint,
            },
        );
        if first <= checkpoint {
            // The candidate misses instances we discarded: it gives up this round (it sees
            // our checkpoint) and gets our state instead.
            self.send_snapshot_chunk(from);
        }
    }

    fn handle_promise(
        &mut self,
        from: &str,
        b: u64,
        ok: bool,
        promised: u64,
        accepted: Vec<(u64, u64, PValue)>,
        checkpoint: u64,
    ) {
        let Some(bit) = self.peer_bit(from) else {
            return;
        };
        let q = self.quorum() as u32;
        let Some(prep) = self.prep.as_mut().filter(|p| p.ballot == b) else {
            if !ok {
                self.refused(promised);
            }
            return;
        };
        if ok && checkpoint >= prep.from {
            tracing::info!(
                id = %self.cfg.id,
                ballot = b,
                from,
                checkpoint,
                "an acceptor discarded instances this candidate lacks; waiting for its state"
            );
            self.become_follower(None);
            return;
        }
        if !ok {
            prep.refused |= bit;
            if prep.refused.count_ones() >= q || promised > b {
                self.refused(promised.max(b + 1));
            }
            return;
        }
        prep.granted |= bit;
        for (i, ab, v) in accepted {
            if i < prep.from {
                continue;
            }
            match prep.merged.get(&i) {
                Some((cur, _)) if *cur >= ab => {}
                _ => {
                    prep.merged.insert(i, (ab, v));
                }
            }
        }
        if prep.granted.count_ones() >= q {
            self.become_leader();
        }
    }

    fn handle_accept(&mut self, from: &str, b: u64, entries: Vec<(u64, PValue)>, chosen: u64) {
        self.observe(b);
        if b < self.promised {
            let promised = self.promised;
            self.send_persisted(
                from,
                PaxosMsg::Accepted {
                    ballot: b,
                    ok: false,
                    promised,
                    instances: Vec::new(),
                },
            );
            return;
        }
        self.follow(from, b);
        let mut instances = Vec::with_capacity(entries.len());
        for (i, v) in entries {
            instances.push(i);
            if i <= self.checkpoint || self.log.get(&i).is_some_and(|s| s.chosen) {
                continue;
            }
            self.store(i, b, v, false);
        }
        self.learn_prefix(b, chosen);
        self.send_persisted(
            from,
            PaxosMsg::Accepted {
                ballot: b,
                ok: true,
                promised: b,
                instances,
            },
        );
    }

    fn handle_accepted(&mut self, from: &str, b: u64, ok: bool, promised: u64, inst: Vec<u64>) {
        if !ok {
            self.refused(promised);
            return;
        }
        if self.role != Role::Leader || b != self.lead_ballot {
            return;
        }
        let Some(bit) = self.peer_bit(from) else {
            return;
        };
        if let Some(pos) = self.peer_pos(from) {
            self.peer_state[pos].active = true;
        }
        for i in inst {
            self.count_vote(i, bit);
        }
        self.advance_chosen_prefix();
    }

    fn handle_heartbeat_resp(&mut self, from: &str, b: u64, ctx: u64, chosen_upto: u64) {
        if self.role != Role::Leader || b != self.lead_ballot {
            return;
        }
        let Some(pos) = self.peer_pos(from) else {
            return;
        };
        self.peer_state[pos].active = true;
        self.peer_state[pos].acked_ctx = self.peer_state[pos].acked_ctx.max(ctx);
        self.update_quorum_ctx();
        if chosen_upto < self.checkpoint {
            // The values it lacks are discarded here: state transfer.
            self.send_snapshot_chunk(from);
        } else if chosen_upto < self.chosen_upto {
            // Catch-up: send the chosen values the follower lacks.
            let end = self
                .chosen_upto
                .min(chosen_upto + self.cfg.max_batch as u64);
            let entries: Vec<(u64, PValue)> = self
                .log
                .range(chosen_upto + 1..=end)
                .map(|(&i, s)| (i, s.value.clone()))
                .collect();
            self.send(from, PaxosMsg::Learn { entries });
        }
    }

    fn handle_learn(&mut self, entries: Vec<(u64, PValue)>) {
        for (i, v) in entries {
            if i <= self.checkpoint || self.log.get(&i).is_some_and(|s| s.chosen) {
                continue;
            }
            self.store(i, CHOSEN, v, true);
            self.votes.remove(&i);
        }
        self.advance_chosen_prefix();
    }

    /// Whether this leader may serve reads locally (its StartWorking is applied).
    fn working(&self) -> bool {
        self.role == Role::Leader && self.applied_handed >= self.sw_instance
    }

    fn propose_cmd(&mut self, req: ReqId, cmd: Command) {
        let i = self.next_instance;
        self.next_instance += 1;
        let origin = self.lead_ballot;
        self.propose_at(
            i,
            PValue {
                origin,
                kind: Kind::Command(cmd),
            },
        );
        self.proposals.insert(i, (origin, req));
    }

    fn flush_accepts(&mut self) {
        if self.pending_accepts.is_empty() || self.role != Role::Leader {
            self.pending_accepts.clear();
            return;
        }
        let all = std::mem::take(&mut self.pending_accepts);
        let (ballot, chosen) = (self.lead_ballot, self.chosen_upto);
        for chunk in all.chunks(self.cfg.max_batch.max(1)) {
            for p in self.cfg.peers.clone() {
                self.send(
                    &p,
                    PaxosMsg::Accept {
                        ballot,
                        entries: chunk.to_vec(),
                        chosen,
                    },
                );
            }
        }
    }

    /// Hands chosen instances to the driver in order, skipping ghosts.
    fn collect_committed(&mut self, out: &mut Vec<Apply>) {
        while self.applied_handed < self.chosen_upto {
            let i = self.applied_handed + 1;
            let slot = &self.log[&i];
            let origin = slot.value.origin;
            let (payload, is_cmd) = match &slot.value.kind {
                Kind::Noop => (Payload::Noop, false),
                Kind::StartWorking => {
                    self.sw_barrier = self.sw_barrier.max(origin);
                    (Payload::Engine(b"start-working".to_vec()), false)
                }
                Kind::Command(c) => {
                    if !self.unsafe_no_start_working && origin < self.sw_barrier {
                        tracing::info!(
                            id = %self.cfg.id,
                            instance = i,
                            origin,
                            barrier = self.sw_barrier,
                            "skipping entry from an older ballot after StartWorking (ghost)"
                        );
                        (Payload::Noop, false)
                    } else {
                        (Payload::Command(c.clone()), true)
                    }
                }
            };
            let req = match self.proposals.remove(&i) {
                Some((o, req)) if o == origin && is_cmd => Some(req),
                Some((_, req)) => {
                    self.replies.push((req, Reply::Unknown));
                    None
                }
                None => None,
            };
            let entry = Entry {
                index: i,
                term: origin,
                payload,
            };
            self.compaction.applied(&entry);
            out.push(Apply { entry, req });
            self.applied_handed = i;
        }
    }
}

impl MultiPaxos {
    /// Index of the checkpoint (0 without one).
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// A snapshot request when enough was applied since the last checkpoint.
    fn snapshot_due(&self) -> Option<SnapshotRequest> {
        if !self.compaction.due(self.applied_handed - self.checkpoint) {
            return None;
        }
        let meta = SnapMeta {
            sw_barrier: self.sw_barrier,
        };
        Some(SnapshotRequest {
            index: self.applied_handed,
            term: 0,
            meta: serde_json::to_vec(&meta).expect("metadata serializes"),
        })
    }

    /// Drops every slot up to `index` (all chosen) and moves the checkpoint there.
    fn discard_upto(&mut self, index: u64) {
        self.log = self.log.split_off(&(index + 1));
        self.votes = self.votes.split_off(&(index + 1));
        self.unstable.retain(|i| *i > index);
        self.checkpoint = index;
    }

    /// Sends `peer` the chunk of our snapshot it asked for last (starting a transfer of
    /// the latest snapshot if none is under way).
    fn send_snapshot_chunk(&mut self, peer: &str) {
        if !self.transfers.contains_key(peer) {
            let Some(out) = self.outgoing.clone() else {
                return;
            };
            tracing::info!(id = %self.cfg.id, peer, index = out.index, bytes = out.bytes.len(), "state transfer");
            self.transfers.insert(peer.to_string(), (out, 0));
        }
        let (out, offset) = &self.transfers[peer];
        let chunk = out.chunk(*offset, self.cfg.snapshot_chunk);
        self.send(peer, PaxosMsg::Snapshot { chunk });
    }

    fn handle_snapshot_resp(&mut self, from: &str, index: u64, next: u64, done: bool) {
        let Some((out, offset)) = self.transfers.get_mut(from) else {
            return;
        };
        if out.index != index {
            return;
        }
        if done {
            tracing::info!(id = %self.cfg.id, peer = from, index, "state transfer complete");
            self.transfers.remove(from);
            return;
        }
        *offset = next;
        self.send_snapshot_chunk(from);
    }

    /// A chunk of a peer's snapshot: installed once complete if it is ahead of us.
    fn handle_snapshot(&mut self, from: &str, chunk: Chunk) {
        let index = chunk.index;
        let resp = |next, done| PaxosMsg::SnapshotResp { index, next, done };
        if index <= self.chosen_upto {
            self.receiver.reset();
            self.send(from, resp(0, true));
            return;
        }
        match self.receiver.offer(chunk) {
            Offer::Next(next) => self.send(from, resp(next, false)),
            Offer::Invalid(why) => {
                tracing::warn!(id = %self.cfg.id, from, index, %why, "state transfer failed; asking from the start");
                self.send(from, resp(0, false));
            }
            Offer::Complete(snap) => match serde_json::from_slice::<SnapMeta>(&snap.meta) {
                Ok(meta) => {
                    self.install_snapshot(snap, meta);
                    self.send_persisted(from, resp(0, true));
                }
                Err(e) => {
                    tracing::warn!(id = %self.cfg.id, from, index, error = %e, "snapshot metadata undecodable");
                    self.send(from, resp(0, false));
                }
            },
        }
    }

    /// Jumps the chosen and applied prefix to the snapshot; accepted slots above it stay.
    fn install_snapshot(&mut self, snap: Snapshot, meta: SnapMeta) {
        let index = snap.index;
        tracing::info!(id = %self.cfg.id, index, bytes = snap.data.len(), "installing state transfer");
        let lost: Vec<u64> = self
            .proposals
            .keys()
            .filter(|i| **i <= index)
            .copied()
            .collect();
        for i in lost {
            if let Some((_, req)) = self.proposals.remove(&i) {
                self.replies.push((req, Reply::Unknown));
            }
        }
        self.discard_upto(index);
        self.chosen_upto = index;
        self.advance_chosen_prefix();
        self.hs_dirty = true;
        self.must_sync = true;
        self.applied_handed = index;
        self.compaction.reset();
        self.sw_barrier = meta.sw_barrier;
        self.next_instance = self.next_instance.max(index + 1);
        self.outgoing = Some(Outgoing::new(&snap));
        self.install = Some(Install {
            snapshot: Arc::new(snap),
            durable: false,
            keep_log: true,
        });
    }
}

impl Engine for MultiPaxos {
    type Msg = PaxosMsg;

    fn name(&self) -> &'static str {
        "multipaxos"
    }

    fn tick(&mut self, wall_ms: u64) {
        self.ticks += 1;
        self.wall_ms = wall_ms;
        self.election_elapsed += 1;
        if self.startup_lease && self.election_elapsed >= self.cfg.election_ticks {
            self.startup_lease = false;
        }
        if self.role == Role::Leader {
            self.heartbeat_elapsed += 1;
            self.check_elapsed += 1;
            // The unsafe read modes skip check-quorum, as naive implementations do (and as
            // the Raft engine's do), so a deposed leader keeps serving stale reads.
            let unsafe_reads = matches!(
                self.cfg.read_mode,
                ReadMode::UnsafeLocal | ReadMode::UnsafeLeaseWallclock
            );
            if !unsafe_reads && self.check_elapsed >= self.cfg.election_ticks {
                // Check quorum: step down if a majority has not been heard from.
                self.check_elapsed = 0;
                let active = 1 + self.peer_state.iter().filter(|p| p.active).count();
                for p in &mut self.peer_state {
                    p.active = false;
                }
                if active < self.quorum() {
                    tracing::warn!(id = %self.cfg.id, ballot = self.lead_ballot, "lost contact with quorum");
                    self.become_follower(None);
                    return;
                }
            }
            if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
                self.heartbeat_elapsed = 0;
                self.bcast_heartbeat();
                self.retransmit();
            }
        } else if self.election_elapsed >= self.randomized_timeout {
            self.campaign();
        }
    }

    fn step(&mut self, from: &str, msg: PaxosMsg) {
        match msg {
            PaxosMsg::Prepare {
                ballot,
                from: first,
            } => self.handle_prepare(from, ballot, first),
            PaxosMsg::Promise {
                ballot,
                ok,
                promised,
                accepted,
                checkpoint,
            } => self.handle_promise(from, ballot, ok, promised, accepted, checkpoint),
            PaxosMsg::Accept {
                ballot,
                entries,
                chosen,
            } => self.handle_accept(from, ballot, entries, chosen),
            PaxosMsg::Accepted {
                ballot,
                ok,
                promised,
                instances,
            } => self.handle_accepted(from, ballot, ok, promised, instances),
            PaxosMsg::Heartbeat {
                ballot,
                chosen,
                ctx,
            } => {
                self.observe(ballot);
                if ballot < self.promised {
                    let promised = self.promised;
                    let chosen_upto = self.chosen_upto;
                    self.send(
                        from,
                        PaxosMsg::HeartbeatResp {
                            ballot,
                            ok: false,
                            promised,
                            ctx,
                            chosen_upto,
                        },
                    );
                    return;
                }
                self.follow(from, ballot);
                self.learn_prefix(ballot, chosen);
                let chosen_upto = self.chosen_upto;
                self.send_persisted(
                    from,
                    PaxosMsg::HeartbeatResp {
                        ballot,
                        ok: true,
                        promised: ballot,
                        ctx,
                        chosen_upto,
                    },
                );
            }
            PaxosMsg::HeartbeatResp {
                ballot,
                ok,
                promised,
                ctx,
                chosen_upto,
            } => {
                if ok {
                    self.handle_heartbeat_resp(from, ballot, ctx, chosen_upto);
                } else {
                    self.refused(promised);
                }
            }
            PaxosMsg::Learn { entries } => self.handle_learn(entries),
            PaxosMsg::Snapshot { chunk } => self.handle_snapshot(from, chunk),
            PaxosMsg::SnapshotResp { index, next, done } => {
                self.handle_snapshot_resp(from, index, next, done)
            }
        }
    }

    fn propose(&mut self, req: ReqId, cmd: Command) {
        if self.role != Role::Leader {
            self.replies
                .push((req, Reply::NotLeader(self.leader.clone())));
            return;
        }
        self.propose_cmd(req, cmd);
    }

    fn read(&mut self, req: ReqId, key: String) {
        if self.role != Role::Leader {
            self.replies
                .push((req, Reply::NotLeader(self.leader.clone())));
            return;
        }
        let index = self.sw_instance;
        let local = match self.cfg.read_mode {
            ReadMode::UnsafeLocal => true,
            ReadMode::Lease => {
                (self.working() || self.unsafe_no_start_working)
                    && self.ticks < self.lease_until_tick
            }
            ReadMode::UnsafeLeaseWallclock => {
                (self.working() || self.unsafe_no_start_working)
                    && self.wall_ms < self.lease_until_wall
            }
            ReadMode::Log | ReadMode::ReadIndex => false,
        };
        if local {
            self.reads_ready.push(ReadReady { req, index });
        } else {
            let cmd = Command {
                op: Op::Get { key },
                client_id: None,
                seq: None,
            };
            self.propose_cmd(req, cmd);
        }
    }

    fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || !self.persisted_msgs.is_empty()
            || !self.pending_accepts.is_empty()
            || !self.unstable.is_empty()
            || self.hs_dirty
            || self.chosen_upto > self.applied_handed
            || !self.reads_ready.is_empty()
            || !self.replies.is_empty()
            || self.install.is_some()
    }

    fn ready(&mut self) -> Ready<PaxosMsg> {
        self.flush_accepts();
        let mut rd = Ready {
            messages: std::mem::take(&mut self.msgs),
            persisted_messages: std::mem::take(&mut self.persisted_msgs),
            install: self.install.take(),
            ..Ready::default()
        };
        let unstable = std::mem::take(&mut self.unstable);
        self.persisting.clear();
        for i in unstable {
            if let Some(s) = self.log.get(&i) {
                rd.entries.push(encode_slot(i, s.ballot, &s.value));
                self.persisting.push(i);
            }
        }
        if self.hs_dirty {
            self.hs_dirty = false;
            let hs = HardState {
                promised: self.promised,
                chosen_upto: self.chosen_upto,
            };
            rd.hard_state = Some(serde_json::to_vec(&hs).expect("hard state serializes"));
        }
        rd.sync = self.must_sync || !rd.entries.is_empty();
        self.must_sync = false;
        self.collect_committed(&mut rd.committed);
        rd.snapshot = self.snapshot_due();
        rd.reads = std::mem::take(&mut self.reads_ready);
        rd.replies = std::mem::take(&mut self.replies);
        rd
    }

    fn advance(&mut self) {
        if self.role != Role::Leader {
            self.persisting.clear();
            return;
        }
        // Our own accepts are durable now: count our vote.
        let b = self.lead_ballot;
        for i in std::mem::take(&mut self.persisting) {
            if self.log.get(&i).is_some_and(|s| s.ballot == b) {
                self.count_vote(i, 1);
            }
        }
        self.advance_chosen_prefix();
    }

    fn status(&self) -> Status {
        Status {
            role: self.role,
            term: ballot_round(self.promised),
            leader: self.leader.clone(),
            commit_index: self.chosen_upto,
        }
    }

    fn snapshot_taken(&mut self, snap: &Snapshot) {
        if snap.index <= self.checkpoint || snap.index > self.applied_handed {
            return;
        }
        self.discard_upto(snap.index);
        let out = self.compaction.taken(&self.cfg.id, snap, self.log.len());
        self.outgoing = Some(out);
    }
}

#[cfg(test)]
#[path = "multipaxos_tests.rs"]
mod tests;
