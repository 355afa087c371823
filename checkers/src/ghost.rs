//! Resurrected ("ghost") writes: an abandoned write that becomes visible *after* a write that
//! was only issued once its client had given up on it.
//!
//! Linearizability cannot see this anomaly. An indeterminate (`info`) write may take effect at
//! any time after its invoke, so a write that timed out at 3 s and shows up at 9 s, after newer
//! writes, is a legal history. OceanBase calls the anomaly "ghost reappearance": leader A
//! accepts writes it cannot get chosen, clients time out, leader B serves newer writes and
//! reads, then A leads again, re-confirms its old instances, and the abandoned write reappears.
//! This module finds it from the history alone (black box).
//!
//! # Criterion (per key, unique write values)
//! Writes are `write`/`put` (value = the invoke value) and `cas` (value = the new value of
//! `[expected, new]`); reads are `read`/`get` that returned ok. An indeterminate write `x`
//! whose client gave up at `T_x` (its `info` completion) is a **ghost** if there are
//! - a write `w` on the same key invoked after `T_x` (ok, or indeterminate: a read of it is
//!   proof enough that it took effect),
//! - an ok read `R_w` that returned `w`, and
//! - an ok read `R_x` that returned `x` and was invoked after `R_w` completed.
//!
//! With linearizable reads, `R_w` shows `w` applied, and `R_x` shows `x` applied afterwards
//! (values are unique, so `x` cannot be an older copy): `x` was ordered after `w`, a command
//! that nobody issued before the client of `x` had given up.
//!
//! # Why a correct replicated log never does this
//! The check relies on one property of the system under test: a node acts on a client's
//! request only while the client waits for it (it rejects with a redirect instead of queueing
//! or forwarding it, as kvnode does). So `x`'s log entry was created before `T_x`, and `w`'s
//! after. The claim is that a correct log orders a command created before another command was
//! even issued ahead of it, whenever both are applied:
//! - **Raft.** If `x` and `w` are created by the same leader in the same term, it appends `x`
//!   first. If `w`'s term is newer, `w` sits after `x` because terms never decrease along a
//!   committed log. If `w`'s term is older than `x`'s, and both are committed, then `w`
//!   precedes `x` in the committed log, and by log matching the leader that created `x` already
//!   held `w` before it — before `T_x`, when `w` did not exist yet: impossible. So either
//!   `x` precedes `w`, or one of them is never committed.
//! - **Multi-Paxos with StartWorking.** A value keeps the ballot of the leader that created it
//!   (its origin) when later leaders re-propose it. The leader that creates `w` (origin `b`)
//!   has first written StartWorking(`b`) after every instance its Prepare quorum reported, and
//!   `w` sits after it. An `x` from an older ballot is either at an instance before that
//!   barrier, so applied before `w`, or after it, where older origins are skipped at apply time
//!   and `x` never becomes visible. The same leader orders its own values by creation.
//!   Without the barrier (`--unsafe-no-start-working`) the old leader's re-proposed instances
//!   beyond the new leader's writes are applied after them: exactly this pattern.
//!
//! Values written more than once on a key (histories from elsewhere) are ambiguous and ignored.
//!
//! Anything that holds a request back inside the system breaks the assumption, and such
//! histories can be flagged although they are linearizable: a node that queues or forwards
//! requests, a client library that retries after giving up, or SIGSTOP of a leader that no one
//! replaced (the requests buffered in its sockets, `x` and a later `w`, are handled in any
//! order when it resumes). Partitions and kills, against kvnode, do not.
//!
//! # Cost
//! For each write `w`, `e(w)` is the earliest completion of a read of `w`; for each
//! indeterminate `x`, `l(x)` is the latest invoke of a read of `x`. `x` is a ghost iff some `w`
//! invoked after `T_x` has `e(w) < l(x)`. Writes sorted by invoke time with suffix minima of
//! `e` answer that with one binary search per `x`: `O((W + R) log W)` in all.

use crate::explain::{op_claim, Claim, Field, Sentence};
use crate::history::{pair, Event, HistoryError, Operation, Outcome, Process};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// At most this many ghosts are described; [`GhostReport::count`] has them all.
pub const MAX_GHOSTS: usize = 100;

