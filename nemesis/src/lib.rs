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

pub mod partition;
pub mod schedule;

pub use partition::{Grudge, PartitionShape};
pub use schedule::{Schedule, ScheduleOptions, Step, StepAction};

use serde::{Deserialize, Serialize};

/// A node id (`n1`, `n2`, ...).
pub type NodeId = String;

/// Which nodes a kill / pause / clock fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// These nodes.
    Nodes(Vec<NodeId>),
    /// Whoever leads when the fault starts (falls back to a random node when none does).
    Leader,
}

/// How a clock fault moves a node's wall clock (libfaketime offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockOp {
    /// Jump by `delta_ms` (negative = back in time) and stay there.
    Bump {
        /// The offset, milliseconds.
        delta_ms: i64,
    },
    /// Flip between +`delta_ms` and 0 every `period_ms`.
    Strobe {
        /// The offset, milliseconds.
        delta_ms: i64,
        /// Time between flips, milliseconds.
        period_ms: u64,
    },
}

/// One fault, as data. Its stop is recorded as `<kind>-stop` with the same value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Fault {
    /// Drop traffic along the grudge's links (both directions for the standard shapes).
    Partition {
        /// The shape it was drawn from.
        shape: PartitionShape,
        /// Node -> the nodes whose traffic it drops. Empty until resolved for
        /// [`PartitionShape::IsolateLeader`].
        grudge: Grudge,
    },
    /// SIGKILL the nodes; the stop restarts them with the same data.
    Kill {
        /// Who.
        target: Target,
    },
    /// SIGSTOP the nodes; the stop SIGCONTs them.
    Pause {
        /// Who.
        target: Target,
    },
    /// Skew the nodes' wall clocks; the stop resets them to true time.
    Clock {
        /// Who.
        target: Target,
        /// How.
        op: ClockOp,
    },
    /// Delay (and lose) traffic on links into and out of the nodes.
    Packet {
        /// Who.
        target: Target,
        /// Added one-way delay, milliseconds.
        delay_ms: u64,
        /// Probability in [0, 1] that a packet is lost (and, on TCP, retransmitted later).
        #[serde(default)]
        loss: f64,
    },
    /// A membership change (Raft's single-server changes, or several servers at once for
    /// the unsafe variant): add fresh nodes (new ids, empty data dirs) or remove members.
    /// The injector keeps the cluster between 3 and 5 members, so `grow` is a preference it
    /// turns around at the bounds. The change is not undone: its stop only marks the end.
    Member {
        /// Add (true) or remove (false) nodes.
        grow: bool,
        /// Who a removal removes.
        target: Target,
        /// Once resolved: the fresh nodes added.
        #[serde(default)]
        added: Vec<NodeId>,
        /// Once resolved: the members removed.
        #[serde(default)]
        removed: Vec<NodeId>,
    },
}

impl Fault {
    /// The kind, as used in history `f` names (`partition` → `partition-start`).
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Partition { .. } => FaultKind::Partition,
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Clock { .. } => FaultKind::Clock,
            Fault::Packet { .. } => FaultKind::Packet,
            Fault::Member { .. } => FaultKind::Member,
        }
    }

    /// Replaces symbolic targets by concrete nodes. `leader` is the current leader if known;
    /// `fallback` is used when there is none.
    pub fn resolve(&self, nodes: &[NodeId], leader: Option<&str>, fallback: &str) -> Fault {
        let who = leader.unwrap_or(fallback).to_string();
        let t = |t: &Target| match t {
            Target::Leader => Target::Nodes(vec![who.clone()]),
            other => other.clone(),
        };
        match self {
            Fault::Partition {
                shape: PartitionShape::IsolateLeader,
                ..
            } => Fault::Partition {
                shape: PartitionShape::IsolateLeader,
                grudge: partition::isolate(nodes, &who),
            },
            Fault::Partition { .. } => self.clone(),
            Fault::Kill { target } => Fault::Kill { target: t(target) },
            Fault::Pause { target } => Fault::Pause { target: t(target) },
            Fault::Clock { target, op } => Fault::Clock {
                target: t(target),
                op: *op,
            },
            Fault::Packet {
                target,
                delay_ms,
                loss,
            } => Fault::Packet {
                target: t(target),
                delay_ms: *delay_ms,
                loss: *loss,
            },
            // The injector resolves membership changes itself (it picks fresh ids).
            Fault::Member { .. } => self.clone(),
        }
    }

    /// The concrete nodes a resolved fault targets (empty for partitions and symbolic targets).
    pub fn nodes(&self) -> &[NodeId] {
        match self {
            Fault::Kill {
                target: Target::Nodes(n),
            }
            | Fault::Pause {
                target: Target::Nodes(n),
            }
            | Fault::Clock {
                target: Target::Nodes(n),
                ..
            }
            | Fault::Packet {
                target: Target::Nodes(n),
                ..
            } => n,
            _ => &[],
        }
    }
}

/// The fault kinds `--nemesis` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Network partitions.
    Partition,
    /// Crash (SIGKILL) and restart.
    Kill,
    /// SIGSTOP / SIGCONT.
    Pause,
    /// Wall-clock skew.
    Clock,
    /// Link delay.
    Packet,
    /// Membership changes (Raft only; not part of `all`).
    Member,
}

impl FaultKind {
    /// Every kind `--nemesis all` names, in order (membership changes need an engine that
    /// has them, so they are asked for by name).
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Packet,
    ];

    /// The name used on the command line and in history `f`s.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::Packet => "packet",
            FaultKind::Member => "member",
        }
    }

    /// The history `f` of this kind's start event.
    pub fn start_f(self) -> String {
        format!("{}-start", self.name())
    }

    /// The history `f` of this kind's stop event.
    pub fn stop_f(self) -> String {
        format!("{}-stop", self.name())
    }
}

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
                let k = FaultKind::ALL
                    .into_iter()
                    .chain([FaultKind::Member])
                    .find(|k| k.name() == name)
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
