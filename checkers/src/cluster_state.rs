//! What the cluster looked like over time: the faults applied and each node's condition.
//!
//! Built from the history's nemesis events alone, so it works for every history that has
//! them and degrades to nothing for those that do not (imports, old runs):
//! - fault edges (`partition-start`, `kill-stop`, `clock-failed`, ...) whose values are
//!   serialized [`Fault`]s give [`FaultRecord`]s and each node's liveness (up, paused,
//!   killed), partition side, clock offset and link delay;
//! - `cluster-status` info events, which the harness records whenever what the nodes report
//!   changes, give each node's role, term and known leader (`null` = it did not answer):
//!
//! ```text
//! {"process":"nemesis","type":"info","f":"cluster-status","value":{"nodes":{
//!   "n1":{"role":"leader","term":3,"leader":"n1"},"n2":{"role":"follower","term":3,"leader":"n1"},"n3":null}}}
//! ```
//!
//! From both: the leader(s) over time and the periods when no quorum could form (no majority
//! of running nodes that can all reach each other). The report draws this as the
//! cluster-state strip; the explanation of an anomaly names the fault active at that moment.

use crate::fault::{connected, Edge, Fault, FaultEdge, Grudge, NodeId};
use crate::history::{Event, Process};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The `f` of the nemesis info events that carry a [`ClusterStatus`].
pub const CLUSTER_STATUS_F: &str = "cluster-status";

/// A node's role as it reports it (kvnode's `/status`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Accepts client writes.
    Leader,
    /// Follows a leader.
    Follower,
    /// Running an election.
    Candidate,
    /// Running a pre-vote.
    Precandidate,
    /// Any other word a system reports, kept as written.
    #[serde(untagged)]
    Other(String),
}

impl Role {
    /// The role a node reports in `word` (any word a system uses is kept).
    pub fn from_word(word: &str) -> Role {
        match word {
            "leader" => Role::Leader,
            "follower" => Role::Follower,
            "candidate" => Role::Candidate,
            "precandidate" => Role::Precandidate,
            other => Role::Other(other.to_string()),
        }
    }

    /// The word as reported.
    pub fn name(&self) -> &str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Precandidate => "precandidate",
            Role::Other(s) => s,
        }
    }
}

/// What one node reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Its role.
    pub role: Role,
    /// Its term (ballot round).
    #[serde(default)]
    pub term: u64,
    /// The leader it knows, if any.
    #[serde(default)]
    pub leader: Option<NodeId>,
}

/// The value of a `cluster-status` event: every polled node, `None` when it did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// Node -> what it reported.
    pub nodes: BTreeMap<NodeId, Option<NodeStatus>>,
}

/// A fault's value as recorded: the typed [`Fault`], or whatever another tool wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FaultValue {
    /// A faultline fault.
    Fault(Fault),
    /// A value from elsewhere (a Jepsen nemesis, an old history), kept as written.
    Other(serde_json::Value),
}

impl FaultValue {
    /// The typed fault, when it is one.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            FaultValue::Fault(f) => Some(f),
            FaultValue::Other(_) => None,
        }
    }

    /// A short description for people.
    pub fn describe(&self, kind: &str) -> String {
        match self {
            FaultValue::Fault(f) => f.describe(),
            FaultValue::Other(serde_json::Value::Null) => kind.to_string(),
            FaultValue::Other(v) => format!("{kind} {v}"),
        }
    }
}

impl Default for FaultValue {
    fn default() -> Self {
        FaultValue::Other(serde_json::Value::Null)
    }
}

/// One fault the nemesis applied: from its `<kind>-start` event to its `<kind>-stop` event,
/// or one it failed to apply (`<kind>-failed`, never active).
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
    #[serde(default)]
    pub value: FaultValue,
    /// The nodes it hit (targets, or every node of a partition's grudge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeId>,
    /// Set when applying it failed (the error): such a fault was never active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl FaultRecord {
    /// Was it active at `t` (started at or before, not yet stopped)?
    pub fn active_at(&self, t: u64) -> bool {
        self.failed.is_none() && self.start <= t && self.stop.is_none_or(|s| t < s)
    }

    /// A short description for people (`partition n1 n2 | n3`, `kill n2`).
    pub fn describe(&self) -> String {
        self.value.describe(&self.kind)
    }
}

/// Whether a node's process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// Running.
    Up,
    /// Stopped with SIGSTOP.
    Paused,
    /// Killed (until restarted).
    Killed,
    /// Not a member: not added yet by a `member` fault, or removed by one.
    Absent,
}