/// A read involved in a ghost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRef {
    /// The reading process.
    pub process: Process,
    /// Invoke time, ns since the test started.
    pub invoke_ns: u64,
    /// Completion time, ns.
    pub complete_ns: u64,
    /// The node that served it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// One resurrected write, with the operations that prove it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ghost {
    /// The key, for multi-key histories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The abandoned write's value (`x`).
    pub value: Value,
    /// Its function (`write`, `put` or `cas`).
    pub f: String,
    /// The process that issued it.
    pub process: Process,
    /// When it was invoked, ns.
    pub invoke_ns: u64,
    /// When its client gave up (the `info` completion), ns.
    pub gave_up_ns: u64,
    /// Why it ended indeterminate (`timeout`, `connection lost: ...`), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node the abandoned write was sent to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The newer write's value (`w`).
    pub newer_value: Value,
    /// The process that issued the newer write.
    pub newer_process: Process,
    /// When the newer write was invoked (after `gave_up_ns`), ns.
    pub newer_invoke_ns: u64,
    /// The read that returned the newer write (`R_w`).
    pub newer_read: ReadRef,
    /// The later read that returned the abandoned write (`R_x`).
    pub ghost_read: ReadRef,
    /// What happened, in one sentence.
    pub explanation: String,
    /// The same sentence with the claims it makes (see [`crate::explain`]).
    #[serde(default)]
    pub sentence: Sentence,
}

/// Result of [`check_events`] / [`check`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GhostReport {
    /// Ghosts found (all of them, also beyond [`MAX_GHOSTS`]).
    pub count: usize,
    /// Indeterminate writes examined (completed `info`).
    pub indeterminate_writes: usize,
    /// Of those, how many some ok read returned at all.
    pub indeterminate_writes_read: usize,
    /// The first [`MAX_GHOSTS`] ghosts, by the time the ghost was read.
    pub ghosts: Vec<Ghost>,
}

impl GhostReport {
    /// True when no ghost was found.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A one-line summary for the run's verdict.
    pub fn summary(&self) -> String {
        match self.ghosts.first() {
            None => format!(
                "no ghost writes ({} indeterminate writes, {} of them read)",
                self.indeterminate_writes, self.indeterminate_writes_read
            ),
            Some(g) => format!(
                "{} ghost write{} (abandoned writes applied after newer ones), first: {}",
                self.count,
                if self.count == 1 { "" } else { "s" },
                g.explanation
            ),
        }
    }
}

/// Pairs a history's events and looks for ghost writes.
pub fn check_events(events: &[Event]) -> Result<GhostReport, HistoryError> {
    let lines: Vec<usize> = (1..=events.len()).collect();
    let ops = pair(events, &lines)?;
    Ok(check(&ops))
}

/// Looks for ghost writes among paired operations (`fail`s removed, as the checkers see them).
pub fn check(ops: &[Operation]) -> GhostReport {
    let mut keys: HashMap<Option<&str>, KeyOps> = HashMap::new();
    for op in ops {
        let Process::Client(_) = op.process else {
            continue;
        };
        let slot = keys.entry(op.key.as_deref()).or_default();
        match op.f.as_str() {
            "read" | "get" => {
                if let (Some(v), Some(ret)) = (&op.output, op.ret) {
                    if !v.is_null() {
                        slot.reads.push((value_id(v), op, ret));
                    }
                }
            }
            "write" | "put" | "cas" => {
                let value = if op.f == "cas" {
                    op.input.get(1).cloned().unwrap_or(Value::Null)
                } else {
                    op.input.clone()
                };
                if value.is_null() {
                    continue;
                }
                // The time its client gave up: an `info` completion (not an invoke that never
                // completed, whose client never gave up before the history ended).
                let gave_up = (op.outcome() == Outcome::Info).then_some(op.end).flatten();
                slot.writes.push(Write {
                    id: value_id(&value),
                    value,
                    op,
                    gave_up,
                });
            }
            _ => {}
        }
    }
    let mut report = GhostReport::default();
    let mut ghosts = Vec::new();
    let mut names: Vec<_> = keys.keys().copied().collect();
    names.sort();
    for name in names {
        keys[&name].find(&mut report, &mut ghosts);
    }
    ghosts.sort_by_key(|g| (g.ghost_read.invoke_ns, g.gave_up_ns));
    report.count = ghosts.len();
    ghosts.truncate(MAX_GHOSTS);
    report.ghosts = ghosts;
    report
}

/// Writes and ok reads of one key.
#[derive(Default)]
struct KeyOps<'a> {
    writes: Vec<Write<'a>>,
    /// (value id, the read, its completion time)
    reads: Vec<(String, &'a Operation, u64)>,
}

