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
//!
//! Ghost writes ([`crate::ghost`]) are anomalies linearizability cannot see (an indeterminate
//! write may legally take effect at any later time), so when the ghost check finds one the
//! verdict is `invalid` even if linearizability said valid or unknown, and `explanation` says
//! which check decided.

use crate::ghost::{self, GhostReport};
use crate::history::{Event, History};
use crate::linearizable::{self, CheckOptions, CheckResult, Verdict};
use crate::model::ModelKind;
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
    /// Resurrected writes (register / kv histories with unique values); `None` when none were
    /// found, so results.json only mentions them when there are some.
    #[serde(default, skip_serializing_if = "no_ghosts")]
    pub ghosts: Option<GhostReport>,
    /// Why the verdict differs from the linearizability check's, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

fn no_ghosts(g: &Option<GhostReport>) -> bool {
    g.as_ref().is_none_or(GhostReport::is_empty)
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
        let ops = history.operations().map_err(|e| e.to_string());
        let checked = ops
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|ops| linearizable::check(ops, opts).map_err(|e| e.to_string()));
        let (linearizability, checker_error) = match checked {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        // Unique write values are what makes a read name its write; Porcupine's kv model
        // (append) has neither.
        let ghosts = match &ops {
            Ok(ops)
                if opts.model != Some(ModelKind::Kv) && !ops.iter().any(|o| o.f == "append") =>
            {
                Some(ghost::check(ops, events)).filter(|g| !g.is_empty())
            }
            _ => None,
        };
        let lin_verdict = linearizability.as_ref().map(|r| r.verdict);
        let mut explanation = None;
        let verdict = match (lin_verdict, ghosts.as_ref()) {
            (Some(Verdict::Illegal), _) => "invalid",
            (lin, Some(g)) if !g.is_empty() => {
                let lin = match lin {
                    Some(Verdict::Linearizable) => "linearizable",
                    _ => "undecided",
                };
                explanation = Some(format!(
                    "invalid because of ghost writes, although the history is {lin} \
                     (an indeterminate write may take effect at any later time): {}",
                    g.summary()
                ));
                "invalid"
            }
            (Some(Verdict::Linearizable), _) => "valid",
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
            ghosts,
            explanation,
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
        assert!(good.ghosts.is_none());
        let text = serde_json::to_string(&good).unwrap();
        assert!(
            !text.contains("ghosts"),
            "empty ghost reports are not stored: {text}"
        );
    }

    #[test]
    fn ghost_makes_a_linearizable_history_invalid() {
        use EventType::*;
        let mut evs = vec![
            ev(0, 5, Invoke, "write", json!(17)),
            ev(1, 5, Info, "write", json!(17)),
            ev(2, 2, Invoke, "write", json!(42)),
            ev(3, 2, Ok, "write", json!(42)),
            ev(4, 3, Invoke, "read", json!(null)),
            ev(5, 3, Ok, "read", json!(42)),
            ev(6, 4, Invoke, "read", json!(null)),
            ev(7, 4, Ok, "read", json!(17)),
        ];
        evs[1].error = Some("timeout".into());
        let a = Analysis::of_events(&evs, &CheckOptions::default());
        assert_eq!(
            a.linearizability.as_ref().map(|l| l.verdict),
            Some(Verdict::Linearizable)
        );
        assert_eq!(a.verdict, "invalid");
        let why = a.explanation.clone().unwrap();
        assert!(
            why.contains("ghost") && why.contains("linearizable"),
            "{why}"
        );
        let back: Analysis = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.ghosts.map(|g| g.count), Some(1));
    }

    #[test]
    fn old_results_without_ghosts_still_parse() {
        let evs = vec![ev(0, 0, EventType::Invoke, "write", json!(1))];
        let a = Analysis::of_events(&evs, &CheckOptions::default());
        let mut v = serde_json::to_value(&a).unwrap();
        v.as_object_mut().unwrap().remove("ghosts");
        v.as_object_mut().unwrap().remove("explanation");
        let back: Analysis = serde_json::from_value(v).unwrap();
        assert!(back.ghosts.is_none() && back.explanation.is_none());
    }
}
