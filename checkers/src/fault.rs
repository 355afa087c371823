//! The fault vocabulary: what a fault is, as data, the way the history records it.
//!
//! A nemesis event in `history.jsonl` carries a serialized [`Fault`] as its `value` and
//! `<kind>-start` / `<kind>-stop` / `<kind>-failed` as its `f` ([`FaultEdge`]):
//!
//! ```text
//! {"process":"nemesis","type":"info","f":"partition-start",
//!  "value":{"type":"partition","shape":"halves","grudge":{"n1":["n3"],"n3":["n1"]}}}
//! {"process":"nemesis","type":"info","f":"kill-start","value":{"type":"kill","target":{"nodes":["n1"]}}}
//! ```
//!
//! These types belong to the history contract, so they live here, with the history: the
//! checkers read them to say which fault was active when an anomaly happened and who was cut
//! off from whom. The `nemesis` crate re-exports them and keeps what is its own business: the
//! seeded schedule and drawing random grudges. Injecting a fault is the harness's business.
//! Targets that depend on the live cluster (the current leader) stay symbolic
//! ([`PartitionShape::IsolateLeader`], [`Target::Leader`]) until [`Fault::resolve`].

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A node id (`n1`, `n2`, ...).
pub type NodeId = String;

/// Node -> the nodes whose traffic it drops. Every standard shape is symmetric.
pub type Grudge = BTreeMap<NodeId, BTreeSet<NodeId>>;

/// Which nodes a kill / pause / clock / packet fault hits.
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

/// How a partition is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionShape {
    /// A random minority vs the rest.
    Halves,
    /// One random node isolated.
    One,
    /// Majorities ring: each node sees itself and its ring neighbours up to a majority.
    Ring,
    /// Two halves plus a bridge node connected to both.
    Bridge,
    /// The current leader isolated (resolved by the injector). Recorded under its
    /// command-line name, `leader` (one name everywhere); histories written before read too.
    #[serde(rename = "leader", alias = "isolate-leader")]
    IsolateLeader,
}

impl PartitionShape {
    /// Every shape, in `--partition-shapes all` order.
    pub const ALL: [PartitionShape; 5] = [
        PartitionShape::Halves,
        PartitionShape::One,
        PartitionShape::Ring,
        PartitionShape::Bridge,
        PartitionShape::IsolateLeader,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            PartitionShape::Halves => "halves",
            PartitionShape::One => "one",
            PartitionShape::Ring => "ring",
            PartitionShape::Bridge => "bridge",
            PartitionShape::IsolateLeader => "leader",
        }
    }
}

/// A name that is not a partition shape (see [`PartitionShape::name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown partition shape {0:?} (expected halves, one, ring, bridge, leader, or all)")]
pub struct UnknownShape(pub String);

