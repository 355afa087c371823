//! Shrinking an illegal key to a minimal counterexample, with the linearizability checker as
//! the oracle (delta debugging, Zeller & Hildebrandt, "Simplifying and Isolating
//! Failure-Inducing Input", TSE 2002).
//!
//! # What "removing" an op means
//! Deleting an op from a history is not safe: deleting the write of 603 makes a later read of
//! 603 illegal on its own ("nobody wrote 603"), a counterexample about a history that never
//! happened. Instead an op left out of the set is *relaxed*: it keeps its invoke time and its
//! arguments but loses its outcome, becoming an op that may have taken effect at any time after
//! its invoke, or never (what an `info` op is). Relaxing preserves linearizability — the old
//! linearization still works, with the relaxed op where it was, or absent if it was a read — so
//! if the history with everything outside a set `K` relaxed is still illegal, the real history
//! is illegal *because of* `K`: those ops, with the results they returned, cannot all be right,
//! whatever the others did. Real-time order is kept because every op keeps its times.
//!
//! # The search
//! The determinate ops of the key, sorted by invoke time, are cut to the shortest window that
//! stays illegal (two binary searches: illegality is monotone in the set kept), then shrunk by
//! ddmin — observations first with every write kept, then writes (see [`minimize`]) — then
//! made 1-minimal by trying to relax each remaining op alone. The result `K` is illegal and
//! relaxing any one of its ops makes the history legal ([`Minimal::one_minimal`]; false only
//! when a check ran out of time first). Typical sets have 2–8 ops.

use crate::history::Operation;
use crate::linearizable::{self, CheckOptions, Verdict};
use std::time::{Duration, Instant};

/// A minimal counterexample of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimal {
    /// Positions (in the slice given to [`minimize`]) of the ops kept, by invoke time.
    pub kept: Vec<usize>,
    /// Every single op of `kept` was checked: relaxing it makes the history legal.
    pub one_minimal: bool,
    /// How many times the checker ran.
    pub checks: usize,
}

/// The history of one key with every op outside `kept` relaxed (see the module doc): reads
/// outside `kept` are dropped (an unknown read constrains nothing), other ops lose their
/// outcome. Ids are renumbered densely, as the checker requires.
///
/// Indeterminate writes and cas that nothing can observe are left out as well (the register
/// model's own rule, applied to a fixpoint: an op that may never take effect and whose new
/// value nobody reads or expects changes no result, and once it is gone the value it
/// expected may be observed by nobody either). This is what keeps checks of a mostly relaxed
/// history fast. It is skipped when some cas reported a mismatch (such a cas observes "not v",
/// which the argument does not cover) and for models other than registers.
pub fn relaxed(ops: &[Operation], kept: &[bool]) -> Vec<Operation> {
    let mut out: Vec<Operation> = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if kept[i] || op.is_indeterminate() {
            out.push(op.clone());
            continue;
        }
        if matches!(op.f.as_str(), "read" | "get") {
            continue;
        }
        let mut r = op.clone();
        r.ret = None;
        r.output = None;
        out.push(r);
    }
    drop_unobserved(&mut out);
    for (id, op) in out.iter_mut().enumerate() {
        op.id = id;
    }
    out
}

/// The fixpoint of [`relaxed`]'s doc: removes indeterminate register writes and cas whose new
/// value no remaining op can observe.
fn drop_unobserved(ops: &mut Vec<Operation>) {
    use serde_json::Value;
    let register = ops
        .iter()
        .all(|o| matches!(o.f.as_str(), "read" | "write" | "cas"));
    let mismatch = ops.iter().any(|o| o.output == Some(Value::Bool(false)));
    if !register || mismatch {
        return;
    }
    let cas = |o: &Operation| match &o.input {
        Value::Array(a) if o.f == "cas" && a.len() == 2 => {
            Some((a[0].to_string(), a[1].to_string()))
        }
        _ => None,
    };
    loop {
        let mut observed = std::collections::HashSet::new();
        for o in ops.iter() {
            match o.f.as_str() {
                "read" => {
                    if let (Some(v), Some(_)) = (&o.output, o.ret) {
                        observed.insert(v.to_string());
                    }
                }
                "cas" => {
                    if let Some((from, _)) = cas(o) {
                        observed.insert(from);
                    }
                }
                _ => {}
            }
        }
        let before = ops.len();
        ops.retain(|o| {
            if !o.is_indeterminate() {
                return true;
            }
            let new = match o.f.as_str() {
                "write" => Some(o.input.to_string()),
                "cas" => cas(o).map(|(_, to)| to),
                _ => None,
            };
            new.is_none_or(|v| observed.contains(&v))
        });
        if ops.len() == before {
            return;
        }
    }
}

struct Oracle<'a> {
    ops: &'a [Operation],
    opts: CheckOptions,
    deadline: Instant,
    /// Budget of one check.
    cap: Duration,
    checks: usize,
    /// Some check ran out of time (its answer counts as "not illegal").
    undecided: bool,
}

