//! The fault model: what a fault is, as data, and a seeded schedule of faults.
//!
//! A [`Fault`] says *what* goes wrong (a partition grudge, nodes killed or paused, a clock
//! bump, a link delay), never *how*: injecting is the job of an environment's injector (the
//! local one, with userspace proxies, signals and libfaketime, lives in the harness). Every
//! fault has a matching stop, so a [`Schedule`] is a seeded stream of [`Step`]s that start
//! and stop faults; each fault kind runs its own start/stop cycle, so kinds overlap the way
//! independent Jepsen nemeses do (a clock bump on an isolated leader is exactly the case the
//! unsafe wall-clock lease needs).
//!
//! Targets that depend on the live cluster (the current leader) are left symbolic
//! ([`PartitionShape::IsolateLeader`], [`Target::Leader`]) and resolved by the injector right
//! before it applies the fault, with [`Fault::resolve`]. This crate has no I/O and no async.
//!
//! The fault *data* ([`Fault`], [`Target`], [`ClockOp`], [`FaultKind`], [`PartitionShape`],
//! [`Grudge`], [`NodeId`]) is part of the history contract and lives in `checkers::fault`
//! (nemesis events carry a serialized `Fault`); it is re-exported here unchanged. This crate
//! keeps the schedule and the random drawing of grudges ([`DrawGrudge`]).

pub mod partition;
pub mod schedule;

pub use checkers::fault::{ClockOp, Fault, FaultKind, Grudge, NodeId, PartitionShape, Target};
pub use partition::DrawGrudge;
pub use schedule::{Schedule, ScheduleOptions, Step, StepAction};

/// Bad `--nemesis` input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NemesisError {
    /// A name that is not a fault kind.
    #[error("unknown nemesis {0:?} (expected a comma-separated list of partition, kill, pause, clock, packet, member, or all, or none)")]
    UnknownKind(String),
    /// A name that is not a partition shape.
    #[error("unknown partition shape {0:?} (expected halves, one, ring, bridge, leader, or all)")]
    UnknownShape(String),
}

/// Parses `--nemesis`: `all`, `none`, or a comma-separated list of kinds.
pub fn parse_kinds(s: &str) -> Result<Vec<FaultKind>, NemesisError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => out.extend(FaultKind::ALL),
            "none" => {}
            name => {
                let k = FaultKind::from_name(name)
                    .ok_or_else(|| NemesisError::UnknownKind(name.to_string()))?;
                out.push(k);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds() {
        assert_eq!(parse_kinds("all").unwrap().len(), 5);
        assert!(parse_kinds("none").unwrap().is_empty());
        assert_eq!(
            parse_kinds("kill,partition,kill").unwrap(),
            vec![FaultKind::Partition, FaultKind::Kill]
        );
        assert_eq!(
            parse_kinds("all,member").unwrap().last(),
            Some(&FaultKind::Member)
        );
        assert!(!parse_kinds("all").unwrap().contains(&FaultKind::Member));
        assert_eq!(
            parse_kinds("flood"),
            Err(NemesisError::UnknownKind("flood".into()))
        );
    }

    #[test]
    fn resolves_leader() {
        let nodes: Vec<NodeId> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let f = Fault::Partition {
            shape: PartitionShape::IsolateLeader,
            grudge: Grudge::new(),
        };
        let Fault::Partition { grudge, .. } = f.resolve(&nodes, Some("n2"), "n1") else {
            panic!()
        };
        assert_eq!(grudge["n2"].len(), 2);
        assert!(grudge["n1"].contains("n2"));
        let k = Fault::Kill {
            target: Target::Leader,
        }
        .resolve(&nodes, None, "n3");
        assert_eq!(k.nodes(), ["n3".to_string()]);
    }
}
