//! `results.json`: everything the checkers concluded about one run, as one serde type.
//!
//! [`Analysis`] is the contract between the harness (which writes it after a run, and again
//! on `faultline analyze`) and the report crate (which reads it to draw the verdict banner,
//! the fault table and the counterexample). Field names are stable; new sections are added as
//! optional fields so old `results.json` files keep parsing.
//!
//! The top-level `verdict` is one of `valid` | `invalid` | `unknown`, derived from the
//! linearizability check (`linearizable` → valid, `illegal` → invalid, `unknown` → unknown).
//! When the check could not run at all (a malformed history), the verdict is `unknown` and
//! `checker_error` says why.

use crate::history::{Event, History};
use crate::linearizable::{self, CheckOptions, CheckResult, Verdict};
use crate::stats::{Availability, FaultRecord, Latency, Stats, StatsBuilder};
use serde::{Deserialize, Serialize};

/// Name of the file an [`Analysis`] is stored in, inside a run directory.
pub const RESULTS_FILE: &str = "results.json";

/// The contents of `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// `valid` | `invalid` | `unknown` (see the module doc).
    pub verdict: String,
    /// The linearizability check (per-key partitions, counterexample when illegal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linearizability: Option<CheckResult>,
    /// Why the checker could not run, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker_error: Option<String>,
    /// ok / fail / info counts, overall and by function.
    pub stats: Stats,
    /// Latency quantiles of ok ops.
    pub latency: Latency,
    /// Fraction of ok ops invoked during fault windows vs outside them.
    pub availability: Availability,
    /// Every fault the nemesis applied, in start order.
    pub faults: Vec<FaultRecord>,
    /// Duration of the history (time of its last event), ns.
    pub duration_ns: u64,
    /// NWR / quorum staleness analysis, added by the quorum analyzers when relevant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nwr: Option<serde_json::Value>,
}

impl Analysis {
    /// Runs every checker over a history's events (in history order).
    pub fn of_events(events: &[Event], opts: &CheckOptions) -> Analysis {
        let mut builder = StatsBuilder::new();
        for ev in events {
            builder.push(ev);
        }
        let (stats, latency, availability, faults) = builder.finish();
        let duration_ns = events.iter().map(|e| e.time).max().unwrap_or(0);
        let history = History::from_events(events.to_vec());
        let checked = history
            .operations()
            .map_err(|e| e.to_string())
            .and_then(|ops| linearizable::check(&ops, opts).map_err(|e| e.to_string()));
        let (linearizability, checker_error) = match checked {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        let verdict = match linearizability.as_ref().map(|r| r.verdict) {
            Some(Verdict::Linearizable) => "valid",
            Some(Verdict::Illegal) => "invalid",
            _ => "unknown",
        }
        .to_string();
        Analysis {
            verdict,
            linearizability,
            checker_error,
            stats,
            latency,
            availability,
            faults,
            duration_ns,
            nwr: None,
        }
    }

    /// True when the verdict is `valid`.
    pub fn is_valid(&self) -> bool {
        self.verdict == "valid"
    }

    /// True when the verdict is `invalid`.
    pub fn is_invalid(&self) -> bool {
        self.verdict == "invalid"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Process};
    use serde_json::json;

    fn ev(i: u64, p: u64, kind: EventType, f: &str, v: serde_json::Value) -> Event {
        Event {
            index: i,
            time: i * 10,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: None,
            value: v,
            node: None,
            error: None,
        }
    }

    #[test]
    fn stale_read_is_invalid_and_roundtrips() {
        use EventType::*;
        let evs = vec![
            ev(0, 0, Invoke, "write", json!(1)),
            ev(1, 0, Ok, "write", json!(1)),
            ev(2, 1, Invoke, "read", json!(null)),
            ev(3, 1, Ok, "read", json!(null)),
        ];
        let a = Analysis::of_events(&evs, &CheckOptions::default());
        assert_eq!(a.verdict, "invalid");
        let text = serde_json::to_string(&a).unwrap();
        let back: Analysis = serde_json::from_str(&text).unwrap();
        assert_eq!(back.verdict, a.verdict);
        assert_eq!(back.stats, a.stats);
        let good = Analysis::of_events(&evs[..2], &CheckOptions::default());
        assert!(good.is_valid());
    }
}