/// One node's condition over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpan {
    /// From, ns.
    pub start: u64,
    /// To, ns (exclusive).
    pub end: u64,
    /// Running, paused or killed.
    pub liveness: Liveness,
    /// The nodes it cannot exchange messages with (a partition), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut_off_from: Vec<NodeId>,
    /// Wall-clock offset (ms), 0 when not skewed; for a strobe, the offset it flips to.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub clock_ms: i64,
    /// Added one-way delay on its links (ms).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub delay_ms: u64,
    /// What it reported at the last poll, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
    /// Whether it answered the last poll; `None` when no poll was recorded yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<bool>,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// One node's row of the strip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    /// The node.
    pub node: NodeId,
    /// Consecutive spans covering the whole history.
    pub spans: Vec<NodeSpan>,
}

/// An interval, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// From.
    pub start: u64,
    /// To (exclusive).
    pub end: u64,
}

/// Who claimed to lead over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderSpan {
    /// From, ns.
    pub start: u64,
    /// To, ns.
    pub end: u64,
    /// Every node that reported itself leader, with its term, highest term first. Two entries
    /// mean a deposed leader that did not know it yet.
    pub leaders: Vec<(NodeId, u64)>,
}

/// The cluster over time; the `cluster` section of `results.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterTimeline {
    /// The nodes, in natural order (`n2` before `n10`).
    pub nodes: Vec<NodeId>,
    /// One row per node.
    pub rows: Vec<NodeRow>,
    /// Leaders over time, from `cluster-status` events (empty without them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaders: Vec<LeaderSpan>,
    /// Periods when no majority of running nodes could all reach each other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_quorum: Vec<Span>,
    /// Periods when status was recorded and no node that answered claimed to lead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_leader: Vec<Span>,
    /// How many `cluster-status` events the history had (0 = roles and leaders unknown).
    #[serde(default)]
    pub status_events: u64,
}

impl ClusterTimeline {
    /// The node's span at `t`, if the node is known.
    pub fn at(&self, node: &str, t: u64) -> Option<&NodeSpan> {
        let row = self.rows.iter().find(|r| r.node == node)?;
        let i = row.spans.partition_point(|s| s.start <= t);
        row.spans.get(i.checked_sub(1)?)
    }

    /// The leader(s) claimed at `t`, highest term first.
    pub fn leaders_at(&self, t: u64) -> &[(NodeId, u64)] {
        let i = self.leaders.partition_point(|s| s.start <= t);
        match i.checked_sub(1).map(|i| &self.leaders[i]) {
            Some(s) if t < s.end => &s.leaders,
            _ => &[],
        }
    }
}

/// Orders `n2` before `n10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (head.to_string(), tail.parse::<u64>().ok())
    };
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}

/// The faults of a history and the cluster timeline, in one pass over its nemesis events.
///
/// `extra_nodes` are node names seen elsewhere (the `node` of client ops), so a node that no
/// fault touched still gets its row. `end` is the time of the history's last event.
pub fn build(
    events: &[Event],
    extra_nodes: &BTreeSet<NodeId>,
    end: u64,
) -> (Vec<FaultRecord>, ClusterTimeline) {
    let mut faults: Vec<FaultRecord> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut statuses: Vec<(u64, ClusterStatus)> = Vec::new();
    let mut nodes: BTreeSet<NodeId> = extra_nodes.clone();
    for ev in events.iter().filter(|e| e.process == Process::Nemesis) {
        if ev.f == CLUSTER_STATUS_F {
            if let Ok(s) = ClusterStatus::deserialize(&ev.value) {
                nodes.extend(s.nodes.keys().cloned());
                statuses.push((ev.time, s));
            }
            continue;
        }
        let Some(edge) = FaultEdge::parse(&ev.f) else {
            continue;
        };
        let value = FaultValue::deserialize(&ev.value).unwrap_or_default();
        let touched = value.fault().map(Fault::touched_nodes).unwrap_or_default();
        nodes.extend(touched.iter().cloned());
        match edge.edge {
            Edge::Start => {
                open.push(faults.len());
                faults.push(FaultRecord {
                    kind: edge.kind.to_string(),
                    start: ev.time,
                    stop: None,
                    value,
                    nodes: touched,
                    failed: None,
                });
            }
            Edge::Stop => {
                // A stop closes the oldest open fault of its kind.
                if let Some(pos) = open.iter().position(|&i| faults[i].kind == edge.kind) {
                    let i = open.remove(pos);
                    faults[i].stop = Some(ev.time);
                }
            }
            Edge::Failed => faults.push(FaultRecord {
                kind: edge.kind.to_string(),
                start: ev.time,
                stop: Some(ev.time),
                value,
                nodes: touched,
                failed: Some(ev.error.clone().unwrap_or_else(|| "failed".into())),
            }),
        }
    }
    let mut nodes: Vec<NodeId> = nodes.into_iter().collect();
    nodes.sort_by(|a, b| natural_cmp(a, b));
    let timeline = timeline(&faults, &statuses, nodes, end);
    (faults, timeline)
}