struct Write<'a> {
    id: String,
    value: Value,
    op: &'a Operation,
    /// When its `info` completion came back, when the write ended indeterminate.
    gave_up: Option<u64>,
}

impl KeyOps<'_> {
    fn find(&self, report: &mut GhostReport, out: &mut Vec<Ghost>) {
        // A value written twice cannot say which write a read saw: such writes prove nothing.
        let mut written: HashMap<&str, usize> = HashMap::new();
        for w in &self.writes {
            *written.entry(w.id.as_str()).or_default() += 1;
        }
        let unique = |id: &str| written.get(id) == Some(&1);
        // Per value: the read that completed first and the read invoked last.
        let mut first_done: HashMap<&str, &Operation> = HashMap::new();
        let mut last_started: HashMap<&str, &Operation> = HashMap::new();
        for (id, r, ret) in &self.reads {
            let e = first_done.entry(id.as_str()).or_insert(r);
            if *ret < e.ret.unwrap_or(u64::MAX) {
                *e = r;
            }
            let l = last_started.entry(id.as_str()).or_insert(r);
            if r.call > l.call {
                *l = r;
            }
        }
        // Writes that were read, by invoke time, with suffix minima of their first read's end.
        let mut read_writes: Vec<(&Write, &Operation)> = self
            .writes
            .iter()
            .filter(|w| unique(&w.id))
            .filter_map(|w| first_done.get(w.id.as_str()).map(|r| (w, *r)))
            .collect();
        read_writes.sort_by_key(|(w, _)| w.op.call);
        let mut suffix_min: Vec<usize> = vec![0; read_writes.len()];
        for i in (0..read_writes.len()).rev() {
            suffix_min[i] = match suffix_min.get(i + 1) {
                Some(&j) if read_end(read_writes[j].1) <= read_end(read_writes[i].1) => j,
                _ => i,
            };
        }
        for x in &self.writes {
            let Some(gave_up) = x.gave_up else {
                continue;
            };
            report.indeterminate_writes += 1;
            if !unique(&x.id) {
                continue;
            }
            let Some(rx) = last_started.get(x.id.as_str()) else {
                continue;
            };
            report.indeterminate_writes_read += 1;
            let t_x = gave_up;
            let start = read_writes.partition_point(|(w, _)| w.op.call <= t_x);
            let Some(&j) = suffix_min.get(start) else {
                continue;
            };
            let (w, rw) = read_writes[j];
            if read_end(rw) >= rx.call {
                continue;
            }
            out.push(describe(x, gave_up, w, rw, rx));
        }
    }
}

fn read_end(r: &Operation) -> u64 {
    r.ret.unwrap_or(u64::MAX)
}

/// A hashable identity of a JSON value (writes are unique per key).
fn value_id(v: &Value) -> String {
    v.to_string()
}

fn read_ref(r: &Operation) -> ReadRef {
    ReadRef {
        process: r.process,
        invoke_ns: r.call,
        complete_ns: read_end(r),
        node: r.node.clone(),
    }
}

fn describe(x: &Write, gave_up: u64, w: &Write, rw: &Operation, rx: &Operation) -> Ghost {
    let mut s = Sentence::new(false);
    // Unique values: each read names its write.
    for op in [x.op, w.op] {
        s.claim(Claim::Writers {
            key: op.key.clone(),
            value: written(op),
            writers: vec![op.invoke_index],
            init: Value::Null,
        });
    }
    if x.op.key.is_some() {
        let xi = s.claim(op_claim(x.op));
        s.text("On ").show(xi, Field::Key).text(", ");
    }
    let (_, xi) = s.began_after(w.op, x.op);
    s.text(" gave up at ").show(xi, Field::End).text(", and ");
    let rwi = s.claim(op_claim(rw));
    s.show(rwi, Field::Phrase)
        .text(" had returned it by ")
        .show(rwi, Field::End)
        .text("; then ");
    s.began_after(rx, rw);
    s.text(" completed: the abandoned write was applied after a newer one (ghost reappearance).");
    Ghost {
        key: x.op.key.clone(),
        value: x.value.clone(),
        f: x.op.f.clone(),
        process: x.op.process,
        invoke_ns: x.op.call,
        gave_up_ns: gave_up,
        error: x.op.error.clone(),
        node: x.op.node.clone(),
        newer_value: w.value.clone(),
        newer_process: w.op.process,
        newer_invoke_ns: w.op.call,
        newer_read: read_ref(rw),
        ghost_read: read_ref(rx),
        explanation: s.text.clone(),
        sentence: s,
    }
}

