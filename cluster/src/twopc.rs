//! Two-phase commit across shard groups, as a pure state machine (no I/O, time in ticks):
//! the coordinator of cross-shard transactions, the participants' recovery of transactions
//! whose coordinator went silent, and the one-group fast path. [`crate::shard`] carries out
//! what it asks for (proposals to groups, local or forwarded to a group's leader) and feeds
//! back the answers.
//!
//! The protocol is Gray's two-phase commit with every participant *and the coordinator's
//! decision* made durable by a replicated log (the arrangement of Spanner's transaction
//! managers, Corbett et al., OSDI 2012, §4.2.1, minus the timestamps):
//!
//! 1. prepare: each group touched logs [`Op::Prepare`] with its share of the micro-ops; the
//!    state machine evaluates them now (reads return values), locks every key they touch and
//!    keeps the writes, or refuses (a key locked already, an `expect` that fails, a type
//!    error).
//! 2. decide: if every group prepared, the coordinator group — the group of the
//!    transaction's first key — logs [`Op::Decide`] commit. That entry is the commit point.
//!    Only the coordinator ever proposes commit, and only after every prepare succeeded.
//! 3. resolve: every group logs [`Op::Resolve`]: the writes are installed (or dropped) and
//!    the locks released; then the client gets its answer.
//!
//! If a prepare is refused or not answered in time, the transaction aborts: the client is
//! told at once (nothing can commit it: commit needs the coordinator's own `Decide`), and the
//! groups are told to resolve as aborted. A participant still holding a prepared
//! transaction after [`TwoPcConfig::recovery_ticks`] asks the coordinator group by proposing
//! `Decide(abort)` there: the first decision logged wins, so it learns commit if the
//! coordinator got there first, and otherwise makes abort the decision the coordinator will
//! learn. A coordinator that crashes therefore never splits a transaction; while its group
//! has no quorum, the participants wait (2PC blocks — that is its known price).
//!
//! `--unsafe-2pc-presumed-commit` replaces the recovery with the classic mistake: a
//! participant that has waited [`TwoPcConfig::presumed_commit_ticks`] (shorter than the
//! coordinator's prepare phase) commits on its own. If another participant was slow or cut
//! off, the coordinator aborts while this one has committed: a partly applied transaction,
//! acknowledged to the client as failed — what the bank and Elle checkers must catch.

use crate::msg::{Command, MicroOp, Op, Reply, TwoPcReply, TxnId, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Timeouts of the protocol, in ticks.
#[derive(Debug, Clone)]
pub struct TwoPcConfig {
    /// Number of groups.
    pub shards: u32,
    /// From a transaction's start: the prepare phase ends (abort if not every group voted).
    pub prepare_ticks: u64,
    /// From the start: stop trying to log the decision (the client is told "unknown").
    pub decide_ticks: u64,
    /// From the start: answer the client even if some group has not confirmed its resolve
    /// (the decision is durable; that group's recovery finishes it).
    pub resolve_ticks: u64,
    /// A participant holding a prepared transaction this long asks the coordinator group.
    pub recovery_ticks: u64,
    /// UNSAFE: commit a prepared transaction after this long without asking anyone.
    pub presumed_commit_ticks: Option<u64>,
}

impl TwoPcConfig {
    /// Timeouts derived from the HTTP request deadline (`request_ticks`): prepare by 40% of
    /// it, decide by 70%, resolve by 90% (so the client hears before its 504); recovery after
    /// one whole deadline, when a live coordinator has long decided (it stops trying at 70%),
    /// so a prepared transaction whose coordinator died holds its locks no longer than that
    /// (every transaction touching them is refused meanwhile: under kills and partitions
    /// those refusals were most aborts); the unsafe presumed commit after 20% of it, i.e.
    /// before the coordinator gives up on a slow participant's prepare.
    pub fn from_request_ticks(shards: u32, request_ticks: u64, presumed_commit: bool) -> Self {
        let r = request_ticks.max(10);
        TwoPcConfig {
            shards: shards.max(1),
            prepare_ticks: r * 4 / 10,
            decide_ticks: r * 7 / 10,
            resolve_ticks: r * 9 / 10,
            recovery_ticks: r,
            presumed_commit_ticks: presumed_commit.then_some(r * 2 / 10),
        }
    }
}

/// The group that stores `key`: FNV-1a of the key modulo the number of groups.
pub fn group_of(key: &str, shards: u32) -> u32 {
    (crate::engine::nwr::fnv1a(key) % u64::from(shards.max(1))) as u32
}

/// What a proposal's answer is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tag {
    /// A one-group transaction or operation proposed for a client.
    Direct(u64),
    /// Flight `.0`'s prepare in group `.1`.
    Prepare(u64, u32),
    /// Flight `.0`'s decision.
    Decide(u64),
    /// Flight `.0`'s resolve in group `.1`.
    Resolve(u64, u32),
    /// Recovery of `txn` prepared in group `.0`: its `Decide(abort)` at the coordinator.
    RecoverDecide(u32, TxnId),
    /// Recovery of `txn` in group `.0`: its resolve.
    RecoverResolve(u32, TxnId),
}