/// The state of every node at one moment.
#[derive(Clone, PartialEq)]
struct Snapshot {
    liveness: Vec<Liveness>,
    cut: Vec<Vec<NodeId>>,
    clock: Vec<i64>,
    delay: Vec<u64>,
    reported: Vec<Option<Option<NodeStatus>>>,
}

fn timeline(
    faults: &[FaultRecord],
    statuses: &[(u64, ClusterStatus)],
    nodes: Vec<NodeId>,
    end: u64,
) -> ClusterTimeline {
    let n = nodes.len();
    let idx = |node: &str| nodes.iter().position(|m| m == node);
    // Every moment something changes.
    let mut times: BTreeSet<u64> = BTreeSet::from([0]);
    for f in faults.iter().filter(|f| f.failed.is_none()) {
        times.insert(f.start);
        if let Some(s) = f.stop {
            times.insert(s);
        }
    }
    times.extend(statuses.iter().map(|(t, _)| *t));
    let mut rows: Vec<NodeRow> = nodes
        .iter()
        .map(|node| NodeRow {
            node: node.clone(),
            spans: Vec::new(),
        })
        .collect();
    let mut leaders: Vec<LeaderSpan> = Vec::new();
    let mut without_quorum: Vec<Span> = Vec::new();
    let mut without_leader: Vec<Span> = Vec::new();
    let mut reported: Vec<Option<Option<NodeStatus>>> = vec![None; n];
    let mut next_status = 0;
    let times: Vec<u64> = times.into_iter().filter(|&t| t <= end).collect();
    for (w, &t) in times.iter().enumerate() {
        let until = times.get(w + 1).copied().unwrap_or(end).max(t);
        while next_status < statuses.len() && statuses[next_status].0 <= t {
            for (node, s) in &statuses[next_status].1.nodes {
                if let Some(i) = idx(node) {
                    reported[i] = Some(s.clone());
                }
            }
            next_status += 1;
        }
        let mut snap = Snapshot {
            liveness: vec![Liveness::Up; n],
            cut: vec![Vec::new(); n],
            clock: vec![0; n],
            delay: vec![0; n],
            reported: reported.clone(),
        };
        // Membership changes stay made: every change begun by `t` counts, active or not. A
        // node a change adds was no member before it.
        for f in faults.iter().filter(|f| f.failed.is_none()) {
            if let Some(Fault::Member { added, removed, .. }) = f.value.fault() {
                let (now, before) = if f.start <= t {
                    (removed, &Vec::new())
                } else {
                    (&Vec::new(), added)
                };
                for i in now.iter().chain(before).filter_map(|m| idx(m)) {
                    snap.liveness[i] = Liveness::Absent;
                }
            }
        }
        let mut grudge = Grudge::new();
        for f in faults.iter().filter(|f| f.active_at(t)) {
            let Some(fault) = f.value.fault() else {
                continue;
            };
            match fault {
                Fault::Partition { grudge: g, .. } => {
                    for (a, bs) in g {
                        grudge
                            .entry(a.clone())
                            .or_default()
                            .extend(bs.iter().cloned());
                    }
                }
                Fault::Kill { .. } | Fault::Pause { .. } => {
                    let l = if matches!(fault, Fault::Kill { .. }) {
                        Liveness::Killed
                    } else {
                        Liveness::Paused
                    };
                    for i in fault.nodes().iter().filter_map(|m| idx(m)) {
                        if snap.liveness[i] == Liveness::Up {
                            snap.liveness[i] = l;
                        }
                    }
                }
                Fault::Clock { op, .. } => {
                    let delta = match op {
                        crate::fault::ClockOp::Bump { delta_ms } => *delta_ms,
                        crate::fault::ClockOp::Strobe { delta_ms, .. } => *delta_ms,
                    };
                    for i in fault.nodes().iter().filter_map(|m| idx(m)) {
                        snap.clock[i] += delta;
                    }
                }
                Fault::Packet { delay_ms, .. } => {
                    for i in fault.nodes().iter().filter_map(|m| idx(m)) {
                        snap.delay[i] += delay_ms;
                    }
                }
                Fault::Member { .. } => {} // above
            }
        }
        for (i, a) in nodes.iter().enumerate() {
            snap.cut[i] = nodes
                .iter()
                .filter(|b| !connected(&grudge, a, b))
                .cloned()
                .collect();
        }
        if !has_quorum(&nodes, &snap.liveness, &grudge) {
            push_span(&mut without_quorum, t, until);
        }
        if !statuses.is_empty() && statuses[0].0 <= t {
            let mut claims: Vec<(NodeId, u64)> = nodes
                .iter()
                .zip(&snap.reported)
                .filter_map(|(node, r)| match r {
                    Some(Some(s)) if s.role == Role::Leader => Some((node.clone(), s.term)),
                    _ => None,
                })
                .collect();
            claims.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| natural_cmp(&a.0, &b.0)));
            if claims.is_empty() {
                push_span(&mut without_leader, t, until);
            }
            match leaders.last_mut() {
                Some(l) if l.leaders == claims && l.end == t => l.end = until,
                _ if claims.is_empty() => {}
                _ => leaders.push(LeaderSpan {
                    start: t,
                    end: until,
                    leaders: claims,
                }),
            }
        }
        for (i, row) in rows.iter_mut().enumerate() {
            let span = NodeSpan {
                start: t,
                end: until,
                liveness: snap.liveness[i],
                cut_off_from: snap.cut[i].clone(),
                clock_ms: snap.clock[i],
                delay_ms: snap.delay[i],
                status: snap.reported[i].clone().flatten(),
                answered: snap.reported[i].as_ref().map(Option::is_some),
            };
            match row.spans.last_mut() {
                Some(last) if same_state(last, &span) && last.end == t => last.end = until,
                _ => row.spans.push(span),
            }
        }
    }
    ClusterTimeline {
        nodes,
        rows,
        leaders,
        without_quorum,
        without_leader,
        status_events: statuses.len() as u64,
    }
}