impl Oracle<'_> {
    /// Is the key still illegal with only `set` (positions) keeping their outcomes?
    fn illegal(&mut self, set: &[usize]) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            self.undecided = true;
            return false;
        }
        let mut kept = vec![false; self.ops.len()];
        for &i in set {
            kept[i] = true;
        }
        let sub = relaxed(self.ops, &kept);
        self.opts.timeout = Some((self.deadline - now).min(self.cap));
        self.checks += 1;
        match linearizable::check(&sub, &self.opts) {
            Ok(r) if r.verdict == Verdict::Illegal => true,
            Ok(r) if r.verdict == Verdict::Unknown => {
                self.undecided = true;
                false
            }
            _ => false,
        }
    }
}

/// Shrinks `ops` (one key's ops as the checker saw them, `fail`s removed) to a minimal set of
/// determinate ops that keeps the key illegal. `anchor` is a time near the failure (the
/// invoke of an op the checker could not place): the search grows a window of ops around it
/// until the window alone is illegal, so no check needs the whole key unless the failure
/// does. `None` when no illegal window was found before `deadline`.
///
/// Two phases keep the checks cheap. First only observations (reads, and cas that found
/// another value) are shrunk while every determinate write keeps its outcome: removing a read
/// preserves linearizability, and histories of determinate ops are fast to check. Then the
/// writes are shrunk with the observations found; a relaxed write that some kept read
/// observed becomes an op that may take effect any time, which is what makes a check slow, so
/// this phase gives each check a short budget and keeps a write whose check did not finish.
pub fn minimize(
    ops: &[Operation],
    opts: &CheckOptions,
    anchor: Option<u64>,
    deadline: Instant,
) -> Option<Minimal> {
    let mut oracle = Oracle {
        ops,
        opts: CheckOptions {
            partition: true,
            ..opts.clone()
        },
        deadline,
        cap: Duration::from_secs(10),
        checks: 0,
        undecided: false,
    };
    let by_call = |v: &mut Vec<usize>| v.sort_by_key(|&i| (ops[i].call, i));
    let observation = |o: &Operation| {
        matches!(o.f.as_str(), "read" | "get") || o.output == Some(serde_json::Value::Bool(false))
    };
    let mut reads: Vec<usize> = (0..ops.len())
        .filter(|&i| !ops[i].is_indeterminate() && observation(&ops[i]))
        .collect();
    let mut writes: Vec<usize> = (0..ops.len())
        .filter(|&i| !ops[i].is_indeterminate() && !observation(&ops[i]))
        .collect();
    by_call(&mut reads);
    by_call(&mut writes);
    // Phase one: the observations, every write kept.
    let with = |fixed: &[usize], part: &[usize]| -> Vec<usize> {
        fixed.iter().chain(part).copied().collect()
    };
    let at = anchor.map_or(reads.len(), |t| {
        reads.partition_point(|&i| ops[i].call <= t)
    });
    let r = shrink(&mut oracle, &reads, at, |set| with(&writes, set))?;
    // Phase two: the writes, the observations found kept.
    oracle.cap = Duration::from_secs(1);
    let at = anchor.map_or(writes.len(), |t| {
        writes.partition_point(|&i| ops[i].call <= t)
    });
    let w = shrink(&mut oracle, &writes, at, |set| with(&r, set)).unwrap_or(writes);
    let mut set = with(&r, &w);
    // 1-minimality over both: relax each op alone, with the full budget per check.
    oracle.cap = Duration::from_secs(10);
    oracle.undecided = false;
    let mut one_minimal = false;
    while Instant::now() < deadline {
        let mut removed = false;
        for j in 0..set.len() {
            let mut without = set.clone();
            without.remove(j);
            if oracle.illegal(&without) {
                set = without;
                removed = true;
                break;
            }
        }
        if !removed {
            one_minimal = !oracle.undecided;
            break;
        }
    }
    by_call(&mut set);
    Some(Minimal {
        kept: set,
        one_minimal,
        checks: oracle.checks,
    })
}

/// Shrinks `items` (sorted by invoke) to a small subset that stays illegal when completed by
/// `full(subset)`: a window grown around position `at`, its two ends cut by binary search,
/// then ddmin. `None` when no window is illegal.
fn shrink(
    oracle: &mut Oracle<'_>,
    items: &[usize],
    at: usize,
    full: impl Fn(&[usize]) -> Vec<usize>,
) -> Option<Vec<usize>> {
    let mut test = |part: &[usize]| oracle.illegal(&full(part));
    let mut width = 2usize;
    let (wlo, whi) = loop {
        let (lo, hi) = (at.saturating_sub(width), (at + width).min(items.len()));
        if test(&items[lo..hi]) {
            break (lo, hi);
        }
        if lo == 0 && hi == items.len() {
            return None;
        }
        width *= 2;
    };
    let items = &items[wlo..whi];
    // The shortest prefix that stays illegal, then the shortest suffix of that. Invariants:
    // `items[..hi]` is illegal, `items[..lo]` is not known to be.
    let (mut lo, mut hi) = (0usize, items.len());
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if test(&items[..mid]) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let end = hi;
    let (mut lo, mut hi) = (0usize, end);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if test(&items[mid..end]) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if test(&[]) {
        return Some(Vec::new());
    }
    Some(ddmin(&mut test, items[lo..end].to_vec()))
}

