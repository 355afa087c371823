//! Reading a run's history for what its leader isolations really did: which node each
//! `leader` partition cut off, whether that node was the leader by the cluster-status events
//! recorded before it, and which clock fault started on it at the same nemesis step. Shared
//! by the local nemesis test and the VM test (where it says why a lease bug was or was not
//! caught).

#![allow(dead_code)]

use checkers::cluster_state::{ClusterStatus, Role};
use checkers::fault::{ClockOp, Fault, PartitionShape, Target};
use std::path::Path;

/// One `leader` partition of a run.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// When it started, seconds since the run's start.
    pub at_s: f64,
    /// When it healed, seconds (None: no stop recorded).
    pub healed_s: Option<f64>,
    /// The node cut off from all others.
    pub isolated: String,
    /// The leader by the last cluster-status event before it (highest term claiming).
    pub leader_before: Option<String>,
    /// A clock bump on the isolated node recorded after the previous partition event and
    /// before this one (the nemesis step's pairing): its offset in ms.
    pub bump_ms: Option<i64>,
    /// When that bump was recorded (applied), seconds.
    pub bump_at_s: Option<f64>,
}

/// A nemesis event: (f, time in s, the typed fault if it is one, the status if it is one).
struct Nemesis {
    f: String,
    at_s: f64,
    fault: Option<Fault>,
    status: Option<ClusterStatus>,
}

fn nemesis_events(run: &Path) -> Vec<Nemesis> {
    let text = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["process"] == "nemesis")
        .map(|e| {
            let f = e["f"].as_str().unwrap_or("").to_string();
            Nemesis {
                at_s: e["time"].as_f64().unwrap_or(0.0) / 1e9,
                fault: serde_json::from_value(e["value"].clone()).ok(),
                status: (f == "cluster-status")
                    .then(|| serde_json::from_value(e["value"].clone()).ok())
                    .flatten(),
                f,
            }
        })
        .collect()
}

fn leader_of(status: &ClusterStatus) -> Option<String> {
    status
        .nodes
        .iter()
        .filter_map(|(id, s)| s.as_ref().map(|s| (s, id)))
        .filter(|(s, _)| s.role == Role::Leader)
        .max_by_key(|(s, _)| s.term)
        .map(|(_, id)| id.clone())
}

/// Every `leader` partition of the run in `run` (a run directory), in order.
pub fn isolations(run: &Path) -> Vec<Isolation> {
    let events = nemesis_events(run);
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let Some(Fault::Partition {
            shape: PartitionShape::IsolateLeader,
            grudge,
        }) = &e.fault
        else {
            continue;
        };
        if e.f != "partition-start" {
            continue;
        }
        let others = grudge.len().saturating_sub(1);
        let Some(isolated) = grudge
            .iter()
            .find(|(_, cut)| cut.len() == others && others > 0)
            .map(|(n, _)| n.clone())
        else {
            continue;
        };
        let leader_before = events[..i]
            .iter()
            .rev()
            .find_map(|e| e.status.as_ref())
            .and_then(leader_of);
        // The fault events right before it, back to the previous partition event.
        let bump = events[..i]
            .iter()
            .rev()
            .filter(|e| e.f != "cluster-status")
            .take_while(|e| !e.f.starts_with("partition-"))
            .find_map(|e| match &e.fault {
                Some(Fault::Clock {
                    target: Target::Nodes(n),
                    op: ClockOp::Bump { delta_ms },
                }) if e.f == "clock-start" && n == &vec![isolated.clone()] => {
                    Some((*delta_ms, e.at_s))
                }
                _ => None,
            });
        let healed_s = events[i..]
            .iter()
            .find(|h| h.f == "partition-stop")
            .map(|h| h.at_s);
        out.push(Isolation {
            at_s: e.at_s,
            healed_s,
            isolated,
            leader_before,
            bump_ms: bump.map(|b| b.0),
            bump_at_s: bump.map(|b| b.1),
        });
    }
    out
}

/// One line per isolation, for test output.
pub fn describe(isolations: &[Isolation]) -> String {
    isolations
        .iter()
        .map(|i| {
            format!(
                "{:.1}-{} s: {} cut off (leader before: {}), clock {}{}",
                i.at_s,
                i.healed_s.map_or("end".into(), |h| format!("{h:.1}")),
                i.isolated,
                i.leader_before.as_deref().unwrap_or("none seen"),
                i.bump_ms
                    .map_or("not moved".into(), |d| format!("{d:+} ms")),
                i.bump_at_s
                    .map_or(String::new(), |b| format!(" at {b:.1} s")),
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Of the node answers the cluster-status events recorded, how many came (a status request
/// that times out is recorded as no answer): (answered, polled).
pub fn status_answers(run: &Path) -> (usize, usize) {
    nemesis_events(run)
        .iter()
        .filter_map(|e| e.status.as_ref())
        .flat_map(|s| s.nodes.values())
        .fold((0, 0), |(a, n), s| (a + usize::from(s.is_some()), n + 1))
}
