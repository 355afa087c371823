//! Counting what happened in a history: ok / fail / info by function, latency quantiles, and
//! availability inside and outside fault windows.
//!
//! Everything here is a streaming fold over [`Event`]s ([`StatsBuilder::push`]), so the harness
//! can summarise a history of any length without holding it; only completed-op latencies are
//! kept (one `u64` per op) to compute exact quantiles. Judging correctness is left to
//! [`crate::linearizable`]; turning numbers into pictures is left to the `report` crate.

use crate::history::{Event, EventType, Process};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

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
    fn add(&mut self, kind: EventType) {
        match kind {
            EventType::Invoke => self.invoked += 1,
            EventType::Ok => self.ok += 1,
            EventType::Fail => self.fail += 1,
            EventType::Info => self.info += 1,
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

/// One fault the nemesis applied: from its `<kind>-start` event to its `<kind>-stop` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// The kind: `partition`, `kill`, `pause`, `clock`, `packet` (the `f` without `-start`).
    pub kind: String,
    /// Start time, ns since test start.
    pub start: u64,
    /// Stop time, ns since test start; `None` when the history ends first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<u64>,
    /// The start event's value: the fault as data (grudge, nodes, clock delta, ...).
    pub value: serde_json::Value,
}

/// Splits a nemesis `f` such as `partition-start` into (`partition`, true).
pub fn fault_kind(f: &str) -> Option<(&str, bool)> {
    if let Some(k) = f.strip_suffix("-start") {
        Some((k, true))
    } else {
        f.strip_suffix("-stop").map(|k| (k, false))
    }
}

/// Folds events one at a time into [`Stats`], [`Latency`], [`Availability`] and the fault list.
#[derive(Debug, Default)]
pub struct StatsBuilder {
    stats: Stats,
    /// Pending invokes per process: (f, invoke time, fault active at invoke).
    pending: HashMap<Process, (String, u64, bool)>,
    latencies: Vec<u64>,
    availability: Availability,
    faults: Vec<FaultRecord>,
    /// Indices into `faults` still open.
    open: Vec<usize>,
}

impl StatsBuilder {
    /// A new, empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event in (events must come in history order).
    pub fn push(&mut self, ev: &Event) {
        if ev.process == Process::Nemesis {
            if let Some((kind, start)) = fault_kind(&ev.f) {
                if start {
                    self.open.push(self.faults.len());
                    self.faults.push(FaultRecord {
                        kind: kind.to_string(),
                        start: ev.time,
                        stop: None,
                        value: ev.value.clone(),
                    });
                } else if let Some(pos) =
                    self.open.iter().position(|&i| self.faults[i].kind == kind)
                {
                    let i = self.open.remove(pos);
                    self.faults[i].stop = Some(ev.time);
                }
            }
            return;
        }
        self.stats.total.add(ev.kind);
        self.stats
            .by_f
            .entry(ev.f.clone())
            .or_default()
            .add(ev.kind);
        match ev.kind {
            EventType::Invoke => {
                let faulty = !self.open.is_empty();
                self.pending
                    .insert(ev.process, (ev.f.clone(), ev.time, faulty));
            }
            kind => {
                if let Some((_, t0, faulty)) = self.pending.remove(&ev.process) {
                    let ok = kind == EventType::Ok;
                    if ok {
                        self.latencies.push(ev.time.saturating_sub(t0));
                    }
                    if faulty {
                        self.availability.during_faults.add(ok);
                    } else {
                        self.availability.outside_faults.add(ok);
                    }
                }
            }
        }
    }

    /// Finishes: invokes never completed count as `info` (and as unavailable).
    pub fn finish(mut self) -> (Stats, Latency, Availability, Vec<FaultRecord>) {
        for (_, (f, _, faulty)) in self.pending.drain() {
            self.stats.total.info += 1;
            self.stats.by_f.entry(f).or_default().info += 1;
            if faulty {
                self.availability.during_faults.add(false);
            } else {
                self.availability.outside_faults.add(false);
            }
        }
        let latency = Latency::from_nanos(&mut self.latencies);
        (self.stats, latency, self.availability, self.faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            ev(2, 3_000_000, Process::Nemesis, Info, "partition-start"),
            ev(3, 4_000_000, c(0), Invoke, "read"),
            ev(4, 5_000_000, c(0), Info, "read"),
            ev(5, 6_000_000, Process::Nemesis, Info, "partition-stop"),
            ev(6, 7_000_000, c(1), Invoke, "read"),
        ];
        let mut b = StatsBuilder::new();
        evs.iter().for_each(|e| b.push(e));
        let (stats, lat, avail, faults) = b.finish();
        assert_eq!(stats.total.ok, 1);
        assert_eq!(stats.by_f["read"].info, 2);
        assert_eq!(lat.count, 1);
        assert!((lat.p50_ms - 2.0).abs() < 1e-9);
        assert_eq!(avail.during_faults.total, 1);
        assert_eq!(avail.during_faults.ok, 0);
        assert_eq!(avail.outside_faults.total, 2);
        assert_eq!(faults.len(), 1);
        assert_eq!(faults[0].stop, Some(6_000_000));
    }
}
