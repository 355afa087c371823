//! A real run's faults as simulation steps: `faultline sim --from RUN_DIR`.
//!
//! Every fault a real run applied is in its history as a nemesis event: `<kind>-start` with
//! the resolved [`Fault`] as its value, `<kind>-stop` when it was undone, at the harness's
//! time since the history started. Turned into [`Step`]s they replay the same faults at the
//! same times against the simulated cluster. The simulated run is not the real run (other
//! timings, other leaders), but a bug seen once in a real run can then be hunted over seeds.

use checkers::history::{Event, Process};
use nemesis::{Fault, FaultKind, Step, StepAction, Target};
use std::collections::BTreeSet;
use std::time::Duration;

/// A nemesis event that cannot be read back, naming its history index.
#[derive(Debug, thiserror::Error)]
#[error("history event {index} ({f}): {message}")]
pub struct FromRunError {
    /// The event's `index`.
    pub index: u64,
    /// Its `f`.
    pub f: String,
    /// What is wrong.
    pub message: String,
}

/// The fault steps of a history, in time order, at millisecond precision. Events that are
/// no fault edge (`cluster-status`, `<kind>-failed`) are skipped; a stop without a start
/// (the harness heals everything at the end) is dropped.
pub fn steps_from_history(events: &[Event]) -> Result<Vec<Step>, FromRunError> {
    let mut steps = Vec::new();
    let mut active = BTreeSet::new();
    for e in events.iter().filter(|e| e.process == Process::Nemesis) {
        let err = |message: String| FromRunError {
            index: e.index,
            f: e.f.clone(),
            message,
        };
        let at = Duration::from_millis(e.time / 1_000_000);
        let kind = |name: &str| FaultKind::ALL.into_iter().find(|k| k.name() == name);
        if e.f == format!("{}-start", FaultKind::Member.name()) {
            return Err(err(
                "the simulator has a fixed membership; a run with membership changes cannot be replayed"
                    .into(),
            ));
        }
        if let Some(k) = e.f.strip_suffix("-start").and_then(kind) {
            let fault: Fault = serde_json::from_value(e.value.clone())
                .map_err(|x| err(format!("not a fault: {x}")))?;
            if fault.kind() != k {
                return Err(err(format!("the value is a {} fault", fault.kind().name())));
            }
            if !active.insert(k) {
                return Err(err(format!(
                    "a second {} fault starts before the first stopped",
                    k.name()
                )));
            }
            steps.push(Step {
                at,
                action: StepAction::Start(fault),
            });
        } else if let Some(k) = e.f.strip_suffix("-stop").and_then(kind) {
            if active.remove(&k) {
                steps.push(Step {
                    at,
                    action: StepAction::Stop(k),
                });
            }
        }
    }
    steps.sort_by_key(|s| s.at);
    Ok(steps)
}

/// Renames the nodes `from[i]` to `to[i]` in every fault (a run on named hosts, replayed on
/// the simulator's `n1`..`nN`). Names not in `from` are kept.
pub fn rename_nodes(steps: Vec<Step>, from: &[String], to: &[String]) -> Vec<Step> {
    let map = |n: &String| {
        from.iter()
            .position(|f| f == n)
            .and_then(|i| to.get(i))
            .unwrap_or(n)
            .clone()
    };
    let target = |t: &Target| match t {
        Target::Leader => Target::Leader,
        Target::Nodes(n) => Target::Nodes(n.iter().map(map).collect()),
    };
    steps
        .into_iter()
        .map(|s| {
            let action = match s.action {
                StepAction::Start(f) => StepAction::Start(match f {
                    Fault::Partition { shape, grudge } => Fault::Partition {
                        shape,
                        grudge: grudge
                            .iter()
                            .map(|(k, v)| (map(k), v.iter().map(map).collect()))
                            .collect(),
                    },
                    Fault::Kill { target: t } => Fault::Kill { target: target(&t) },
                    Fault::Pause { target: t } => Fault::Pause { target: target(&t) },
                    Fault::Clock { target: t, op } => Fault::Clock {
                        target: target(&t),
                        op,
                    },
                    Fault::Packet {
                        target: t,
                        delay_ms,
                        loss,
                    } => Fault::Packet {
                        target: target(&t),
                        delay_ms,
                        loss,
                    },
                    Fault::Member {
                        grow,
                        target: t,
                        added,
                        removed,
                    } => Fault::Member {
                        grow,
                        target: target(&t),
                        added: added.iter().map(map).collect(),
                        removed: removed.iter().map(map).collect(),
                    },
                }),
                stop => stop,
            };
            Step { at: s.at, action }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::history::EventType;
    use serde_json::json;

    fn nem(index: u64, ms: u64, f: &str, value: serde_json::Value) -> Event {
        Event {
            index,
            time: ms * 1_000_000 + 123,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn reads_starts_and_stops() {
        let kill = json!({"type": "kill", "target": {"nodes": ["n2"]}});
        let events = vec![
            nem(0, 5, "cluster-status", json!({"nodes": {}})),
            nem(1, 1200, "kill-start", kill.clone()),
            nem(2, 3400, "kill-stop", kill),
            nem(3, 3500, "pause-stop", json!(null)),
            nem(4, 3600, "clock-failed", json!(null)),
        ];
        let steps = steps_from_history(&events).unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].at, Duration::from_millis(1200));
        assert!(matches!(
            &steps[0].action,
            StepAction::Start(Fault::Kill { .. })
        ));
        assert_eq!(steps[1].action, StepAction::Stop(FaultKind::Kill));
        let bad = vec![nem(7, 1, "kill-start", json!({"type": "flood"}))];
        let e = steps_from_history(&bad).unwrap_err();
        assert_eq!(e.index, 7);
    }
}
