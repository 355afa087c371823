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
//! * `--unsafe-commit-previous-term` commits an entry of an earlier term as soon as a
//!   majority stores it (Figure 8): a later leader may overwrite it: lost writes.
//!
//! Log compaction and snapshots are not implemented: the whole log is kept in memory and on
//! disk, which is fine for test runs of minutes.

use super::{Apply, Engine, EngineConfig, Outbound, ReadMode, ReadReady, Ready, Role, Status};
use crate::msg::{Command, Entry, NodeId, Op, Payload, Reply, ReqId};
use crate::storage::Recovered;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

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
    /// In probe mode: an append is outstanding.
    probe_sent: bool,
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
    log: Vec<Entry>,
    commit: u64,
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
    /// Index of this leader's first entry in its term (its no-op).
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
    /// Builds a node from configuration and what storage recovered.
    pub fn new(cfg: EngineConfig, recovered: Recovered) -> Result<Raft, RaftError> {
        let hs: HardState = match &recovered.hard_state {
            Some(b) => {
                serde_json::from_slice(b).map_err(|e| RaftError::HardState(e.to_string()))?
            }
            None => HardState::default(),
        };
        let mut log = Vec::with_capacity(recovered.entries.len());
        for (i, (idx, e)) in recovered.entries.into_iter().enumerate() {
            let expected = i as u64 + 1;
            if idx != expected || e.index != expected {
                return Err(RaftError::Gap {
                    expected,
                    found: idx,
                });
            }
            log.push(e);
        }
        let last = log.len() as u64;
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ fnv(&cfg.id));
        let mut r = Raft {
            rng,
            term: hs.term,
            vote: hs.vote,
            commit: hs.commit.min(last),
            log,
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
            applied_handed: 0,
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

    fn quorum(&self) -> usize {
        self.cfg.peers.len().div_ceil(2) + 1
    }

    fn last_index(&self) -> u64 {
        self.log.len() as u64
    }

    fn last_term(&self) -> u64 {
        self.log.last().map_or(0, |e| e.term)
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        if index == 0 {
            Some(0)
        } else {
            self.log.get(index as usize - 1).map(|e| e.term)
        }
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

    /// Test hook: start an election now (raft-rs's `MsgHup`).
    #[cfg(test)]
    pub(crate) fn campaign_now(&mut self) {
        let pre = self.cfg.prevote;
        self.campaign(pre);
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
        if self.votes.len() >= self.quorum() {
            if pre {
                self.campaign(false);
            } else {
                self.become_leader();
            }
            return;
        }
        let term = if pre { self.term + 1 } else { self.term };
        let (last_index, last_term) = (self.last_index(), self.last_term());
        for p in self.cfg.peers.clone() {
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
        self.progress = self
            .cfg
            .peers
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    Progress {
                        next,
                        matched: 0,
                        probing: true,
                        recent_active: true,
                        acked_ctx: 0,
                        matched_at_last_hb: 0,
                        probe_sent: false,
                    },
                )
            })
            .collect();
        self.hb_sent.clear();
        self.quorum_ctx = self.hb_ctx;
        self.lease_until_tick = 0;
        self.lease_until_wall = 0;
        self.term_start = next;
        self.append_local(Payload::Noop);
        self.maybe_commit();
    }

    fn append_local(&mut self, payload: Payload) -> u64 {
        let index = self.last_index() + 1;
        self.log.push(Entry {
            index,
            term: self.term,
            payload,
        });
        self.unstable_from.get_or_insert(index);
        self.need_bcast = true;
        index
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
        if probing && pr.probe_sent && !force {
            return; // one probe at a time
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
            let entries = self.log[prev_index as usize..end as usize].to_vec();
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

    fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut matches: Vec<u64> = self.progress.values().map(|p| p.matched).collect();
        matches.push(self.persisted.min(self.last_index()));
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let n = matches[self.quorum() - 1];
        if n > self.commit {
            let t = self.term_at(n).unwrap_or(0);
            if t == self.term || self.cfg.unsafe_commit_previous_term {
                self.commit = n;
                self.release_noop_reads();
            }
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
        if self.quorum() == 1 {
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
        let mut acks: Vec<u64> = self.progress.values().map(|p| p.acked_ctx).collect();
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
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    ) {
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
                        self.commit = e.index - 1;
                    }
                    tracing::warn!(
                        id = %self.cfg.id,
                        from_index = e.index,
                        dropped = last - e.index + 1,
                        "truncating conflicting log suffix"
                    );
                    self.log.truncate(e.index as usize - 1);
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
            self.log.extend(entries.into_iter().skip(i));
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
            if self.progress[from].next <= last {
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
        let yes = self.votes.values().filter(|v| **v).count();
        let no = self.votes.len() - yes;
        if yes >= self.quorum() {
            if pre {
                self.campaign(false);
            } else {
                self.become_leader();
            }
        } else if no >= self.quorum() {
            let t = self.term;
            self.become_follower(t, None);
        }
    }

    fn term_of(msg: &RaftMsg) -> u64 {
        match msg {
            RaftMsg::Vote { term, .. }
            | RaftMsg::VoteResp { term, .. }
            | RaftMsg::Append { term, .. }
            | RaftMsg::AppendResp { term, .. }
            | RaftMsg::Heartbeat { term, .. }
            | RaftMsg::HeartbeatResp { term, .. } => *term,
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
                let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
                for p in self.progress.values_mut() {
                    p.recent_active = false;
                }
                if active < self.quorum() && self.check_quorum() {
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
                let stuck: Vec<NodeId> = self
                    .progress
                    .iter_mut()
                    .filter_map(|(p, pr)| {
                        let stuck = pr.matched < self.log.len() as u64
                            && pr.matched == pr.matched_at_last_hb;
                        pr.matched_at_last_hb = pr.matched;
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
        } else if self.election_elapsed >= self.randomized_timeout {
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
                RaftMsg::Append { .. } | RaftMsg::Heartbeat { .. } => {
                    self.become_follower(term, Some(from.to_string()))
                }
                _ => self.become_follower(term, None),
            }
        } else if term < self.term {
            match msg {
                RaftMsg::Append { .. } | RaftMsg::Heartbeat { .. } => {
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
            RaftMsg::HeartbeatResp { ctx, .. } => {
                if self.role != Role::Leader {
                    return;
                }
                let mut behind = false;
                if let Some(pr) = self.progress.get_mut(from) {
                    pr.recent_active = true;
                    pr.acked_ctx = pr.acked_ctx.max(ctx);
                    behind = pr.matched < self.log.len() as u64 && !pr.probing;
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
            ..Ready::default()
        };
        if let Some(from) = self.unstable_from.take() {
            if from <= self.last_index() {
                rd.entries = self.log[from as usize - 1..].to_vec();
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
                let entry = self.log[i as usize - 1].clone();
                let req = match self.proposals.remove(&i) {
                    Some((t, req)) if t == entry.term => Some(req),
                    Some((_, req)) => {
                        self.replies.push((req, Reply::Unknown));
                        None
                    }
                    None => None,
                };
                rd.committed.push(Apply { entry, req });
            }
            self.applied_handed = self.commit;
        }
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
}

#[cfg(test)]
#[path = "raft_tests.rs"]
mod tests;