impl std::str::FromStr for PartitionShape {
    type Err = UnknownShape;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PartitionShape::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownShape(s.to_string()))
    }
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
                grudge: isolate(nodes, &who),
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

    /// Every node the fault touches: the targets, or every node named in a partition's grudge.
    pub fn touched_nodes(&self) -> Vec<NodeId> {
        match self {
            Fault::Partition { grudge, .. } => {
                let mut all: BTreeSet<&NodeId> = grudge.keys().collect();
                all.extend(grudge.values().flatten());
                all.into_iter().cloned().collect()
            }
            Fault::Member { added, removed, .. } => [added.clone(), removed.clone()].concat(),
            other => other.nodes().to_vec(),
        }
    }

    /// A short description for people: `partition n1 | n2 n3`, `kill n2`, `clock n1 −3 s`.
    pub fn describe(&self) -> String {
        let who = |t: &Target| match t {
            Target::Nodes(n) => n.join(" "),
            Target::Leader => "the leader".to_string(),
        };
        match self {
            Fault::Partition { shape, grudge } => {
                let sides = sides(grudge);
                if sides.len() >= 2 {
                    let text: Vec<String> = sides.iter().map(|s| s.join(" ")).collect();
                    format!("partition {}", text.join(" | "))
                } else {
                    format!("partition ({})", shape.name())
                }
            }
            Fault::Kill { target } => format!("kill {}", who(target)),
            Fault::Pause { target } => format!("pause {}", who(target)),
            Fault::Clock { target, op } => match op {
                ClockOp::Bump { delta_ms } => {
                    format!("clock {} {}", who(target), signed_ms(*delta_ms))
                }
                ClockOp::Strobe {
                    delta_ms,
                    period_ms,
                } => format!(
                    "clock {} strobe {} every {period_ms} ms",
                    who(target),
                    signed_ms(*delta_ms)
                ),
            },
            Fault::Packet {
                target,
                delay_ms,
                loss,
            } => {
                let loss = if *loss > 0.0 {
                    format!(", {:.0}% loss", loss * 100.0)
                } else {
                    String::new()
                };
                format!("packet {} +{delay_ms} ms{loss}", who(target))
            }
            Fault::Member {
                grow,
                target,
                added,
                removed,
            } => match (added.is_empty(), removed.is_empty()) {
                (false, _) => format!("member +{}", added.join(" +")),
                (true, false) => format!("member −{}", removed.join(" −")),
                _ if *grow => "member (add a fresh node)".to_string(),
                _ => format!("member (remove {})", who(target)),
            },
        }
    }
}

/// A clock offset for people: `+250 ms`, `−3 s`.
fn signed_ms(ms: i64) -> String {
    let sign = if ms < 0 { "−" } else { "+" };
    let a = ms.unsigned_abs();
    if a >= 1000 && a.is_multiple_of(100) {
        format!("{sign}{} s", a as f64 / 1000.0)
    } else {
        format!("{sign}{a} ms")
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

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .chain([FaultKind::Member])
            .find(|k| k.name() == name)
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

/// What a nemesis event's `f` says: which kind of fault, and whether it started, stopped or
/// failed to start. Kinds are free text, so histories from other tools (Jepsen's
/// `start-partition`) keep their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultEdge<'a> {
    /// `partition`, `kill`, ... (the `f` without its suffix or prefix).
    pub kind: &'a str,
    /// Which edge.
    pub edge: Edge,
}

/// The three things a nemesis event can say about a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// `<kind>-start`: the fault is now active.
    Start,
    /// `<kind>-stop`: the fault was undone.
    Stop,
    /// `<kind>-failed`: applying it failed; it never became active.
    Failed,
}

