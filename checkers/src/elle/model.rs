//! Anomaly classes and the consistency models that prohibit them.
//!
//! The table follows Elle's `elle.consistency-model` (itself Adya's "Weak Consistency",
//! Cerone et al., Bailis et al.), restricted to what this checker detects:
//!
//! | model | prohibits |
//! |---|---|
//! | `read-committed` (PL-2) | G0, G1a, G1b, G1c, dirty-update, incompatible-order, duplicate-elements, garbage-read, future-read |
//! | `snapshot-isolation` | the above + internal, G-single, lost-update |
//! | `serializable` (PL-3) | snapshot-isolation's + G2-item |
//! | `strong-session-snapshot-isolation` | snapshot-isolation's + G0/G1c/G-single-process |
//! | `strong-session-serializable` | serializable's + G0/G1c/G-single/G2-item-process |
//! | `strong-snapshot-isolation` | snapshot-isolation's + G0/G1c/G-single-realtime |
//! | `strict-serializable` (PL-SS) | serializable's + G0/G1c/G-single/G2-item-realtime |
//!
//! Why these: every element a read shows must come from a committed append, in one order, at
//! most once (G1a, garbage-read, incompatible-order, duplicate-elements, dirty-update imply
//! G1a; future-read is a degenerate G1c, as in Elle). Read committed forbids cycles of
//! write and read dependencies (G0, G1c) and reads of intermediate states (G1b), but not
//! anti-dependency cycles. Snapshot isolation also forbids a cycle with exactly one
//! anti-dependency (G-single, read skew), lost updates, and a transaction disagreeing with its
//! own writes (internal); it allows write skew (G2-item). Serializability forbids every
//! dependency cycle. The "strong session" models add each process's order, the "strong" and
//! strict models add real-time order, and forbid cycles that need those edges (`-process`,
//! `-realtime`). Elle's G-nonadjacent (SI's ban on cycles whose rw edges are never adjacent)
//! is not searched for, so a snapshot-isolation check can miss such cycles.

use serde::{Deserialize, Serialize};

/// A kind of anomaly this checker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AnomalyClass {
    /// Write cycle: a cycle of ww edges.
    G0,
    /// Aborted read: a committed read shows an element a failed transaction appended.
    G1a,
    /// Intermediate read: a read ends at a transaction's non-final append to that key.
    G1b,
    /// Circular information flow: a cycle of ww and wr edges with at least one wr.
    G1c,
    /// Read skew: a cycle with exactly one rw edge (plus ww/wr).
    #[serde(rename = "G-single")]
    GSingle,
    /// A cycle with two or more rw edges (write skew and kin).
    #[serde(rename = "G2-item")]
    G2Item,
    /// G0 that needs process-order edges.
    #[serde(rename = "G0-process")]
    G0Process,
    /// G1c that needs process-order edges.
    #[serde(rename = "G1c-process")]
    G1cProcess,
    /// G-single that needs process-order edges.
    #[serde(rename = "G-single-process")]
    GSingleProcess,
    /// G2-item that needs process-order edges.
    #[serde(rename = "G2-item-process")]
    G2ItemProcess,
    /// G0 that needs real-time edges.
    #[serde(rename = "G0-realtime")]
    G0Realtime,
    /// G1c that needs real-time edges.
    #[serde(rename = "G1c-realtime")]
    G1cRealtime,
    /// G-single that needs real-time edges (e.g. a stale read).
    #[serde(rename = "G-single-realtime")]
    GSingleRealtime,
    /// G2-item that needs real-time edges.
    #[serde(rename = "G2-item-realtime")]
    G2ItemRealtime,
    /// A transaction's read disagrees with its own earlier reads and writes of that key.
    #[serde(rename = "internal")]
    Internal,
    /// A transaction's read shows an element it only appends later.
    #[serde(rename = "future-read")]
    FutureRead,
    /// A committed append directly follows an aborted one in a key's version order.
    #[serde(rename = "dirty-update")]
    DirtyUpdate,
    /// Two reads of a key that no single order of appends explains (neither is a prefix of
    /// the other).
    #[serde(rename = "incompatible-order")]
    IncompatibleOrder,
    /// A read shows the same element twice.
    #[serde(rename = "duplicate-elements")]
    DuplicateElements,
    /// A read shows an element nobody appended to that key.
    #[serde(rename = "garbage-read")]
    GarbageRead,
    /// Two committed transactions read the same state of a key and both appended to it.
    #[serde(rename = "lost-update")]
    LostUpdate,
}