/// ddmin over `set`, which must be illegal: tries subsets, then complements, at growing
/// granularity, keeping whichever stays illegal.
fn ddmin(test: &mut impl FnMut(&[usize]) -> bool, mut set: Vec<usize>) -> Vec<usize> {
    let mut n = 2usize;
    while set.len() >= 2 {
        let chunk = set.len().div_ceil(n);
        let parts: Vec<Vec<usize>> = set.chunks(chunk).map(<[usize]>::to_vec).collect();
        let mut reduced = false;
        for p in &parts {
            if test(p) {
                set = p.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && parts.len() > 2 {
            for k in 0..parts.len() {
                let complement: Vec<usize> = parts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .flat_map(|(_, p)| p.iter().copied())
                    .collect();
                if test(&complement) {
                    set = complement;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= set.len() {
                break;
            }
            n = (2 * n).min(set.len());
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{pair, Event, EventType, Process};
    use serde_json::{json, Value};

    /// (process, f, input, output, call ms, return ms or None for info)
    type Spec<'a> = (u64, &'a str, Value, Value, u64, Option<u64>);

    fn history(spec: &[Spec]) -> Vec<Operation> {
        let mut evs: Vec<(u64, u8, Event)> = Vec::new();
        for &(p, f, ref input, ref output, call, ret) in spec {
            let e = |kind, value: Value, t: u64| Event {
                index: 0,
                time: t * 1_000_000,
                process: Process::Client(p),
                kind,
                f: f.into(),
                key: None,
                value,
                node: None,
                error: None,
            };
            evs.push((call, 0, e(EventType::Invoke, input.clone(), call)));
            match ret {
                Some(r) => evs.push((r, 1, e(EventType::Ok, output.clone(), r))),
                None => evs.push((call + 1, 1, e(EventType::Info, input.clone(), call + 1))),
            }
        }
        evs.sort_by_key(|(t, k, _)| (*t, *k));
        let evs: Vec<Event> = evs
            .into_iter()
            .enumerate()
            .map(|(i, (_, _, mut e))| {
                e.index = i as u64;
                e
            })
            .collect();
        let lines: Vec<usize> = (1..=evs.len()).collect();
        pair(&evs, &lines).unwrap()
    }

    #[test]
    fn stale_read_among_noise_shrinks_to_three() {
        let n = Value::Null;
        let mut spec = vec![
            (1, "write", json!(1), json!(1), 0, Some(10)),
            (2, "write", json!(2), json!(2), 20, Some(30)),
            (3, "read", n.clone(), json!(1), 40, Some(50)),
        ];
        // Writes and reads of fresh values before and after, a few of them concurrent.
        for i in 0..30u64 {
            let (v, t) = (100 + i, 60 + 4 * i);
            spec.push((10 + i, "write", json!(v), json!(v), t, Some(t + 3)));
            spec.push((50 + i, "read", n.clone(), json!(v), t + 2, Some(t + 5)));
        }
        let ops = history(&spec);
        let opts = CheckOptions::default();
        let deadline = Instant::now() + Duration::from_secs(20);
        let m = minimize(&ops, &opts, Some(45_000_000), deadline).unwrap();
        assert!(m.one_minimal);
        let kept: Vec<(String, Value)> = m
            .kept
            .iter()
            .map(|&i| (ops[i].f.clone(), ops[i].input.clone()))
            .collect();
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert_eq!(kept[2].0, "read");
        // The shrunk set is illegal; relaxing any one op makes it legal.
        let mut keep = vec![false; ops.len()];
        m.kept.iter().for_each(|&i| keep[i] = true);
        let verdict = |k: &[bool]| {
            linearizable::check(&relaxed(&ops, k), &opts)
                .unwrap()
                .verdict
        };
        assert_eq!(verdict(&keep), Verdict::Illegal);
        for &i in &m.kept {
            let mut k = keep.clone();
            k[i] = false;
            assert_eq!(verdict(&k), Verdict::Linearizable);
        }
    }

    #[test]
    fn legal_history_has_no_minimal_counterexample() {
        let ops = history(&[
            (1, "write", json!(1), json!(1), 0, Some(10)),
            (2, "read", Value::Null, json!(1), 20, Some(30)),
        ]);
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(minimize(&ops, &CheckOptions::default(), None, deadline).is_none());
    }
}