/// What the coordinator wants done.
#[derive(Debug)]
pub enum Action<C> {
    /// Propose `cmd` in `group`; answer with [`TwoPc::on_reply`] and `tag`, or
    /// [`Reply::Unknown`] if no answer arrives by tick `deadline`.
    Propose {
        /// Target group.
        group: u32,
        /// The command.
        cmd: Command,
        /// What the answer is for.
        tag: Tag,
        /// Last tick to wait for an answer.
        deadline: u64,
    },
    /// Answer a client.
    Reply {
        /// The client.
        client: C,
        /// The answer.
        reply: Reply,
    },
}

#[derive(Debug)]
enum Phase {
    Preparing {
        waiting: BTreeSet<u32>,
    },
    Deciding,
    Resolving {
        commit: bool,
        waiting: BTreeSet<u32>,
    },
}

#[derive(Debug)]
struct Flight<C> {
    /// Taken when answered (an abort is answered before its resolves).
    client: Option<C>,
    txn: TxnId,
    coordinator: u32,
    groups: BTreeMap<u32, Vec<(usize, MicroOp)>>,
    results: Vec<Option<Value>>,
    started: u64,
    phase: Phase,
}

/// A participant's recovery of one prepared transaction.
#[derive(Debug)]
struct Stuck {
    coordinator: u32,
    first_seen: u64,
    /// Whether a recovery proposal is in flight.
    active: bool,
    /// Last scan that saw it prepared (entries not seen in a scan are forgotten).
    seen: u64,
}

/// The coordinator and recovery state of one node; see the module doc.
#[derive(Debug)]
pub struct TwoPc<C> {
    cfg: TwoPcConfig,
    /// `<node>/<boot id>`: with a counter, names transactions uniquely cluster-wide.
    prefix: String,
    next_txn: u64,
    next_flight: u64,
    flights: HashMap<u64, Flight<C>>,
    direct: HashMap<u64, C>,
    stuck: BTreeMap<(u32, TxnId), Stuck>,
    now: u64,
    out: Vec<Action<C>>,
}

