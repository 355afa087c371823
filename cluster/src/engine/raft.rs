//! Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014,
//! and Ongaro's thesis, 2014) as a pure [`Engine`]: leader election with randomized timeouts
//! from a seeded RNG, optional pre-vote (thesis 9.6), log replication with batching and
//! pipelining, the current-term commit rule (paper 5.4.2, Figure 8), a no-op entry on
//! election, read-index and lease reads (thesis 6.4), and leader stickiness / check-quorum
//! (thesis 4.2.3) which lease reads depend on.
//!
//! # Why leases are safe here (and what the unsafe variants break)
//!
//! A follower that heard from a leader less than `election_ticks` ago ignores vote and
//! pre-vote requests entirely. The leader stamps each heartbeat round with the tick at
//! which it was *sent*; once a quorum acknowledged round r sent at tick t, every member of
//! that quorum reset its election clock at or after t, so none of them votes for anyone
//! before t + election_ticks (their clock), and no other leader can exist before then. The
//! leader therefore serves reads locally until t + election_ticks - margin (margin covers
//! clock-rate differences and tick granularity). Ticks are driven by the monotonic clock.
//!
//! * `--read unsafe-lease-wallclock` measures the same lease on the wall clock: a clock
//!   that jumps back or runs slow (libfaketime) extends the lease past the point where a new
//!   leader may exist: stale reads.
//! * `--read unsafe-local` serves reads from whatever a node believing itself leader has:
//!   a deposed leader on the minority side of a partition returns stale values.
//!
//! Both unsafe read modes also turn off check-quorum (a leader stepping down when it has not
//! heard from a majority for an election timeout), as naive implementations do, so a deposed
//! leader keeps serving for the whole partition instead of for a few hundred milliseconds.
//! * `--unsafe-commit-previous-term` models an implementation without the current-term
//!   commit rule (paper 5.4.2), everywhere that rule matters, as such implementations are
//!   written: (1) it commits an entry of an earlier term as soon as a majority stores it
//!   (Figure 8: a later leader may overwrite a committed entry); (2) a new leader appends
//!   no no-op, whose only purpose is to get earlier entries committed under the correct
//!   rule; it probes its followers with empty AppendEntries instead (paper, Figure 2);
//!   (3) read-index and lease reads are served at the leader's commit index as it stands,
//!   after a heartbeat round (or within the lease), without first waiting for an entry of
//!   its own term to commit (thesis 6.4, step 1), since counting replicas already commits
//!   what it inherited. What clients see: (1) alone is nearly invisible (the entry lost in
//!   Figure 8 belongs to a client that was told "unknown", and a read sees it only in the
//!   milliseconds between its commit and its overwrite; `raft_tests.rs` shows the engine
//!   losing it with a scripted schedule), while (3) makes a new leader whose commit index
//!   lags the previous leader's answer reads without writes that were acknowledged before
//!   the read began: stale reads, right after elections. Both come from one mistake: taking
//!   the commit index as authoritative without an entry of the leader's own term.
//!
//!
//! # Snapshots and log compaction (thesis chapter 5)
//!
//! Once `snapshot_entries` entries (or `snapshot_bytes` bytes of them) were applied since the
//! last snapshot, a Ready asks the driver to snapshot the state machine at the applied index
//! ([`Ready::snapshot`]); the driver makes it durable, compacts the stored log and hands it
//! back ([`Engine::snapshot_taken`]), and the engine drops that prefix of its in-memory log,
//! keeping the index and term of the last dropped entry (`base`, `base_term`) for the
//! consistency check of the next AppendEntries. A follower whose next entry is below the
//! leader's `base` gets the snapshot instead (InstallSnapshot, thesis Figure 5.3), in chunks
//! of `snapshot_chunk` bytes, one in flight at a time; a complete, verified snapshot replaces
//! the follower's log, unless its log holds the snapshot's last entry (same index and term),
//! in which case the entries after it are kept. A node restarts from its snapshot plus the
//! log after it.
//!
//! # Membership changes (thesis chapter 4, single-server changes)
//!
//! A configuration (voters, learners, addresses of added members; `membership.rs`) is
//! written whole into a change entry, and takes effect on every node as soon as the entry is
//! in its log — appended, not committed (thesis 4.1); a log truncation that removes it
//! reverts to the previous one. Voters alone elect and commit: quorums are majorities of the
//! voters of the node's current configuration. A leader accepts one change at a time: none
//! while its previous change entry is uncommitted, none before an entry of its own term is
//! committed (the fix for the single-server change bug Ongaro described in 2015: a new
//! leader could otherwise commit a change that conflicts with one an earlier leader left
//! uncommitted). Changes: add a learner (it catches up by snapshot and log without counting
//! toward any quorum), promote a caught-up learner to voter, remove a voter or learner. A
//! leader that removes itself keeps leading without counting itself until the change
//! commits, then steps down (thesis 4.2.2); a node that is not a voter of its configuration
//! never campaigns, so removed nodes stay quiet once they hold their removal (the leader
//! keeps replicating to them until they do), and leader stickiness (below) keeps those that
//! never learnt it from disrupting the cluster (thesis 4.2.3).
//!
//! `--unsafe-multi-server-change` accepts entries that add or remove several voters at
//! once. Old and new configurations then need not share a majority: with voters {1,2,3}
//! and a change to {1,2,3,4,5} appended only on 1, 4 and 5, {1,4,5} (a majority of the new)
//! and {2,3} (of the old) elect two leaders in one term, and both commit.

use super::{Apply, Engine, EngineConfig, Outbound, ReadMode, ReadReady, Ready, Role, Status};
use crate::membership::{ChangeError, ConfChange, Membership};
use crate::msg::{Command, Entry, NodeId, Op, Payload, Reply, ReqId};
use crate::snapshot::{
    Chunk, Compaction, Install, Offer, Outgoing, Receiver, Snapshot, SnapshotRequest,
};
use crate::storage::Recovered;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Raft's peer messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftMsg {
    /// RequestVote, or a pre-vote probe when `pre` (then `term` is the prospective term).
    Vote {
        /// Candidate's term (or prospective term for pre-vote).
        term: u64,
        /// Pre-vote round.
        pre: bool,
        /// Candidate's last log index.
        last_index: u64,
        /// Candidate's last log term.
        last_term: u64,
    },
    /// Answer to `Vote`.
    VoteResp {
        /// Responder's term (for a granted pre-vote: the prospective term).
        term: u64,
        /// Pre-vote round.
        pre: bool,
        /// Granted?
        granted: bool,
    },
    /// AppendEntries.
    Append {
        /// Leader's term.
        term: u64,
        /// Index preceding `entries`.
        prev_index: u64,
        /// Term at `prev_index`.
        prev_term: u64,
        /// New entries (may be empty when probing).
        entries: Vec<Entry>,
        /// Leader's commit index.
        commit: u64,
    },
    /// Answer to `Append`.
    AppendResp {
        /// Responder's term.
        term: u64,
        /// Whether the log matched.
        success: bool,
        /// On success: highest index known to match the leader. On failure: a hint for
        /// the next index to try.
        index: u64,
    },
    /// Heartbeat carrying a round number used by read-index and leases.
    Heartbeat {
        /// Leader's term.
        term: u64,
        /// min(follower's match index, leader commit): safe for the follower to commit.
        commit: u64,
        /// Heartbeat round.
        ctx: u64,
    },
    /// Answer to `Heartbeat`.
    HeartbeatResp {
        /// Responder's term.
        term: u64,
        /// Round being acknowledged.
        ctx: u64,
    },
    /// InstallSnapshot: one chunk of the leader's snapshot.
    Snapshot {
        /// Leader's term.
        term: u64,
        /// The chunk.
        chunk: Chunk,
    },
    /// Answer to `Snapshot`.
    SnapshotResp {
        /// Responder's term.
        term: u64,
        /// Index of the snapshot answered.
        index: u64,
        /// Byte offset of the chunk wanted next (when not `done`).
        next: u64,
        /// The follower holds everything up to `index` (installed, or had it already).
        done: bool,
    },
}