impl AnomalyClass {
    /// Elle's name (`G-single`, `lost-update`, ...).
    pub fn name(self) -> &'static str {
        use AnomalyClass::*;
        match self {
            G0 => "G0",
            G1a => "G1a",
            G1b => "G1b",
            G1c => "G1c",
            GSingle => "G-single",
            G2Item => "G2-item",
            G0Process => "G0-process",
            G1cProcess => "G1c-process",
            GSingleProcess => "G-single-process",
            G2ItemProcess => "G2-item-process",
            G0Realtime => "G0-realtime",
            G1cRealtime => "G1c-realtime",
            GSingleRealtime => "G-single-realtime",
            G2ItemRealtime => "G2-item-realtime",
            Internal => "internal",
            FutureRead => "future-read",
            DirtyUpdate => "dirty-update",
            IncompatibleOrder => "incompatible-order",
            DuplicateElements => "duplicate-elements",
            GarbageRead => "garbage-read",
            LostUpdate => "lost-update",
        }
    }

    /// True for the classes found as dependency cycles.
    pub fn is_cycle(self) -> bool {
        Cycle::of(self).is_some()
    }

    /// What the class means, in one sentence (for reports).
    pub fn description(self) -> &'static str {
        use AnomalyClass::*;
        match self {
            G0 => "write cycle: transactions overwrote each other's appends in a cycle",
            G1a => "aborted read: a committed transaction saw an append of a failed transaction",
            G1b => "intermediate read: a transaction saw another's state before that one finished writing the key",
            G1c => "circular information flow: transactions saw each other's writes in a cycle",
            GSingle => "read skew: a dependency cycle with exactly one anti-dependency",
            G2Item => "write skew or worse: a dependency cycle with two or more anti-dependencies",
            G0Process | G0Realtime => "a write cycle once process or real-time order is counted",
            G1cProcess | G1cRealtime => "circular information flow once process or real-time order is counted",
            GSingleProcess | GSingleRealtime => "a cycle with one anti-dependency once process or real-time order is counted (e.g. a stale read)",
            G2ItemProcess | G2ItemRealtime => "a cycle with several anti-dependencies once process or real-time order is counted",
            Internal => "a transaction's read disagreed with its own earlier reads and appends",
            FutureRead => "a transaction read an element it appended only later",
            DirtyUpdate => "a committed append was made on top of an aborted one",
            IncompatibleOrder => "two reads of a key disagree about the order of its appends",
            DuplicateElements => "a read shows one appended element more than once",
            GarbageRead => "a read shows an element that nobody appended",
            LostUpdate => "two transactions read the same state of a key and both appended to it",
        }
    }
}

/// The dependency-cycle part of a class: base shape × which extra order it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cycle {
    /// 0 = G0, 1 = G1c, 2 = G-single, 3 = G2-item.
    pub base: u8,
    /// 0 = data only, 1 = process, 2 = realtime.
    pub variant: u8,
}

impl Cycle {
    pub(crate) fn of(c: AnomalyClass) -> Option<Cycle> {
        use AnomalyClass::*;
        let (base, variant) = match c {
            G0 => (0, 0),
            G1c => (1, 0),
            GSingle => (2, 0),
            G2Item => (3, 0),
            G0Process => (0, 1),
            G1cProcess => (1, 1),
            GSingleProcess => (2, 1),
            G2ItemProcess => (3, 1),
            G0Realtime => (0, 2),
            G1cRealtime => (1, 2),
            GSingleRealtime => (2, 2),
            G2ItemRealtime => (3, 2),
            _ => return None,
        };
        Some(Cycle { base, variant })
    }

    pub(crate) fn class(self) -> AnomalyClass {
        use AnomalyClass::*;
        const T: [[AnomalyClass; 4]; 3] = [
            [G0, G1c, GSingle, G2Item],
            [G0Process, G1cProcess, GSingleProcess, G2ItemProcess],
            [G0Realtime, G1cRealtime, GSingleRealtime, G2ItemRealtime],
        ];
        T[self.variant as usize][self.base as usize]
    }