impl<'a> FaultEdge<'a> {
    /// Parses `partition-start`, `kill-stop`, `clock-failed`, and Jepsen's `start-partition` /
    /// `stop-partition`; `None` for anything else (`cluster-status`, `heal-failed`, ...).
    pub fn parse(f: &'a str) -> Option<FaultEdge<'a>> {
        for (suffix, edge) in [
            ("-start", Edge::Start),
            ("-stop", Edge::Stop),
            ("-failed", Edge::Failed),
        ] {
            if let Some(kind) = f.strip_suffix(suffix) {
                if kind == "heal" {
                    return None;
                }
                return Some(FaultEdge { kind, edge });
            }
        }
        for (prefix, edge) in [("start-", Edge::Start), ("stop-", Edge::Stop)] {
            if let Some(kind) = f.strip_prefix(prefix) {
                return Some(FaultEdge { kind, edge });
            }
        }
        None
    }
}

/// A grudge isolating `node` from every other node, both directions.
pub fn isolate(nodes: &[NodeId], node: &str) -> Grudge {
    let others: Vec<NodeId> = nodes.iter().filter(|n| *n != node).cloned().collect();
    complete_cut(&[node.to_string()], &others)
}

/// A grudge cutting every link between `a` and `b`, both directions.
pub fn complete_cut(a: &[NodeId], b: &[NodeId]) -> Grudge {
    let mut g = Grudge::new();
    for x in a {
        for y in b {
            g.entry(x.clone()).or_default().insert(y.clone());
            g.entry(y.clone()).or_default().insert(x.clone());
        }
    }
    g
}

/// The directed links (src, dst) a grudge cuts: `dst` drops traffic from `src`.
pub fn cut_links(g: &Grudge) -> Vec<(NodeId, NodeId)> {
    g.iter()
        .flat_map(|(dst, srcs)| srcs.iter().map(move |src| (src.clone(), dst.clone())))
        .collect()
}

/// Can `a` and `b` exchange messages under `g` (neither drops the other's traffic)?
pub fn connected(g: &Grudge, a: &str, b: &str) -> bool {
    let drops = |x: &str, y: &str| g.get(x).is_some_and(|s| s.contains(y));
    a == b || !(drops(a, b) || drops(b, a))
}

/// The sides of a partition: groups of nodes that can all talk to each other, largest first,
/// for the grudge's nodes. A bridge node that sees both halves is reported with the first
/// side it fully sees. Used to print `n1 n2 | n3` and to colour the cluster-state strip.
pub fn sides(g: &Grudge) -> Vec<Vec<NodeId>> {
    let mut nodes: BTreeSet<&NodeId> = g.keys().collect();
    nodes.extend(g.values().flatten());
    let mut out: Vec<Vec<NodeId>> = Vec::new();
    for n in nodes {
        match out
            .iter_mut()
            .find(|side| side.iter().all(|m| connected(g, m, n)))
        {
            Some(side) => side.push(n.clone()),
            None => out.push(vec![n.clone()]),
        }
    }
    out.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_the_history_contract() {
        let f: Fault =
            serde_json::from_value(json!({"type":"kill","target":{"nodes":["n1"]}})).unwrap();
        assert_eq!(f.nodes(), ["n1".to_string()]);
        let c = Fault::Clock {
            target: Target::Leader,
            op: ClockOp::Bump { delta_ms: -3000 },
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"type":"clock","target":"leader","op":{"bump":{"delta_ms":-3000}}})
        );
        let p = Fault::Partition {
            shape: PartitionShape::Halves,
            grudge: complete_cut(&["n1".into()], &["n2".into(), "n3".into()]),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["shape"], "halves");
        assert_eq!(v["grudge"]["n1"], json!(["n2", "n3"]));
        assert_eq!(serde_json::from_value::<Fault>(v).unwrap(), p);
        assert_eq!(p.describe(), "partition n2 n3 | n1");
        assert_eq!(c.describe(), "clock the leader −3 s");
    }

    /// A shape is written under the name the user typed (`--partition-shapes leader`), and
    /// histories recorded under the old name still read.
    #[test]
    fn leader_shape_has_one_name() {
        for shape in PartitionShape::ALL {
            assert_eq!(
                serde_json::to_value(shape).unwrap(),
                json!(shape.name()),
                "{shape:?}"
            );
            assert_eq!(shape.name().parse::<PartitionShape>().unwrap(), shape);
        }
        let old: PartitionShape = serde_json::from_value(json!("isolate-leader")).unwrap();
        assert_eq!(old, PartitionShape::IsolateLeader);
    }

    #[test]
    fn edges() {
        let e = FaultEdge::parse("partition-start").unwrap();
        assert_eq!((e.kind, e.edge), ("partition", Edge::Start));
        assert_eq!(FaultEdge::parse("kill-failed").unwrap().edge, Edge::Failed);
        assert_eq!(FaultEdge::parse("stop-partition").unwrap().edge, Edge::Stop);
        assert!(FaultEdge::parse("cluster-status").is_none());
        assert!(FaultEdge::parse("heal-failed").is_none());
    }

    #[test]
    fn sides_of_a_bridge() {
        let nodes: Vec<NodeId> = ["n1", "n2", "n3", "n4", "n5"].map(String::from).to_vec();
        let g = complete_cut(&nodes[1..3], &nodes[3..5]);
        let s = sides(&g);
        assert_eq!(s, vec![vec!["n2", "n3"], vec!["n4", "n5"]]);
        assert!(connected(&g, "n2", "n3") && !connected(&g, "n2", "n4"));
        assert_eq!(isolate(&nodes, "n1")["n1"].len(), 4);
    }
}