/// Engine-private contents of a Raft log entry (`Payload::Engine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EngineEntry {
    /// A membership change and the whole configuration it leads to.
    Config {
        change: ConfChange,
        membership: Membership,
    },
}

/// Decodes a configuration entry's membership (its index set to the entry's).
fn conf_of(e: &Entry) -> Option<Membership> {
    let Payload::Engine(bytes) = &e.payload else {
        return None;
    };
    match serde_json::from_slice(bytes) {
        Ok(EngineEntry::Config { mut membership, .. }) => {
            membership.index = e.index;
            Some(membership)
        }
        Err(_) => None,
    }
}

/// Errors building a Raft engine from storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaftError {
    /// Stored hard state cannot be decoded.
    #[error("stored raft hard state is undecodable: {0}")]
    HardState(String),
    /// Stored log has a gap.
    #[error("stored raft log is not contiguous: expected index {expected}, found {found}")]
    Gap {
        /// Index expected next.
        expected: u64,
        /// Index found.
        found: u64,
    },
    /// The stored snapshot's metadata cannot be decoded.
    #[error("stored snapshot at index {index} has undecodable raft metadata: {reason}")]
    SnapshotMeta {
        /// The snapshot's index.
        index: u64,
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct HardState {
    term: u64,
    vote: Option<NodeId>,
    commit: u64,
}

/// Leader's view of one follower.
#[derive(Debug, Clone)]
struct Progress {
    next: u64,
    matched: u64,
    /// Probe: one append per response/heartbeat; otherwise pipelined.
    probing: bool,
    /// Heard from since the last check-quorum.
    recent_active: bool,
    /// Highest heartbeat round acknowledged.
    acked_ctx: u64,
    /// `matched` at the previous heartbeat, to detect lost appends.
    matched_at_last_hb: u64,
    /// In probe mode: an append (or a snapshot chunk) is outstanding.
    probe_sent: bool,
    /// The snapshot being sent, and the offset the follower asked for last.
    snap: Option<(Outgoing, u64)>,
    /// Snapshot offset at the previous heartbeat, to detect lost chunks.
    snap_offset_at_last_hb: u64,
}

impl Progress {
    fn new(next: u64) -> Self {
        Progress {
            next,
            matched: 0,
            probing: true,
            recent_active: true,
            acked_ctx: 0,
            matched_at_last_hb: 0,
            probe_sent: false,
            snap: None,
            snap_offset_at_last_hb: 0,
        }
    }
}

/// A read waiting for a heartbeat round.
#[derive(Debug, Clone)]
struct PendingRead {
    req: ReqId,
    index: u64,
    ctx: u64,
}

/// The Raft engine.
pub struct Raft {
    cfg: EngineConfig,
    rng: ChaCha8Rng,
    // Durable state.
    term: u64,
    vote: Option<NodeId>,
    /// Entries after `base`: `log[0].index == base + 1`.
    log: Vec<Entry>,
    /// Index of the last entry the snapshot covers (0 without a snapshot).
    base: u64,
    /// Term of that entry.
    base_term: u64,
    commit: u64,
    // Membership.
    /// The configuration at `base`: from the snapshot, or from flags.
    base_conf: Membership,
    /// Configurations of the change entries in `log`, in index order; the last one rules.
    confs: Vec<Membership>,
    /// Leader: nodes removed by a change, and its index; replicated to until they hold it.
    leaving: BTreeMap<NodeId, u64>,
    /// Leader: the change in flight and the admin request waiting for it.
    conf_req: Option<(u64, ReqId)>,
    // Snapshots.
    /// The latest snapshot, encoded for shipping to followers.
    outgoing: Option<Outgoing>,
    /// Chunks of a snapshot arriving from the leader.
    receiver: Receiver,
    /// A snapshot for the driver to install with the next Ready.
    install: Option<Install>,
    /// Entries applied since the last snapshot, against the thresholds.
    compaction: Compaction,
    // Volatile state.
    role: Role,
    leader: Option<NodeId>,
    ticks: u64,
    wall_ms: u64,
    election_elapsed: u64,
    /// Set until the first election timeout after start (see `in_lease`).
    booting: bool,
    heartbeat_elapsed: u64,
    randomized_timeout: u64,
    votes: HashMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,
    /// Index of this leader's first entry in its term (its no-op); with
    /// `unsafe_commit_previous_term`, of its last entry when elected.
    term_start: u64,
    /// Highest index durable locally (a leader counts itself only up to here).
    persisted: u64,
    /// `last_index` when the last Ready was taken; becomes `persisted` on advance.
    persisting_upto: u64,
    applied_handed: u64,
    proposals: HashMap<u64, (u64, ReqId)>,
    // Read-index / lease.
    hb_ctx: u64,
    hb_sent: VecDeque<(u64, u64, u64)>, // (ctx, tick, wall_ms)
    quorum_ctx: u64,
    lease_until_tick: u64,
    lease_until_wall: u64,
    reads_waiting_noop: Vec<ReqId>,
    reads_pending: Vec<PendingRead>,
    // Ready accumulators.
    msgs: Vec<Outbound<RaftMsg>>,
    persisted_msgs: Vec<Outbound<RaftMsg>>,
    truncate_from: Option<u64>,
    unstable_from: Option<u64>,
    hs_dirty: bool,
    need_bcast: bool,
    /// A heartbeat round is needed for waiting reads (sent in `ready`, so every read
    /// registered before the messages leave shares it).
    need_read_round: bool,
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

impl Raft {
    /// Builds a node from configuration and what storage recovered: its snapshot (if any),
    /// then the stored entries after it.
    pub fn new(cfg: EngineConfig, recovered: Recovered) -> Result<Raft, RaftError> {
        let hs: HardState = match &recovered.hard_state {
            Some(b) => {
                serde_json::from_slice(b).map_err(|e| RaftError::HardState(e.to_string()))?
            }
            None => HardState::default(),
        };
        let (base, base_term, base_conf) = match &recovered.snapshot {
            Some(snap) => {
                let mut conf: Membership =
                    serde_json::from_slice(&snap.meta).map_err(|e| RaftError::SnapshotMeta {
                        index: snap.index,
                        reason: e.to_string(),
                    })?;
                conf.index = conf.index.min(snap.index);
                (snap.index, snap.term, conf)
            }
            None if cfg.join => (0, 0, Membership::default()),
            None => (
                0,
                0,
                Membership::bootstrap(cfg.peers.iter().chain(std::iter::once(&cfg.id))),
            ),
        };
        let mut entries = recovered.entries;
        // Entries the snapshot covers are left over from a crash before compaction. If the
        // one at the snapshot's index has another term, the snapshot was installed over a
        // conflicting log that the crash kept from being dropped: drop it now.
        if entries.get(&base).is_some_and(|e| e.term != base_term) {
            tracing::warn!(id = %cfg.id, index = base, "stored log conflicts with the snapshot; dropping it");
            entries.clear();
        }
        let mut log = Vec::with_capacity(entries.len());
        for (idx, e) in entries.into_iter().filter(|(i, _)| *i > base) {
            let expected = base + log.len() as u64 + 1;
            if idx != expected || e.index != expected {
                return Err(RaftError::Gap {
                    expected,
                    found: idx,
                });
            }
            log.push(e);
        }
        let confs: Vec<Membership> = log.iter().filter_map(conf_of).collect();
        let last = base + log.len() as u64;
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ fnv(&cfg.id));
        let install = recovered.snapshot.as_ref().map(|s| Install {
            snapshot: s.clone(),
            durable: true,
            keep_log: true,
        });
        let outgoing = recovered.snapshot.as_deref().map(Outgoing::new);
        let mut r = Raft {
            rng,
            term: hs.term,
            vote: hs.vote,
            commit: hs.commit.min(last).max(base),
            log,
            base,
            base_term,
            base_conf,
            confs,
            leaving: BTreeMap::new(),
            conf_req: None,
            outgoing,
            receiver: Receiver::default(),
            install,
            compaction: Compaction::new(cfg.snapshot_entries, cfg.snapshot_bytes),
            role: Role::Follower,
            leader: None,
            ticks: 0,
            wall_ms: 0,
            election_elapsed: 0,
            booting: true,
            heartbeat_elapsed: 0,
            randomized_timeout: cfg.election_ticks,
            votes: HashMap::new(),
            progress: BTreeMap::new(),
            term_start: 0,
            persisted: last,
            persisting_upto: last,
            applied_handed: base,
            proposals: HashMap::new(),
            hb_ctx: 0,
            hb_sent: VecDeque::new(),
            quorum_ctx: 0,
            lease_until_tick: 0,
            lease_until_wall: 0,
            reads_waiting_noop: Vec::new(),
            reads_pending: Vec::new(),
            msgs: Vec::new(),
            persisted_msgs: Vec::new(),
            truncate_from: None,
            unstable_from: None,
            hs_dirty: false,
            need_bcast: false,
            need_read_round: false,
            reads_ready: Vec::new(),
            replies: Vec::new(),
            cfg,
        };
        r.reset_timeout();
        Ok(r)
    }

    /// The configuration in force: the last change entry in the log, else the snapshot's
    /// or the flags'.
    fn conf(&self) -> &Membership {
        self.confs.last().unwrap_or(&self.base_conf)
    }

    /// The configuration in force at `index`.
    fn conf_at(&self, index: u64) -> &Membership {
        self.confs
            .iter()
            .rev()
            .find(|c| c.index <= index)
            .unwrap_or(&self.base_conf)
    }

    fn is_voter(&self) -> bool {
        self.conf().voters.contains(&self.cfg.id)
    }

    fn quorum(&self) -> usize {
        self.conf().quorum()
    }

    /// Voters other than this node.
    fn other_voters(&self) -> Vec<NodeId> {
        self.conf()
            .voters
            .iter()
            .filter(|v| **v != self.cfg.id)
            .cloned()
            .collect()
    }

    /// Whether `yes` (a set of nodes agreeing) holds a majority of the voters.
    fn is_quorum<'a>(&self, yes: impl IntoIterator<Item = &'a NodeId>) -> bool {
        let voters = &self.conf().voters;
        yes.into_iter().filter(|n| voters.contains(*n)).count() >= self.quorum()
    }

    fn last_index(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    fn last_term(&self) -> u64 {
        self.log.last().map_or(self.base_term, |e| e.term)
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.base {
            Some(self.base_term)
        } else if index < self.base {
            None
        } else {
            self.log
                .get((index - self.base) as usize - 1)
                .map(|e| e.term)
        }
    }

    /// The entry at `index`, which must be in `(base, last_index]`.
    fn entry(&self, index: u64) -> &Entry {
        &self.log[(index - self.base) as usize - 1]
    }

    /// Index of the last entry covered by the snapshot (0 without one).
    pub fn snapshot_index(&self) -> u64 {
        self.base
    }

    /// The configuration in force (tests and diagnostics).
    pub fn config(&self) -> &Membership {
        self.conf()
    }

    /// Current log (tests and diagnostics).
    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    /// Current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Commit index.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// Test hook: start an election now (raft-rs's `MsgHup`); a non-voter does not.
    #[cfg(test)]
    pub(crate) fn campaign_now(&mut self) {
        if self.is_voter() {
            let pre = self.cfg.prevote;
            self.campaign(pre);
        }
    }

    /// Test hook: forget the leader, as if the election timeout had passed without contact.
    #[cfg(test)]
    pub(crate) fn forget_leader(&mut self) {
        if self.role != Role::Leader {
            self.leader = None;
        }
        self.booting = false;
    }

    fn lease_ticks(&self) -> u64 {
        let margin = (self.cfg.election_ticks / 5).max(2);
        self.cfg.election_ticks.saturating_sub(margin)
    }

    /// Whether this node still honours a leader's lease and must not vote for anyone else.
    /// A freshly started node assumes a lease it may have acknowledged before crashing.
    fn in_lease(&self) -> bool {
        (self.leader.is_some() || self.booting) && self.election_elapsed < self.cfg.election_ticks
    }

    /// Unsafe read modes keep a deposed leader serving: they skip check-quorum step-down,
    /// as naive implementations do.
    fn check_quorum(&self) -> bool {
        !matches!(
            self.cfg.read_mode,
            ReadMode::UnsafeLocal | ReadMode::UnsafeLeaseWallclock
        )
    }

    fn reset_timeout(&mut self) {
        let base = self.cfg.election_ticks.max(1);
        self.randomized_timeout = self.rng.gen_range(base..2 * base);
    }

    fn send(&mut self, to: &str, msg: RaftMsg) {
        self.msgs.push(Outbound {
            to: to.to_string(),
            msg,
        });
    }

    fn send_persisted(&mut self, to: &str, msg: RaftMsg) {
        self.persisted_msgs.push(Outbound {
            to: to.to_string(),
            msg,
        });
    }

    fn set_term(&mut self, term: u64) {
        if term != self.term {
            self.term = term;
            self.vote = None;
            self.hs_dirty = true;
        }
    }

    fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        let was = self.role;
        self.set_term(term);
        self.role = Role::Follower;
        if (leader.is_some() || was != Role::Follower) && self.leader != leader {
            tracing::info!(id = %self.cfg.id, term, leader = ?leader, "following");
        }
        self.leader = leader;
        self.election_elapsed = 0;
        self.reset_timeout();
        if was == Role::Leader {
            tracing::info!(id = %self.cfg.id, term, "stepped down from leader");
            self.abandon_leadership();
        }
    }

    /// Leadership lost: proposals have unknown outcome, waiting reads fail definitely.
    fn abandon_leadership(&mut self) {
        let mut props: Vec<_> = self.proposals.drain().collect();
        props.sort();
        for (_, (_, req)) in props {
            self.replies.push((req, Reply::Unknown));
        }
        let leader = self.leader.clone();
        let reads: Vec<ReqId> = self
            .reads_waiting_noop
            .drain(..)
            .chain(self.reads_pending.drain(..).map(|r| r.req))
            .collect();
        for req in reads {
            self.replies.push((req, Reply::NotLeader(leader.clone())));
        }
        if let Some((_, req)) = self.conf_req.take() {
            self.replies.push((req, Reply::Unknown));
        }
        self.leaving.clear();
        self.progress.clear();
        self.hb_sent.clear();
        self.lease_until_tick = 0;
        self.lease_until_wall = 0;
        self.need_read_round = false;
    }

    fn campaign(&mut self, pre: bool) {
        if pre {
            self.role = Role::PreCandidate;
            self.leader = None;
            tracing::info!(id = %self.cfg.id, term = self.term + 1, "starting pre-vote");
        } else {
            let t = self.term + 1;
            self.set_term(t);
            self.vote = Some(self.cfg.id.clone());
            self.hs_dirty = true;
            self.role = Role::Candidate;
            self.leader = None;
            tracing::info!(id = %self.cfg.id, term = self.term, "starting election");
        }
        self.election_elapsed = 0;
        self.reset_timeout();
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        if self.is_quorum([&self.cfg.id]) {
            if pre {
                self.campaign(false);
            } else {
                self.become_leader();
            }
            return;
        }
        let term = if pre { self.term + 1 } else { self.term };
        let (last_index, last_term) = (self.last_index(), self.last_term());
        for p in self.other_voters() {
            self.send_persisted(
                &p,
                RaftMsg::Vote {
                    term,
                    pre,
                    last_index,
                    last_term,
                },
            );
        }
    }

    fn become_leader(&mut self) {
        tracing::info!(id = %self.cfg.id, term = self.term, "became leader");
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let next = self.last_index() + 1;
        self.progress.clear();
        self.leaving.clear();
        // A change this leader inherited uncommitted: the nodes it removes still need it.
        if let Some(last) = self.confs.last().filter(|c| c.index > self.commit) {
            let prev = self.conf_at(last.index - 1);
            for gone in prev.members().difference(&last.members()) {
                self.leaving.insert(gone.clone(), last.index);
            }
        }
        self.sync_progress(next);
        self.hb_sent.clear();
        self.quorum_ctx = self.hb_ctx;
        self.lease_until_tick = 0;
        self.lease_until_wall = 0;
        if self.cfg.unsafe_commit_previous_term {
            // The naive implementation (module doc): no no-op; reads and changes wait only
            // until everything this leader held when elected is committed (by counting), and
            // the followers are probed at once with empty AppendEntries (paper, Figure 2).
            self.term_start = next - 1;
            self.need_bcast = true;
        } else {
            self.term_start = next;
            self.append_local(Payload::Noop);
        }
        self.maybe_commit();
    }

    /// Leader: one `Progress` per node to replicate to (members and leaving nodes but
    /// this one); new ones start probing at `next`.
    fn sync_progress(&mut self, next: u64) {
        let mut targets = self.conf().members();
        targets.extend(self.leaving.keys().cloned());
        targets.remove(&self.cfg.id);
        self.progress.retain(|p, _| targets.contains(p));
        for t in targets {
            self.progress
                .entry(t)
                .or_insert_with(|| Progress::new(next));
        }
    }

    fn append_local(&mut self, payload: Payload) -> u64 {
        let index = self.last_index() + 1;
        let entry = Entry {
            index,
            term: self.term,
            payload,
        };
        let conf = conf_of(&entry);
        self.log.push(entry);
        self.unstable_from.get_or_insert(index);
        self.need_bcast = true;
        if let Some(c) = conf {
            self.adopt_conf(c);
        }
        index
    }

    /// A change entry was appended: its configuration takes effect now (thesis 4.1).
    fn adopt_conf(&mut self, c: Membership) {
        let prev = self.conf().clone();
        tracing::info!(
            id = %self.cfg.id,
            index = c.index,
            voters = ?c.voters,
            learners = ?c.learners,
            "configuration appended, in effect"
        );
        self.confs.push(c);
        if self.role == Role::Leader {
            let now = self.conf().clone();
            // Removals of earlier, committed changes: stop chasing nodes that never caught up.
            let commit = self.commit;
            self.leaving.retain(|_, i| *i > commit);
            for gone in prev.members().difference(&now.members()) {
                self.leaving.insert(gone.clone(), now.index);
            }
            for back in now.members() {
                self.leaving.remove(&back);
            }
            let next = self.last_index();
            self.sync_progress(next);
        }
    }

    /// Drops configurations of entries at or after `from` (a log truncation).
    fn truncate_confs(&mut self, from: u64) {
        let before = self.conf().index;
        self.confs.retain(|c| c.index < from);
        if self.conf().index != before {
            tracing::warn!(
                id = %self.cfg.id,
                index = self.conf().index,
                "configuration entry truncated away; back to the previous configuration"
            );
        }
    }

    fn log_ok(&self, last_index: u64, last_term: u64) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Sends appends to every follower that is behind (batched, pipelined).
    fn bcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for p in peers {
            self.send_append(&p, false);
        }
    }

    fn send_append(&mut self, peer: &str, force: bool) {
        let last = self.last_index();
        let Some(pr) = self.progress.get(peer) else {
            return;
        };
        let (mut next, matched, probing) = (pr.next, pr.matched, pr.probing);
        if (probing || pr.snap.is_some()) && pr.probe_sent && !force {
            return; // one probe (or snapshot chunk) at a time
        }
        if pr.snap.is_some() || next <= self.base {
            self.send_snapshot_chunk(peer);
            return;
        }
        if !probing && next > last {
            return; // nothing new
        }
        loop {
            if !probing && next - matched > self.cfg.max_inflight {
                break; // pipelining window full
            }
            let prev_index = next - 1;
            let prev_term = self.term_at(prev_index).unwrap_or(0);
            let end = last.min(prev_index + self.cfg.max_batch as u64);
            let from = (prev_index - self.base) as usize;
            let entries = self.log[from..(end - self.base) as usize].to_vec();
            let msg = RaftMsg::Append {
                term: self.term,
                prev_index,
                prev_term,
                entries,
                commit: self.commit,
            };
            self.send(peer, msg);
            next = end + 1;
            if probing || next > last {
                break;
            }
        }
        if let Some(pr) = self.progress.get_mut(peer) {
            pr.next = next;
            if probing {
                pr.probe_sent = true;
            }
        }
    }

    /// Sends the chunk of the snapshot `peer` asked for last, starting a transfer of the
    /// latest snapshot if none is under way (InstallSnapshot).
    fn send_snapshot_chunk(&mut self, peer: &str) {
        let latest = self.outgoing.clone();
        let max = self.cfg.snapshot_chunk;
        let term = self.term;
        let Some(pr) = self.progress.get_mut(peer) else {
            return;
        };
        if pr.snap.is_none() {
            let Some(out) = latest else {
                return; // unreachable: base > 0 only with a snapshot
            };
            tracing::info!(
                peer,
                index = out.index,
                bytes = out.bytes.len(),
                "sending snapshot"
            );
            pr.snap = Some((out, 0));
            pr.snap_offset_at_last_hb = 0;
        }
        let (out, offset) = pr.snap.as_ref().expect("set above");
        let chunk = out.chunk(*offset, max);
        pr.probe_sent = true;
        self.send(peer, RaftMsg::Snapshot { term, chunk });
    }

    fn handle_snapshot_resp(&mut self, from: &str, index: u64, next: u64, done: bool) {
        let Some(pr) = self.progress.get_mut(from) else {
            return;
        };
        pr.recent_active = true;
        let Some((out, _)) = pr.snap.as_ref().filter(|(o, _)| o.index == index) else {
            return; // an answer about an earlier transfer
        };
        pr.probe_sent = false;
        if done {
            tracing::info!(peer = from, index, "snapshot installed by follower");
            pr.snap = None;
            pr.matched = pr.matched.max(index);
            pr.next = pr.matched + 1;
            pr.probing = false;
            self.maybe_commit();
        } else {
            let out = out.clone();
            pr.snap = Some((out, next));
        }
        self.send_append(from, false);
    }

    fn bcast_heartbeat(&mut self) {
        self.hb_ctx += 1;
        let ctx = self.hb_ctx;
        self.hb_sent.push_back((ctx, self.ticks, self.wall_ms));
        while self.hb_sent.len() > 1024 {
            self.hb_sent.pop_front();
        }
        let peers: Vec<(NodeId, u64)> = self
            .progress
            .iter()
            .map(|(p, pr)| (p.clone(), pr.matched))
            .collect();
        for (p, matched) in peers {
            let commit = self.commit.min(matched);
            self.send(
                &p,
                RaftMsg::Heartbeat {
                    term: self.term,
                    commit,
                    ctx,
                },
            );
        }
        self.update_quorum_ctx();
    }

    /// The highest value a majority of the voters has reached, each voter's value being
    /// `of(progress)` for others and `own` for this node (when it votes).
    fn quorum_value(&self, of: impl Fn(&Progress) -> u64, own: u64) -> u64 {
        let mut vals: Vec<u64> = self
            .conf()
            .voters
            .iter()
            .map(|v| {
                if *v == self.cfg.id {
                    own
                } else {
                    self.progress.get(v).map_or(0, &of)
                }
            })
            .collect();
        vals.sort_unstable_by(|a, b| b.cmp(a));
        vals.get(self.quorum() - 1).copied().unwrap_or(0)
    }

    /// True when this node is the only voter (no round trip confirms anything).
    fn sole_voter(&self) -> bool {
        let v = &self.conf().voters;
        v.len() == 1 && v.contains(&self.cfg.id)
    }

    fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let own = self.persisted.min(self.last_index());
        let n = self.quorum_value(|p| p.matched, own);
        if n > self.commit {
            let t = self.term_at(n).unwrap_or(0);
            if t == self.term || self.cfg.unsafe_commit_previous_term {
                self.commit = n;
                self.release_noop_reads();
                self.conf_committed();
            }
        }
    }

    /// Leader, after its commit index moved: answers the change in flight once committed,
    /// stops chasing removed nodes that hold their removal, and steps down if the
    /// committed configuration no longer has it as a voter (thesis 4.2.2).
    fn conf_committed(&mut self) {
        if let Some((i, req)) = self.conf_req {
            if i <= self.commit {
                self.conf_req = None;
                self.replies.push((req, Reply::Ok));
            }
        }
        let commit = self.commit;
        let caught_up: Vec<NodeId> = self
            .leaving
            .iter()
            .filter(|(n, i)| {
                **i <= commit && self.progress.get(*n).is_none_or(|p| p.matched >= **i)
            })
            .map(|(n, _)| n.clone())
            .collect();
        if !caught_up.is_empty() {
            for n in &caught_up {
                self.leaving.remove(n);
            }
            let next = self.last_index() + 1;
            self.sync_progress(next);
        }
        if self.conf().index <= commit && !self.is_voter() {
            tracing::info!(
                id = %self.cfg.id,
                term = self.term,
                index = self.conf().index,
                "removed from the configuration, which is committed: stepping down"
            );
            // Tell the followers the new commit index before going quiet.
            self.bcast_heartbeat();
            let t = self.term;
            self.become_follower(t, None);
        }
    }

    fn noop_committed(&self) -> bool {
        self.role == Role::Leader && self.commit >= self.term_start
    }

    fn release_noop_reads(&mut self) {
        if !self.noop_committed() || self.reads_waiting_noop.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.reads_waiting_noop);
        for req in waiting {
            self.start_read(req);
        }
    }

    /// A read on a leader whose no-op is committed.
    fn start_read(&mut self, req: ReqId) {
        let index = self.commit;
        match self.cfg.read_mode {
            ReadMode::Lease if self.ticks < self.lease_until_tick => {
                self.reads_ready.push(ReadReady { req, index });
                return;
            }
            ReadMode::UnsafeLeaseWallclock if self.wall_ms < self.lease_until_wall => {
                self.reads_ready.push(ReadReady { req, index });
                return;
            }
            _ => {}
        }
        if self.sole_voter() {
            self.reads_ready.push(ReadReady { req, index });
            return;
        }
        // Needs a heartbeat round sent after now.
        let ctx = self.hb_ctx + 1;
        self.reads_pending.push(PendingRead { req, index, ctx });
        if self.quorum_ctx >= self.hb_ctx {
            // No round in flight: start one when the messages leave (batches this step).
            self.need_read_round = true;
        }
    }

    fn update_quorum_ctx(&mut self) {
        let q = self.quorum_value(|p| p.acked_ctx, self.hb_ctx);
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
        let (ready, rest): (Vec<_>, Vec<_>) =
            self.reads_pending.drain(..).partition(|r| r.ctx <= q);
        self.reads_pending = rest;
        for r in ready {
            self.reads_ready.push(ReadReady {
                req: r.req,
                index: r.index,
            });
        }
        // Reads that arrived during the finished round need another one.
        if self.reads_pending.iter().any(|r| r.ctx > self.hb_ctx) {
            self.need_read_round = true;
        }
    }

    fn handle_append(
        &mut self,
        from: &str,
        mut prev_index: u64,
        mut prev_term: u64,
        mut entries: Vec<Entry>,
        commit: u64,
    ) {
        if prev_index < self.base {
            // Entries up to `base` are in our snapshot: committed, so the leader has them
            // too. Skip them and check the rest against the snapshot's last entry.
            let skip = (self.base - prev_index) as usize;
            if entries.len() <= skip {
                let msg = RaftMsg::AppendResp {
                    term: self.term,
                    success: true,
                    index: self.base,
                };
                self.send_persisted(from, msg);
                return;
            }
            entries.drain(..skip);
            prev_index = self.base;
            prev_term = self.base_term;
        }
        let last = self.last_index();
        let reject = |this: &mut Raft, hint: u64| {
            let msg = RaftMsg::AppendResp {
                term: this.term,
                success: false,
                index: hint,
            };
            this.send_persisted(from, msg);
        };
        if prev_index > last {
            reject(self, last + 1);
            return;
        }
        if self.term_at(prev_index) != Some(prev_term) {
            // Skip back over the whole conflicting term (never below commit + 1).
            let bad = self.term_at(prev_index).unwrap_or(0);
            let mut hint = prev_index;
            while hint > self.commit + 1 && self.term_at(hint - 1) == Some(bad) {
                hint -= 1;
            }
            reject(self, hint.max(1));
            return;
        }
        let matched = prev_index + entries.len() as u64;
        let mut new_from = None;
        for (i, e) in entries.iter().enumerate() {
            match self.term_at(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    if e.index <= self.commit {
                        // Only reachable through --unsafe-commit-previous-term: a committed
                        // entry is being overwritten (the anomaly that flag demonstrates).
                        assert!(
                            self.cfg.unsafe_commit_previous_term,
                            "raft: leader conflicts with committed entry {}",
                            e.index
                        );
                        tracing::error!(id = %self.cfg.id, index = e.index, "overwriting a committed entry (unsafe mode)");
                        self.commit = (e.index - 1).max(self.base);
                    }
                    tracing::warn!(
                        id = %self.cfg.id,
                        from_index = e.index,
                        dropped = last - e.index + 1,
                        "truncating conflicting log suffix"
                    );
                    self.log.truncate((e.index - self.base) as usize - 1);
                    self.truncate_confs(e.index);
                    let t = self.truncate_from.map_or(e.index, |t| t.min(e.index));
                    self.truncate_from = Some(t);
                    new_from = Some(i);
                    break;
                }
                None => {
                    new_from = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = new_from {
            let first = entries[i].index;
            for e in entries.into_iter().skip(i) {
                let conf = conf_of(&e);
                self.log.push(e);
                if let Some(c) = conf {
                    self.adopt_conf(c);
                }
            }
            let u = self.unstable_from.map_or(first, |u| u.min(first));
            self.unstable_from = Some(u);
            self.persisted = self.persisted.min(first - 1);
        }
        let new_commit = commit.min(matched);
        if new_commit > self.commit {
            self.commit = new_commit;
        }
        let msg = RaftMsg::AppendResp {
            term: self.term,
            success: true,
            index: matched,
        };
        self.send_persisted(from, msg);
    }

    fn handle_append_resp(&mut self, from: &str, success: bool, index: u64) {
        let last = self.last_index();
        let Some(pr) = self.progress.get_mut(from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if success {
            if index > pr.matched {
                pr.matched = index;
            }
            pr.next = pr.next.max(pr.matched + 1);
            pr.probing = false;
            self.maybe_commit();
            // (Committing may have dropped this node: a removed one that caught up.)
            if self.progress.get(from).is_some_and(|p| p.next <= last) {
                self.send_append(from, false);
            }
        } else {
            // Rejection: back off to the hint, never below what is known to match.
            let hint = index.max(pr.matched + 1).min(last + 1);
            if hint < pr.next || pr.probing {
                pr.next = hint;
                pr.probing = true;
                self.send_append(from, true);
            }
        }
    }

    fn handle_vote(&mut self, from: &str, term: u64, pre: bool, last_index: u64, last_term: u64) {
        let log_ok = self.log_ok(last_index, last_term);
        let granted = if pre {
            term > self.term && log_ok
        } else {
            term == self.term
                && log_ok
                && (self.vote.is_none() || self.vote.as_deref() == Some(from))
        };
        if granted && !pre {
            self.vote = Some(from.to_string());
            self.hs_dirty = true;
            self.election_elapsed = 0;
            tracing::info!(id = %self.cfg.id, term, candidate = from, "granted vote");
        }
        let resp_term = if pre && granted { term } else { self.term };
        self.send_persisted(
            from,
            RaftMsg::VoteResp {
                term: resp_term,
                pre,
                granted,
            },
        );
    }

    fn handle_vote_resp(&mut self, from: &str, term: u64, pre: bool, granted: bool) {
        let expected = if pre {
            Role::PreCandidate
        } else {
            Role::Candidate
        };
        let want_term = if pre { self.term + 1 } else { self.term };
        if self.role != expected || term != want_term {
            return;
        }
        self.votes.insert(from.to_string(), granted);
        let yes: Vec<&NodeId> = self.votes.iter().filter(|v| *v.1).map(|v| v.0).collect();
        let no: Vec<&NodeId> = self.votes.iter().filter(|v| !*v.1).map(|v| v.0).collect();
        if self.is_quorum(yes) {
            if pre {
                self.campaign(false);
            } else {
                self.become_leader();
            }
        } else if self.is_quorum(no) {
            let t = self.term;
            self.become_follower(t, None);
        }
    }

    /// A snapshot request when enough was applied since the last one (module doc).
    fn snapshot_due(&self) -> Option<SnapshotRequest> {
        if !self.compaction.due(self.applied_handed - self.base) {
            return None;
        }
        let index = self.applied_handed;
        Some(SnapshotRequest {
            index,
            term: self.term_at(index).unwrap_or(0),
            meta: serde_json::to_vec(self.conf_at(index)).expect("configurations serialize"),
        })
    }

    /// Follower: a chunk of the leader's snapshot (thesis Figure 5.3).
    fn handle_snapshot(&mut self, from: &str, chunk: Chunk) {
        let index = chunk.index;
        let resp = |this: &Raft, next: u64, done: bool| RaftMsg::SnapshotResp {
            term: this.term,
            index,
            next,
            done,
        };
        if index <= self.commit {
            // Everything up to there is committed here already (and so matches).
            self.receiver.reset();
            let m = resp(self, 0, true);
            self.send(from, m);
            return;
        }
        match self.receiver.offer(chunk) {
            Offer::Next(next) => {
                let m = resp(self, next, false);
                self.send(from, m);
            }
            Offer::Invalid(why) => {
                tracing::warn!(id = %self.cfg.id, from, index, %why, "snapshot transfer failed; asking from the start");
                let m = resp(self, 0, false);
                self.send(from, m);
            }
            Offer::Complete(snap) => match serde_json::from_slice::<Membership>(&snap.meta) {
                Ok(conf) => {
                    self.install_snapshot(snap, conf);
                    // Acknowledged only once the install is durable.
                    let m = resp(self, 0, true);
                    self.send_persisted(from, m);
                }
                Err(e) => {
                    tracing::warn!(id = %self.cfg.id, from, index, error = %e, "snapshot metadata undecodable");
                    let m = resp(self, 0, false);
                    self.send(from, m);
                }
            },
        }
    }

    /// Replaces the log up to `snap.index` with the snapshot; entries after it are kept if
    /// the log holds the snapshot's last entry, else the whole log goes.
    fn install_snapshot(&mut self, snap: Snapshot, mut conf: Membership) {
        let index = snap.index;
        let keep = self.term_at(index) == Some(snap.term);
        tracing::info!(
            id = %self.cfg.id,
            index,
            term = snap.term,
            bytes = snap.data.len(),
            keep_log_after = keep,
            "installing snapshot from leader"
        );
        if keep {
            self.log.drain(..(index - self.base) as usize);
            self.confs.retain(|c| c.index > index);
            self.persisted = self.persisted.max(index);
        } else {
            self.log.clear();
            self.confs.clear();
            self.persisted = index;
            self.truncate_from = None;
        }
        self.persisting_upto = self.persisting_upto.max(index);
        self.unstable_from = self.unstable_from.filter(|u| *u > index);
        conf.index = conf.index.min(index);
        self.base_conf = conf;
        self.base = index;
        self.base_term = snap.term;
        self.commit = self.commit.max(index);
        self.applied_handed = index;
        self.compaction.reset();
        self.hs_dirty = true;
        self.outgoing = Some(Outgoing::new(&snap));
        let keep_log = keep && self.install.as_ref().is_none_or(|i| i.keep_log);
        self.install = Some(Install {
            snapshot: Arc::new(snap),
            durable: false,
            keep_log,
        });
    }

    fn term_of(msg: &RaftMsg) -> u64 {
        match msg {
            RaftMsg::Vote { term, .. }
            | RaftMsg::VoteResp { term, .. }
            | RaftMsg::Append { term, .. }
            | RaftMsg::AppendResp { term, .. }
            | RaftMsg::Heartbeat { term, .. }
            | RaftMsg::HeartbeatResp { term, .. }
            | RaftMsg::Snapshot { term, .. }
            | RaftMsg::SnapshotResp { term, .. } => *term,
        }
    }
}

impl Engine for Raft {
    type Msg = RaftMsg;

    fn name(&self) -> &'static str {
        "raft"
    }

    fn tick(&mut self, wall_ms: u64) {
        self.ticks += 1;
        self.wall_ms = wall_ms;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks {
            self.booting = false;
        }
        if self.role == Role::Leader {
            self.heartbeat_elapsed += 1;
            if self.election_elapsed >= self.cfg.election_ticks {
                // Check quorum: step down if a majority has not been heard from.
                self.election_elapsed = 0;
                let mut active: Vec<&NodeId> = self
                    .progress
                    .iter()
                    .filter(|(_, p)| p.recent_active)
                    .map(|(n, _)| n)
                    .collect();
                active.push(&self.cfg.id);
                let ok = self.is_quorum(active);
                for p in self.progress.values_mut() {
                    p.recent_active = false;
                }
                if !ok && self.check_quorum() {
                    tracing::warn!(id = %self.cfg.id, term = self.term, "lost contact with quorum");
                    let t = self.term;
                    self.become_follower(t, None);
                    return;
                }
            }
            if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
                self.heartbeat_elapsed = 0;
                self.bcast_heartbeat();
                // Retransmit to followers that made no progress since the last heartbeat.
                let last = self.last_index();
                let stuck: Vec<NodeId> = self
                    .progress
                    .iter_mut()
                    .filter_map(|(p, pr)| {
                        let offset = pr.snap.as_ref().map_or(0, |s| s.1);
                        let stuck = pr.matched < last
                            && pr.matched == pr.matched_at_last_hb
                            && offset == pr.snap_offset_at_last_hb;
                        pr.matched_at_last_hb = pr.matched;
                        pr.snap_offset_at_last_hb = offset;
                        stuck.then(|| {
                            pr.next = pr.matched + 1;
                            pr.probing = true;
                            pr.probe_sent = false;
                            p.clone()
                        })
                    })
                    .collect();
                for p in stuck {
                    self.send_append(&p, true);
                }
            }
        } else if self.election_elapsed >= self.randomized_timeout && self.is_voter() {
            self.campaign(self.cfg.prevote);
        }
    }

    fn step(&mut self, from: &str, msg: RaftMsg) {
        let term = Self::term_of(&msg);
        if term > self.term {
            match &msg {
                RaftMsg::Vote { .. } if self.in_lease() => {
                    tracing::debug!(id = %self.cfg.id, from, "ignoring vote request: leader lease");
                    return;
                }
                RaftMsg::Vote { pre: true, .. } => {}
                RaftMsg::VoteResp {
                    pre: true,
                    granted: true,
                    ..
                } => {}
                RaftMsg::Append { .. } | RaftMsg::Heartbeat { .. } | RaftMsg::Snapshot { .. } => {
                    self.become_follower(term, Some(from.to_string()))
                }
                _ => self.become_follower(term, None),
            }
        } else if term < self.term {
            match msg {
                RaftMsg::Append { .. } | RaftMsg::Heartbeat { .. } | RaftMsg::Snapshot { .. } => {
                    // Tell a deposed leader about the newer term.
                    let t = self.term;
                    self.send_persisted(
                        from,
                        RaftMsg::AppendResp {
                            term: t,
                            success: false,
                            index: 0,
                        },
                    );
                }
                RaftMsg::Vote { pre: true, .. } => {
                    let t = self.term;
                    self.send_persisted(
                        from,
                        RaftMsg::VoteResp {
                            term: t,
                            pre: true,
                            granted: false,
                        },
                    );
                }
                _ => {}
            }
            return;
        }
        match msg {
            RaftMsg::Vote {
                term,
                pre,
                last_index,
                last_term,
            } => {
                if pre && self.in_lease() && self.role != Role::Leader {
                    return;
                }
                self.handle_vote(from, term, pre, last_index, last_term)
            }
            RaftMsg::VoteResp { term, pre, granted } => {
                self.handle_vote_resp(from, term, pre, granted)
            }
            RaftMsg::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                ..
            } => {
                if self.role != Role::Follower || self.leader.as_deref() != Some(from) {
                    self.become_follower(term, Some(from.to_string()));
                }
                self.election_elapsed = 0;
                self.handle_append(from, prev_index, prev_term, entries, commit);
            }
            RaftMsg::AppendResp { success, index, .. } => {
                if self.role == Role::Leader {
                    self.handle_append_resp(from, success, index);
                }
            }
            RaftMsg::Heartbeat { commit, ctx, .. } => {
                if self.role != Role::Follower || self.leader.as_deref() != Some(from) {
                    self.become_follower(term, Some(from.to_string()));
                }
                self.election_elapsed = 0;
                let c = commit.min(self.last_index());
                if c > self.commit {
                    self.commit = c;
                }
                let t = self.term;
                self.send_persisted(from, RaftMsg::HeartbeatResp { term: t, ctx });
            }
            RaftMsg::Snapshot { chunk, .. } => {
                if self.role != Role::Follower || self.leader.as_deref() != Some(from) {
                    self.become_follower(term, Some(from.to_string()));
                }
                self.election_elapsed = 0;
                self.handle_snapshot(from, chunk);
            }
            RaftMsg::SnapshotResp {
                index, next, done, ..
            } => {
                if self.role == Role::Leader {
                    self.handle_snapshot_resp(from, index, next, done);
                }
            }
            RaftMsg::HeartbeatResp { ctx, .. } => {
                if self.role != Role::Leader {
                    return;
                }
                let mut behind = false;
                let last = self.last_index();
                if let Some(pr) = self.progress.get_mut(from) {
                    pr.recent_active = true;
                    pr.acked_ctx = pr.acked_ctx.max(ctx);
                    behind = pr.matched < last && !pr.probing && pr.snap.is_none();
                }
                self.update_quorum_ctx();
                if behind {
                    self.send_append(from, false);
                }
            }
        }
    }

    fn propose(&mut self, req: ReqId, cmd: Command) {
        if self.role != Role::Leader {
            self.replies
                .push((req, Reply::NotLeader(self.leader.clone())));
            return;
        }
        let index = self.append_local(Payload::Command(cmd));
        self.proposals.insert(index, (self.term, req));
    }

    fn read(&mut self, req: ReqId, key: String) {
        if self.role != Role::Leader {
            self.replies
                .push((req, Reply::NotLeader(self.leader.clone())));
            return;
        }
        match self.cfg.read_mode {
            ReadMode::Log => self.propose(
                req,
                Command {
                    op: Op::Get { key },
                    client_id: None,
                    seq: None,
                },
            ),
            ReadMode::UnsafeLocal => self.reads_ready.push(ReadReady { req, index: 0 }),
            // The naive implementation trusts its commit index at once (module doc).
            _ if self.cfg.unsafe_commit_previous_term => self.start_read(req),
            _ => {
                if self.noop_committed() {
                    self.start_read(req);
                } else {
                    self.reads_waiting_noop.push(req);
                }
            }
        }
    }

    fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || !self.persisted_msgs.is_empty()
            || self.need_bcast
            || self.need_read_round
            || self.unstable_from.is_some()
            || self.truncate_from.is_some()
            || self.hs_dirty
            || self.commit > self.applied_handed
            || !self.reads_ready.is_empty()
            || !self.replies.is_empty()
            || self.install.is_some()
    }

    fn ready(&mut self) -> Ready<RaftMsg> {
        if self.need_bcast {
            self.need_bcast = false;
            if self.role == Role::Leader {
                self.bcast_append();
            }
        }
        if self.need_read_round {
            self.need_read_round = false;
            if self.role == Role::Leader && self.reads_pending.iter().any(|r| r.ctx > self.hb_ctx) {
                self.bcast_heartbeat();
            }
        }
        let mut rd = Ready {
            messages: std::mem::take(&mut self.msgs),
            persisted_messages: std::mem::take(&mut self.persisted_msgs),
            truncate_from: self.truncate_from.take(),
            install: self.install.take(),
            ..Ready::default()
        };
        if let Some(from) = self.unstable_from.take() {
            let from = from.max(self.base + 1);
            if from <= self.last_index() {
                rd.entries = self.log[(from - self.base) as usize - 1..].to_vec();
            }
        }
        if self.hs_dirty || !rd.entries.is_empty() {
            self.hs_dirty = false;
            let hs = HardState {
                term: self.term,
                vote: self.vote.clone(),
                commit: self.commit,
            };
            rd.hard_state = Some(serde_json::to_vec(&hs).expect("hard state serializes"));
        }
        rd.sync = rd.hard_state.is_some() || rd.truncate_from.is_some();
        self.persisting_upto = self.last_index();
        if self.commit > self.applied_handed {
            for i in self.applied_handed + 1..=self.commit {
                let entry = self.entry(i).clone();
                let req = match self.proposals.remove(&i) {
                    Some((t, req)) if t == entry.term => Some(req),
                    Some((_, req)) => {
                        self.replies.push((req, Reply::Unknown));
                        None
                    }
                    None => None,
                };
                self.compaction.applied(&entry);
                rd.committed.push(Apply { entry, req });
            }
            self.applied_handed = self.commit;
        }
        rd.snapshot = self.snapshot_due();
        rd.reads = std::mem::take(&mut self.reads_ready);
        rd.replies = std::mem::take(&mut self.replies);
        rd
    }

    fn advance(&mut self) {
        self.persisted = self.persisting_upto.min(self.last_index());
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    fn status(&self) -> Status {
        Status {
            role: self.role,
            term: self.term,
            leader: self.leader.clone(),
            commit_index: self.commit,
        }
    }

    fn snapshot_taken(&mut self, snap: &Snapshot) {
        if snap.index <= self.base || snap.index > self.applied_handed {
            return;
        }
        let conf = self.conf_at(snap.index).clone();
        self.log.drain(..(snap.index - self.base) as usize);
        self.confs.retain(|c| c.index > snap.index);
        self.base_conf = conf;
        self.base = snap.index;
        self.base_term = snap.term;
        let out = self.compaction.taken(&self.cfg.id, snap, self.log.len());
        self.outgoing = Some(out);
    }

    fn membership(&self) -> Option<&Membership> {
        Some(self.conf())
    }

    fn change_membership(&mut self, req: ReqId, change: ConfChange) -> Result<(), ChangeError> {
        if self.role != Role::Leader {
            return Err(ChangeError::NotLeader(self.leader.clone()));
        }
        if !self.noop_committed() {
            return Err(ChangeError::LeaderNotReady);
        }
        let current = self.conf();
        if current.index > self.commit {
            return Err(ChangeError::InProgress {
                index: current.index,
            });
        }
        if let ConfChange::Promote(id) = &change {
            if let Some(pr) = self.progress.get(id) {
                let caught_up =
                    pr.snap.is_none() && pr.matched + self.cfg.max_batch as u64 >= self.commit;
                if !caught_up && current.learners.contains(id) {
                    return Err(ChangeError::LearnerBehind {
                        id: id.clone(),
                        matched: pr.matched,
                        commit: self.commit,
                    });
                }
            }
        }
        let mut next = current.apply(&change, self.cfg.unsafe_multi_server_change)?;
        let index = self.last_index() + 1;
        next.index = index;
        tracing::info!(id = %self.cfg.id, index, change = %change.describe(), "proposing membership change");
        let bytes = serde_json::to_vec(&EngineEntry::Config {
            change,
            membership: next,
        })
        .expect("configurations serialize");
        self.append_local(Payload::Engine(bytes));
        self.conf_req = Some((index, req));
        Ok(())
    }
}

#[cfg(test)]
#[path = "raft_tests.rs"]
mod tests;
