//! Counting what happened in a history: ok / fail / info by function, latency quantiles, and
//! availability inside and outside fault windows.
//!
//! Everything here is computed once from the paired operations (fails included, see
//! [`crate::history::pair_all`]) by [`crate::analysis::Analysis`] and stored in
//! `results.json`; the report shows these figures and never recomputes them. Judging
//! correctness is left to the checkers; turning numbers into pictures to the `report` crate.

use crate::history::{Operation, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Completion counts for one function (or for all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Invocations seen.
    pub invoked: u64,
    /// Completed and took effect.
    pub ok: u64,
    /// Definitely did not take effect.
    pub fail: u64,
    /// Outcome unknown (timeouts, lost connections), including invokes never completed.
    pub info: u64,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        self.invoked += 1;
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
        }
    }
}

/// Op outcome counts: overall and per function (`read`, `write`, `cas`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// All client ops together.
    pub total: Counts,
    /// Per function name, sorted by name.
    pub by_f: BTreeMap<String, Counts>,
}

/// Latency quantiles of `ok` ops, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Number of ok ops measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest ok op.
    pub max_ms: f64,
}

impl Latency {
    /// Exact quantiles of the given latencies (nanoseconds); sorts the slice.
    pub fn from_nanos(lat: &mut [u64]) -> Latency {
        if lat.is_empty() {
            return Latency::default();
        }
        lat.sort_unstable();
        let q = |p: f64| {
            let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
            lat[i.min(lat.len() - 1)] as f64 / 1e6
        };
        Latency {
            count: lat.len() as u64,
            p50_ms: q(0.50),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: *lat.last().expect("non-empty") as f64 / 1e6,
        }
    }
}

/// Share of ops that succeeded, for ops invoked in some set of time windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Fraction {
    /// Ops invoked in the windows that completed `ok`.
    pub ok: u64,
    /// Ops invoked in the windows (ok + fail + info).
    pub total: u64,
    /// `ok / total`, or `null` when no op was invoked there.
    pub ratio: Option<f64>,
}

impl Fraction {
    fn add(&mut self, ok: bool) {
        self.total += 1;
        if ok {
            self.ok += 1;
        }
        self.ratio = Some(self.ok as f64 / self.total as f64);
    }
}

/// Availability: the fraction of ops that completed `ok`, split by whether the op was invoked
/// while at least one fault was active (an op is attributed by its invoke time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    /// Ops invoked while a fault was active.
    pub during_faults: Fraction,
    /// Ops invoked while no fault was active.
    pub outside_faults: Fraction,
}

impl Stats {
    /// Counts of paired operations (from [`crate::history::pair_all`], so `fail`s included).
    pub fn of(ops: &[Operation]) -> Stats {
        let mut stats = Stats::default();
        for op in ops {
            let outcome = op.outcome();
            stats.total.add(outcome);
            stats.by_f.entry(op.f.clone()).or_default().add(outcome);
        }
        stats
    }
}

/// Latency quantiles of ok ops, overall and per function.
pub fn latencies(ops: &[Operation]) -> (Latency, BTreeMap<String, Latency>) {
    let mut all = Vec::new();
    let mut by_f: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for op in ops {
        if let Some(ret) = op.ret {
            let l = ret.saturating_sub(op.call);
            all.push(l);
            by_f.entry(op.f.as_str()).or_default().push(l);
        }
    }
    let per_f = by_f
        .into_iter()
        .map(|(f, mut l)| (f.to_string(), Latency::from_nanos(&mut l)))
        .collect();
    (Latency::from_nanos(&mut all), per_f)
}

impl Availability {
    /// Splits ops by whether a fault was active at their invoke (`active(t)`).
    pub fn of(ops: &[Operation], active: impl Fn(u64) -> bool) -> Availability {
        let mut a = Availability::default();
        for op in ops {
            let ok = op.outcome() == Outcome::Ok;
            if active(op.call) {
                a.during_faults.add(ok);
            } else {
                a.outside_faults.add(ok);
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{pair_all, Event, EventType, Process};
    use serde_json::json;

    fn ev(i: u64, t: u64, p: Process, kind: EventType, f: &str) -> Event {
        Event {
            index: i,
            time: t,
            process: p,
            kind,
            f: f.into(),
            key: None,
            value: json!(null),
            node: None,
            error: None,
        }
    }

    #[test]
    fn counts_latency_and_availability() {
        use EventType::*;
        let c = Process::Client;
        let evs = [
            ev(0, 0, c(0), Invoke, "write"),
            ev(1, 2_000_000, c(0), Ok, "write"),
            ev(3, 4_000_000, c(0), Invoke, "read"),
            ev(4, 5_000_000, c(0), Info, "read"),
            ev(5, 6_000_000, c(2), Invoke, "read"),
            ev(6, 6_500_000, c(2), Fail, "read"),
            ev(7, 7_000_000, c(1), Invoke, "read"),
        ];
        let lines: Vec<usize> = (1..=evs.len()).collect();
        let ops = pair_all(&evs, &lines).unwrap();
        let stats = Stats::of(&ops);
        assert_eq!(stats.total.ok, 1);
        assert_eq!(stats.total.fail, 1);
        assert_eq!(stats.total.invoked, 4);
        assert_eq!(stats.by_f["read"].info, 2);
        let (lat, by_f) = latencies(&ops);
        assert_eq!(lat.count, 1);
        assert!((lat.p50_ms - 2.0).abs() < 1e-9);
        assert_eq!(by_f["write"].count, 1);
        assert!(!by_f.contains_key("read"));
        let avail = Availability::of(&ops, |t| (3_000_000..6_000_000).contains(&t));
        assert_eq!(avail.during_faults.total, 1);
        assert_eq!(avail.during_faults.ok, 0);
        assert_eq!(avail.outside_faults.total, 3);
    }
}