/// The value a write or cas leaves.
fn written(op: &Operation) -> Value {
    if op.f == "cas" {
        op.input.get(1).cloned().unwrap_or(Value::Null)
    } else {
        op.input.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use serde_json::json;

    /// Builds a history from ops given as (process, f, key, invoke value, invoke ms,
    /// completion kind, completion value, completion ms).
    #[derive(Default)]
    struct H {
        evs: Vec<(u64, Event)>,
    }

    impl H {
        #[allow(clippy::too_many_arguments)]
        fn op(
            &mut self,
            p: u64,
            f: &str,
            key: Option<&str>,
            input: Value,
            t0: u64,
            kind: EventType,
            output: Value,
            t1: u64,
        ) -> &mut Self {
            let mk = |kind, value, t: u64| Event {
                index: 0,
                time: t * 1_000_000,
                process: Process::Client(p),
                kind,
                f: f.into(),
                key: key.map(str::to_string),
                value,
                node: None,
                error: (kind == EventType::Info).then(|| "timeout".to_string()),
            };
            self.evs.push((t0 * 2, mk(EventType::Invoke, input, t0)));
            self.evs.push((t1 * 2 + 1, mk(kind, output, t1)));
            self
        }
        fn write(&mut self, p: u64, key: Option<&str>, v: i64, t0: u64, t1: u64) -> &mut Self {
            self.op(p, "write", key, json!(v), t0, EventType::Ok, json!(v), t1)
        }
        fn lost(&mut self, p: u64, key: Option<&str>, v: i64, t0: u64, t1: u64) -> &mut Self {
            self.op(p, "write", key, json!(v), t0, EventType::Info, json!(v), t1)
        }
        fn read(&mut self, p: u64, key: Option<&str>, v: i64, t0: u64, t1: u64) -> &mut Self {
            self.op(p, "read", key, Value::Null, t0, EventType::Ok, json!(v), t1)
        }
        fn check(&self) -> GhostReport {
            let mut evs = self.evs.clone();
            evs.sort_by_key(|(k, _)| *k);
            let evs: Vec<Event> = evs
                .into_iter()
                .enumerate()
                .map(|(i, (_, mut e))| {
                    e.index = i as u64;
                    e
                })
                .collect();
            check_events(&evs).expect("well-formed history")
        }
    }

    #[test]
    fn ghost_is_found() {
        let r = H::default()
            .write(1, None, 1, 0, 10)
            .lost(5, None, 17, 100, 3200)
            .write(2, None, 42, 4000, 4100)
            .read(3, None, 42, 4400, 4500)
            .read(4, None, 17, 9100, 9150)
            .check();
        assert_eq!(r.count, 1, "{r:?}");
        let g = &r.ghosts[0];
        assert_eq!(
            (g.value.clone(), g.newer_value.clone()),
            (json!(17), json!(42))
        );
        assert_eq!(g.gave_up_ns, 3_200_000_000);
        assert_eq!(g.ghost_read.invoke_ns, 9_100_000_000);
        assert_eq!(
            g.explanation,
            "write 42 by p2 began 800 ms after write 17 by p5 (outcome unknown) gave up at \
             3.200 s, and read → 42 by p3 had returned it by 4.500 s; then read → 17 by p4 \
             began 4.60 s after read → 42 by p3 completed: the abandoned write was applied \
             after a newer one (ghost reappearance)."
        );
        assert_eq!(
            (r.indeterminate_writes, r.indeterminate_writes_read),
            (1, 1)
        );
    }

    #[test]
    fn cas_values_count_as_writes() {
        let r = H::default()
            .op(
                5,
                "cas",
                None,
                json!([1, 17]),
                100,
                EventType::Info,
                json!([1, 17]),
                3200,
            )
            .op(
                2,
                "cas",
                None,
                json!([1, 42]),
                4000,
                EventType::Ok,
                json!([1, 42]),
                4100,
            )
            .read(3, None, 42, 4400, 4500)
            .read(4, None, 17, 9100, 9150)
            .check();
        assert_eq!(r.count, 1);
    }

    #[test]
    fn late_but_legal_info_write_is_not_a_ghost() {
        // 17 takes effect late (after its client gave up) but before 42 is read: legal, and
        // what a correct system does with a slow write.
        let r = H::default()
            .lost(5, None, 17, 100, 3200)
            .read(3, None, 17, 3500, 3600)
            .write(2, None, 42, 4000, 4100)
            .read(4, None, 42, 4400, 4500)
            .check();
        assert!(r.is_empty(), "{r:?}");
        // A newer write issued before the client gave up does not count either.
        let r = H::default()
            .lost(5, None, 17, 100, 3200)
            .write(2, None, 42, 3000, 3100)
            .read(3, None, 42, 3300, 3400)
            .read(4, None, 17, 9100, 9150)
            .check();
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn never_read_info_write_is_not_a_ghost() {
        let r = H::default()
            .lost(5, None, 17, 100, 3200)
            .write(2, None, 42, 4000, 4100)
            .read(3, None, 42, 4400, 4500)
            .check();
        assert!(r.is_empty());
        assert_eq!(
            (r.indeterminate_writes, r.indeterminate_writes_read),
            (1, 0)
        );
    }

    #[test]
    fn keys_are_separate() {
        // The same pattern across two keys is no anomaly: x on key a, w on key b.
        let r = H::default()
            .lost(5, Some("a"), 17, 100, 3200)
            .write(2, Some("b"), 42, 4000, 4100)
            .read(3, Some("b"), 42, 4400, 4500)
            .read(4, Some("a"), 17, 9100, 9150)
            .check();
        assert!(r.is_empty(), "{r:?}");
        let r = H::default()
            .lost(5, Some("a"), 17, 100, 3200)
            .write(2, Some("b"), 42, 4000, 4100)
            .read(3, Some("b"), 42, 4400, 4500)
            .read(4, Some("a"), 17, 9100, 9150)
            .lost(6, Some("b"), 7, 100, 3000)
            .write(7, Some("b"), 8, 3500, 3600)
            .read(8, Some("b"), 8, 3700, 3800)
            .read(9, Some("b"), 7, 3900, 4000)
            .check();
        assert_eq!(r.count, 1);
        assert_eq!(r.ghosts[0].key.as_deref(), Some("b"));
        assert_eq!(r.ghosts[0].value, json!(7));
        assert!(r.ghosts[0]
            .explanation
            .starts_with("On key b, write 8 by p7 began"));
    }

    #[test]
    fn reads_of_the_ghost_before_the_newer_read_do_not_count() {
        // 17 was read before 42 was read back (reads overlap): no proof of the order.
        let r = H::default()
            .lost(5, None, 17, 100, 3200)
            .write(2, None, 42, 4000, 4100)
            .read(3, None, 42, 4400, 4500)
            .read(4, None, 17, 4300, 4450)
            .check();
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn values_written_twice_prove_nothing() {
        // 17 written again after 42: the late read of 17 may be the second write's.
        let r = H::default()
            .lost(5, None, 17, 100, 3200)
            .write(2, None, 42, 4000, 4100)
            .read(3, None, 42, 4400, 4500)
            .write(6, None, 17, 5000, 5100)
            .read(4, None, 17, 9100, 9150)
            .check();
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn failed_and_unread_reads_are_ignored() {
        let r = H::default()
            .lost(5, None, 17, 100, 3200)
            .write(2, None, 42, 4000, 4100)
            .op(
                3,
                "read",
                None,
                Value::Null,
                4400,
                EventType::Info,
                Value::Null,
                4500,
            )
            .op(
                6,
                "read",
                None,
                Value::Null,
                4400,
                EventType::Fail,
                json!(42),
                4500,
            )
            .read(4, None, 17, 9100, 9150)
            .check();
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn picks_a_witness_among_many_writes() {
        // Many newer writes; only one of them (issued after the give-up) was read early enough.
        let mut h = H::default();
        h.lost(5, None, 17, 100, 3200);
        for i in 0..50 {
            h.write(100 + i, None, 1000 + i as i64, 3000 + i * 10, 3005 + i * 10);
            h.read(200 + i, None, 1000 + i as i64, 9000 + i * 10, 9005 + i * 10);
        }
        h.read(300, None, 1049, 3600, 3700);
        h.read(301, None, 17, 5000, 5010);
        let r = h.check();
        assert_eq!(r.count, 1, "{r:?}");
        assert_eq!(r.ghosts[0].newer_value, json!(1049));
    }
}