    /// Finding `self` makes searching for `other` in the same component pointless: every G0 is
    /// a G1c and every G-single a G2-item (Adya), and a cycle without process or real-time
    /// edges is trivially one "with" them (Elle's implied-anomalies).
    pub(crate) fn implies(self, other: Cycle) -> bool {
        let base = self.base == other.base
            || (self.base == 0 && other.base == 1)
            || (self.base == 2 && other.base == 3);
        base && (self.variant == other.variant || self.variant == 0)
    }
}

/// A consistency model a history can be checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsistencyModel {
    /// Adya PL-2.
    ReadCommitted,
    /// Adya's PL-SI (generalized snapshot isolation), minus G-nonadjacent.
    SnapshotIsolation,
    /// Conflict serializability (Adya PL-3).
    Serializable,
    /// Snapshot isolation plus each process's order.
    StrongSessionSnapshotIsolation,
    /// Serializability plus each process's order.
    StrongSessionSerializable,
    /// Snapshot isolation plus real-time order.
    StrongSnapshotIsolation,
    /// Serializability plus real-time order (Adya PL-SS).
    StrictSerializable,
}

impl ConsistencyModel {
    /// Every model, weakest first.
    pub const ALL: [ConsistencyModel; 7] = [
        ConsistencyModel::ReadCommitted,
        ConsistencyModel::SnapshotIsolation,
        ConsistencyModel::Serializable,
        ConsistencyModel::StrongSessionSnapshotIsolation,
        ConsistencyModel::StrongSessionSerializable,
        ConsistencyModel::StrongSnapshotIsolation,
        ConsistencyModel::StrictSerializable,
    ];

    /// The kebab-case name (`strict-serializable`, ...).
    pub fn name(self) -> &'static str {
        use ConsistencyModel::*;
        match self {
            ReadCommitted => "read-committed",
            SnapshotIsolation => "snapshot-isolation",
            Serializable => "serializable",
            StrongSessionSnapshotIsolation => "strong-session-snapshot-isolation",
            StrongSessionSerializable => "strong-session-serializable",
            StrongSnapshotIsolation => "strong-snapshot-isolation",
            StrictSerializable => "strict-serializable",
        }
    }

    /// Which extra order the model adds: 0 none, 1 process, 2 real time.
    pub(crate) fn variant(self) -> u8 {
        use ConsistencyModel::*;
        match self {
            ReadCommitted | SnapshotIsolation | Serializable => 0,
            StrongSessionSnapshotIsolation | StrongSessionSerializable => 1,
            StrongSnapshotIsolation | StrictSerializable => 2,
        }
    }

    fn serializable_family(self) -> bool {
        use ConsistencyModel::*;
        matches!(
            self,
            Serializable | StrongSessionSerializable | StrictSerializable
        )
    }

    /// True when a history showing `class` cannot satisfy this model (see the module table).
    pub fn prohibits(self, class: AnomalyClass) -> bool {
        use AnomalyClass::*;
        if let Some(c) = Cycle::of(class) {
            let max_base = match self {
                ConsistencyModel::ReadCommitted => 1,
                m if m.serializable_family() => 3,
                _ => 2,
            };
            return c.base <= max_base && (c.variant == 0 || c.variant == self.variant());
        }
        match class {
            G1a | G1b | DirtyUpdate | IncompatibleOrder | DuplicateElements | GarbageRead
            | FutureRead => true,
            Internal | LostUpdate => self != ConsistencyModel::ReadCommitted,
            _ => false,
        }
    }

    /// The cycle classes this model prohibits, in the order they are searched: most severe
    /// first (Elle's severity order), data-only classes before those needing extra order.
    pub(crate) fn cycle_search_order(self) -> Vec<Cycle> {
        let mut out = Vec::new();
        for variant in [0, self.variant()] {
            for base in 0..4 {
                let c = Cycle { base, variant };
                if self.prohibits(c.class()) && !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        out
    }
}

impl std::fmt::Display for ConsistencyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ConsistencyModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ConsistencyModel::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ConsistencyModel::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown consistency model {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}