impl<C> TwoPc<C> {
    /// A coordinator naming its transactions `<prefix>/<n>` (`prefix` must be unique per
    /// process incarnation cluster-wide: node id and a random boot id).
    pub fn new(cfg: TwoPcConfig, prefix: String) -> Self {
        TwoPc {
            cfg,
            prefix,
            next_txn: 0,
            next_flight: 0,
            flights: HashMap::new(),
            direct: HashMap::new(),
            stuck: BTreeMap::new(),
            now: 0,
            out: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TwoPcConfig {
        &self.cfg
    }

    /// Everything asked for since the last call.
    pub fn take_actions(&mut self) -> Vec<Action<C>> {
        std::mem::take(&mut self.out)
    }

    /// Transactions in flight (coordinator side).
    pub fn in_flight(&self) -> usize {
        self.flights.len() + self.direct.len()
    }

    /// Submits a client's command: a transaction over several groups runs 2PC; anything else
    /// (a one-group transaction) is proposed as it is in its group.
    pub fn submit(&mut self, client: C, cmd: Command) {
        let groups: BTreeSet<u32> = match &cmd.op {
            Op::Txn { ops } => ops
                .iter()
                .map(|m| group_of(m.key(), self.cfg.shards))
                .collect(),
            other => other
                .key()
                .map(|k| group_of(k, self.cfg.shards))
                .into_iter()
                .collect(),
        };
        let ops = match &cmd.op {
            Op::Txn { ops } if groups.len() > 1 => ops.clone(),
            _ => {
                let Some(group) = groups.first().copied() else {
                    self.out.push(Action::Reply {
                        client,
                        reply: Reply::Unsupported,
                    });
                    return;
                };
                let id = self.next_flight;
                self.next_flight += 1;
                self.direct.insert(id, client);
                self.out.push(Action::Propose {
                    group,
                    cmd,
                    tag: Tag::Direct(id),
                    deadline: self.now + self.cfg.resolve_ticks,
                });
                return;
            }
        };
        self.start(client, ops);
    }

    fn start(&mut self, client: C, ops: Vec<MicroOp>) {
        let shards = self.cfg.shards;
        let coordinator = group_of(ops[0].key(), shards);
        let mut groups: BTreeMap<u32, Vec<(usize, MicroOp)>> = BTreeMap::new();
        let n = ops.len();
        for (i, m) in ops.into_iter().enumerate() {
            groups
                .entry(group_of(m.key(), shards))
                .or_default()
                .push((i, m));
        }
        self.next_txn += 1;
        let txn = format!("{}/{}", self.prefix, self.next_txn);
        let id = self.next_flight;
        self.next_flight += 1;
        for (g, part) in &groups {
            self.propose(
                *g,
                Op::Prepare {
                    txn: txn.clone(),
                    coordinator,
                    ops: part.clone(),
                },
                Tag::Prepare(id, *g),
                self.now + self.cfg.prepare_ticks,
            );
        }
        let waiting = groups.keys().copied().collect();
        self.flights.insert(
            id,
            Flight {
                client: Some(client),
                txn,
                coordinator,
                groups,
                results: vec![None; n],
                started: self.now,
                phase: Phase::Preparing { waiting },
            },
        );
    }

    fn propose(&mut self, group: u32, op: Op, tag: Tag, deadline: u64) {
        self.out.push(Action::Propose {
            group,
            cmd: Command {
                op,
                client_id: None,
                seq: None,
            },
            tag,
            deadline,
        });
    }

    /// The answer to a proposal (or [`Reply::Unknown`] when none came by its deadline). The
    /// caller must deliver exactly one answer per [`Action::Propose`]: flights end only
    /// through answers.
    pub fn on_reply(&mut self, tag: Tag, reply: Reply) {
        match tag {
            Tag::Direct(id) => {
                if let Some(client) = self.direct.remove(&id) {
                    self.out.push(Action::Reply { client, reply });
                }
            }
            Tag::Prepare(id, g) => self.on_prepared(id, g, reply),
            Tag::Decide(id) => self.on_decided(id, reply),
            Tag::Resolve(id, g) => self.on_resolved(id, g, reply),
            Tag::RecoverDecide(g, txn) => match reply {
                Reply::TwoPc(TwoPcReply::Decided { commit }) => {
                    tracing::info!(%txn, group = g, commit, "recovered a stalled transaction's decision");
                    self.recover_resolve(g, txn, commit);
                }
                _ => self.recovery_failed(g, &txn),
            },
            Tag::RecoverResolve(g, txn) => {
                if reply == Reply::Ok {
                    self.stuck.remove(&(g, txn));
                } else {
                    self.recovery_failed(g, &txn);
                }
            }
        }
    }

    fn on_prepared(&mut self, id: u64, g: u32, reply: Reply) {
        let Some(f) = self.flights.get_mut(&id) else {
            return;
        };
        let Phase::Preparing { waiting } = &mut f.phase else {
            return;
        };
        match reply {
            Reply::TwoPc(TwoPcReply::Prepared(results)) => {
                for (i, r) in results {
                    if let Some(slot) = f.results.get_mut(i) {
                        *slot = r;
                    }
                }
                waiting.remove(&g);
                if waiting.is_empty() {
                    f.phase = Phase::Deciding;
                    let (txn, coordinator) = (f.txn.clone(), f.coordinator);
                    let deadline = f.started + self.cfg.decide_ticks;
                    self.propose(
                        coordinator,
                        Op::Decide { txn, commit: true },
                        Tag::Decide(id),
                        deadline,
                    );
                }
            }
            Reply::TwoPc(TwoPcReply::Refused(abort)) => self.abort(id, Reply::TxnAborted(abort)),
            other => {
                let why = format!(
                    "group {g} did not prepare transaction {} ({}); aborted, nothing applied",
                    f.txn,
                    describe(&other)
                );
                self.abort(id, Reply::Unavailable(why));
            }
        }
    }

    /// Aborts flight `id` before any commit decision: the client hears `reply` (definite: only
    /// this coordinator could have decided commit), every group is told to drop its prepare.
    fn abort(&mut self, id: u64, reply: Reply) {
        let Some(f) = self.flights.get_mut(&id) else {
            return;
        };
        if let Some(client) = f.client.take() {
            self.out.push(Action::Reply { client, reply });
        }
        self.resolve_all(id, false);
    }

    fn resolve_all(&mut self, id: u64, commit: bool) {
        let Some(f) = self.flights.get_mut(&id) else {
            return;
        };
        let groups: BTreeSet<u32> = f.groups.keys().copied().collect();
        f.phase = Phase::Resolving {
            commit,
            waiting: groups.clone(),
        };
        let txn = f.txn.clone();
        let deadline = f.started + self.cfg.resolve_ticks;
        for g in groups {
            self.propose(
                g,
                Op::Resolve {
                    txn: txn.clone(),
                    commit,
                },
                Tag::Resolve(id, g),
                deadline.max(self.now + 1),
            );
        }
    }

    fn on_decided(&mut self, id: u64, reply: Reply) {
        let Some(f) = self.flights.get_mut(&id) else {
            return;
        };
        if !matches!(f.phase, Phase::Deciding) {
            return;
        }
        match reply {
            Reply::TwoPc(TwoPcReply::Decided { commit: true }) => self.resolve_all(id, true),
            Reply::TwoPc(TwoPcReply::Decided { commit: false }) => {
                let why = format!(
                    "transaction {} was aborted by a participant's recovery before its commit \
                     was logged; nothing applied",
                    f.txn
                );
                self.abort(id, Reply::Unavailable(why));
            }
            // The decision may or may not be logged: the client cannot be told either way.
            // The groups' recovery learns it from the coordinator group.
            _ => {
                let f = self.flights.remove(&id).expect("present");
                if let Some(client) = f.client {
                    self.out.push(Action::Reply {
                        client,
                        reply: Reply::Unknown,
                    });
                }
            }
        }
    }

    fn on_resolved(&mut self, id: u64, g: u32, reply: Reply) {
        let Some(f) = self.flights.get_mut(&id) else {
            return;
        };
        let Phase::Resolving { waiting, .. } = &mut f.phase else {
            return;
        };
        if reply != Reply::Ok {
            // That group's recovery finishes it (the decision is durable, or it is an abort).
            tracing::debug!(txn = %f.txn, group = g, reply = ?reply, "resolve not confirmed");
        }
        waiting.remove(&g);
        if waiting.is_empty() {
            self.finish(id);
        }
    }

    /// Answers a resolved flight's client (a commit with the reads) and forgets it.
    fn finish(&mut self, id: u64) {
        let Some(f) = self.flights.remove(&id) else {
            return;
        };
        if let (Some(client), Phase::Resolving { commit: true, .. }) = (f.client, &f.phase) {
            self.out.push(Action::Reply {
                client,
                reply: Reply::Txn(f.results),
            });
        }
    }

    /// Advances the clock to tick `now`.
    pub fn tick(&mut self, now: u64) {
        self.now = now;
    }

    /// Participant side, for a group this node leads: the transactions prepared there now
    /// (with their coordinator groups). Those held too long are recovered (see the module
    /// doc); call every few ticks.
    pub fn scan_prepared<'a>(
        &mut self,
        group: u32,
        prepared: impl Iterator<Item = (&'a TxnId, u32)>,
    ) {
        let now = self.now;
        for (txn, coordinator) in prepared {
            let s = self
                .stuck
                .entry((group, txn.clone()))
                .or_insert_with(|| Stuck {
                    coordinator,
                    first_seen: now,
                    active: false,
                    seen: now,
                });
            s.seen = now;
            if s.active {
                continue;
            }
            let waited = now.saturating_sub(s.first_seen);
            let coord = s.coordinator;
            match self.cfg.presumed_commit_ticks {
                Some(limit) if waited >= limit => {
                    s.active = true;
                    tracing::warn!(
                        %txn, group, waited_ticks = waited,
                        "UNSAFE presumed commit: committing a prepared transaction without its decision"
                    );
                    self.recover_resolve(group, txn.clone(), true);
                }
                None if waited >= self.cfg.recovery_ticks => {
                    s.active = true;
                    tracing::info!(%txn, group, coordinator = coord, "asking the coordinator group for a stalled transaction's decision");
                    self.propose(
                        coord,
                        Op::Decide {
                            txn: txn.clone(),
                            commit: false,
                        },
                        Tag::RecoverDecide(group, txn.clone()),
                        now + self.cfg.prepare_ticks,
                    );
                }
                _ => {}
            }
        }
        // Forget what this group no longer holds (resolved, or leadership moved elsewhere).
        self.stuck
            .retain(|(g, _), s| *g != group || s.seen == now || s.active);
    }

    /// Forgets every recovery of `group` that is not in flight (this node stopped leading it).
    pub fn forget_group(&mut self, group: u32) {
        self.stuck.retain(|(g, _), s| *g != group || s.active);
    }

    fn recover_resolve(&mut self, group: u32, txn: TxnId, commit: bool) {
        let deadline = self.now + self.cfg.prepare_ticks;
        self.propose(
            group,
            Op::Resolve {
                txn: txn.clone(),
                commit,
            },
            Tag::RecoverResolve(group, txn),
            deadline,
        );
    }

    fn recovery_failed(&mut self, group: u32, txn: &TxnId) {
        if let Some(s) = self.stuck.get_mut(&(group, txn.clone())) {
            // Try again at the next scan.
            s.active = false;
        }
    }
}

/// A reply in a few words, for messages.
fn describe(r: &Reply) -> String {
    match r {
        Reply::NotLeader(l) => format!("no leader reachable (last hint {l:?})"),
        Reply::Unavailable(m) => m.clone(),
        Reply::Unknown => "no answer in time".into(),
        other => format!("unexpected answer {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks until the leader of a group holding a prepared transaction, scanning every tick,
    /// proposes its recovery (`Decide(abort)` at the coordinator group).
    fn ticks_to_recovery(request_ticks: u64) -> Option<u64> {
        let mut t: TwoPc<()> = TwoPc::new(
            TwoPcConfig::from_request_ticks(2, request_ticks, false),
            "n1".into(),
        );
        let txn: TxnId = "n2/1".into();
        for now in 0..10 * request_ticks {
            t.tick(now);
            t.scan_prepared(1, std::iter::once((&txn, 0)));
            let recovering = t.take_actions().into_iter().any(|a| {
                matches!(
                    a,
                    Action::Propose {
                        group: 0,
                        tag: Tag::RecoverDecide(1, _),
                        ..
                    }
                )
            });
            if recovering {
                return Some(now);
            }
        }
        None
    }

    #[test]
    fn a_dead_coordinators_prepared_transaction_is_recovered_within_one_request_deadline() {
        // Its locks refuse every transaction on those keys until then (no-wait locking); at
        // twice the deadline that was most of the aborts of sharded runs under faults. Not
        // before the coordinator's own decision deadline (70%), though.
        let at = ticks_to_recovery(100).expect("recovery proposed");
        assert!((70..=100).contains(&at), "recovery after {at} ticks");
    }
}