fn same_state(a: &NodeSpan, b: &NodeSpan) -> bool {
    a.liveness == b.liveness
        && a.cut_off_from == b.cut_off_from
        && a.clock_ms == b.clock_ms
        && a.delay_ms == b.delay_ms
        && a.status == b.status
        && a.answered == b.answered
}

fn push_span(spans: &mut Vec<Span>, start: u64, end: u64) {
    match spans.last_mut() {
        Some(s) if s.end == start => s.end = end,
        _ => spans.push(Span { start, end }),
    }
}

/// Is there a majority of running nodes that can all reach each other? Exact for up to 16
/// nodes (every subset), greedy beyond.
fn has_quorum(nodes: &[NodeId], liveness: &[Liveness], g: &Grudge) -> bool {
    // A majority of the members (nodes a membership change has not left out).
    let n = liveness.iter().filter(|l| **l != Liveness::Absent).count();
    if n == 0 {
        return true;
    }
    let majority = n / 2 + 1;
    let up: Vec<usize> = (0..nodes.len())
        .filter(|&i| liveness[i] == Liveness::Up)
        .collect();
    if up.len() < majority {
        return false;
    }
    let ok = |a: usize, b: usize| connected(g, &nodes[a], &nodes[b]);
    if up.len() <= 16 {
        let m = up.len();
        return (0u32..1 << m).any(|mask| {
            mask.count_ones() as usize >= majority
                && (0..m).all(|i| {
                    mask & (1 << i) == 0
                        || (i + 1..m).all(|j| mask & (1 << j) == 0 || ok(up[i], up[j]))
                })
        });
    }
    let mut best = 0;
    for &seed in &up {
        let mut clique = vec![seed];
        for &c in &up {
            if c != seed && clique.iter().all(|&m| ok(m, c)) {
                clique.push(c);
            }
        }
        best = best.max(clique.len());
    }
    best >= majority
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nem(i: u64, t_ms: u64, f: &str, value: serde_json::Value) -> Event {
        let mut e = crate::synth::nemesis_event(t_ms * 1_000_000, f, value);
        e.index = i;
        e
    }

    #[test]
    fn partition_kill_and_leaders() {
        let part = json!({"type":"partition","shape":"isolate-leader","grudge":{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}});
        let evs = vec![
            nem(
                0,
                0,
                "cluster-status",
                json!({"nodes":{
                "n1":{"role":"leader","term":3,"leader":"n1"},
                "n2":{"role":"follower","term":3,"leader":"n1"},"n3":null}}),
            ),
            nem(1, 1000, "partition-start", part.clone()),
            nem(
                2,
                1500,
                "cluster-status",
                json!({"nodes":{
                "n1":{"role":"leader","term":3,"leader":"n1"},
                "n2":{"role":"leader","term":4,"leader":"n2"},
                "n3":{"role":"follower","term":4,"leader":"n2"}}}),
            ),
            nem(3, 2000, "partition-stop", part),
            nem(
                4,
                2500,
                "kill-start",
                json!({"type":"kill","target":{"nodes":["n2","n3"]}}),
            ),
            nem(
                5,
                3000,
                "kill-stop",
                json!({"type":"kill","target":{"nodes":["n2","n3"]}}),
            ),
            nem(
                6,
                3100,
                "clock-failed",
                json!({"type":"clock","target":"leader","op":{"bump":{"delta_ms":5}}}),
            ),
        ];
        let (faults, tl) = build(&evs, &BTreeSet::new(), 4_000_000_000);
        assert_eq!(faults.len(), 3);
        assert_eq!(faults[0].nodes, vec!["n1", "n2", "n3"]);
        assert!(faults[2].failed.is_some() && !faults[2].active_at(3_100_000_000));
        assert_eq!(tl.nodes, vec!["n1", "n2", "n3"]);
        let n1 = tl.at("n1", 1_200_000_000).unwrap();
        assert_eq!(n1.cut_off_from, vec!["n2", "n3"]);
        assert_eq!(
            tl.at("n2", 2_600_000_000).unwrap().liveness,
            Liveness::Killed
        );
        assert_eq!(tl.at("n3", 100).unwrap().answered, Some(false));
        // Two nodes claim to lead while n1 is cut off: the new one first.
        assert_eq!(
            tl.leaders_at(1_600_000_000),
            &[("n2".to_string(), 4), ("n1".to_string(), 3)]
        );
        assert_eq!(tl.leaders_at(500_000_000), &[("n1".to_string(), 3)]);
        // n2 and n3 killed: no majority of 3 runs.
        assert_eq!(
            tl.without_quorum,
            vec![Span {
                start: 2_500_000_000,
                end: 3_000_000_000
            }]
        );
        let back: ClusterTimeline =
            serde_json::from_str(&serde_json::to_string(&tl).unwrap()).unwrap();
        assert_eq!(back, tl);
    }

    #[test]
    fn membership_changes_leave_nodes_absent_before_their_add_and_after_their_removal() {
        let add =
            json!({"type":"member","grow":true,"target":"leader","added":["n4"],"removed":[]});
        let del = json!({"type":"member","grow":false,"target":"leader","added":[],"removed":["n1","n2"]});
        let evs = vec![
            nem(0, 1000, "member-start", add.clone()),
            nem(1, 1500, "member-stop", add),
            nem(2, 2000, "member-start", del.clone()),
            nem(3, 2100, "member-stop", del),
            nem(
                4,
                2500,
                "kill-start",
                json!({"type":"kill","target":{"nodes":["n4"]}}),
            ),
        ];
        let nodes: BTreeSet<NodeId> = ["n1", "n2", "n3"].map(String::from).into();
        let (faults, tl) = build(&evs, &nodes, 3_000_000_000);
        assert_eq!(faults[0].value.fault().unwrap().describe(), "member +n4");
        assert_eq!(
            faults[1].value.fault().unwrap().describe(),
            "member −n1 −n2"
        );
        assert_eq!(tl.at("n4", 500_000_000).unwrap().liveness, Liveness::Absent);
        assert_eq!(tl.at("n4", 1_200_000_000).unwrap().liveness, Liveness::Up);
        // The change stays made after its stop.
        assert_eq!(
            tl.at("n1", 2_200_000_000).unwrap().liveness,
            Liveness::Absent
        );
        assert_eq!(tl.at("n3", 2_200_000_000).unwrap().liveness, Liveness::Up);
        // Members then: n3 and n4; with n4 killed, n3 alone is no majority of two.
        assert_eq!(
            tl.without_quorum,
            vec![Span {
                start: 2_500_000_000,
                end: 3_000_000_000
            }]
        );
    }

    #[test]
    fn histories_without_nemesis_events_have_rows_and_no_spans_of_trouble() {
        let nodes: BTreeSet<NodeId> = ["n10", "n2"].map(String::from).into();
        let (faults, tl) = build(&[], &nodes, 10);
        assert!(faults.is_empty());
        assert_eq!(tl.nodes, vec!["n2", "n10"]);
        assert!(tl.without_quorum.is_empty() && tl.leaders.is_empty());
        let other: FaultValue = serde_json::from_value(json!({"n1": ["n2"]})).unwrap();
        assert!(other.fault().is_none());
    }
}
