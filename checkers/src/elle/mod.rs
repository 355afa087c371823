//! Transactional isolation checking from list-append histories, after Elle (Kingsbury &
//! Alvaro, "Elle: Inferring Isolation Anomalies from Experimental Observations", VLDB 2020;
//! the Clojure `jepsen-io/elle` is the reference for semantics). [`check`] takes parsed
//! [`Txn`]s and returns one typed [`ElleResult`].
//!
//! The key idea: when transactions append unique values to lists and reads return whole lists,
//! every read reveals the order of all appends before it. So the version order of each key is
//! recoverable (its longest read), and with it every write-write (ww), write-read (wr) and
//! read-write anti-dependency (rw) edge between transactions (Adya's direct serialization
//! graph). A cycle in that graph is an isolation anomaly, named by the edges it needs.
//!
//! # Steps
//!
//! 1. Index: intern keys, map every appended element to its writer, take each key's longest
//!    committed read as its version order, index readers by the state they saw
//!    ([`list_append`]).
//! 2. Anomalies that need no cycle: G1a (read of an aborted append), G1b (read of an
//!    intermediate state), garbage and duplicate elements, incompatible orders, internal and
//!    future reads, dirty and lost updates.
//! 3. Graph: ww / wr / rw edges, plus each process's order (strong-session models) or
//!    real-time order (strong and strict models). Real-time edges go only to the next frontier
//!    of completions (Elle's construction), O(n · concurrency) instead of O(n²).
//! 4. Cycles: Tarjan SCCs, then inside each component one search per class the model
//!    prohibits, most severe first, skipping classes a found one implies: G0 (ww only), G1c
//!    (ww + wr, at least one wr), G-single (exactly one rw), G2-item (two or more rw), and
//!    their `-process` / `-realtime` variants, which need those edges (`cycles.rs`). Searches
//!    are exact and near-linear: G-single by reachability over the condensation of the non-rw
//!    edges (bit sets, 64 targets at a time); the others by one breadth-first search once
//!    every less severe class is known absent (then any cycle has the class sought), else by
//!    a BFS over (vertex, rw count, needs met) states from the rarest edge's sources.
//!
//! Large groups of anti-dependencies (many readers of one state, many appends no read shows:
//! a store that lost writes) go through a hub vertex instead of readers × writers edges.
//!
//! Each anomaly names its transactions (`T<history index>`, process, line) and explains
//! itself in sentences a person can check against the history, one per edge of a cycle.
//! Which models prohibit what: see [`model`]. A time budget bounds the cycle search; when it
//! runs out the verdict is `unknown` unless something prohibited was already found.
//!
//! Histories of `w` and `r` micro-ops (rw-register) go through [`rw_register`] instead:
//! reads name their writers, but version orders are only partly inferable (initial state,
//! optionally writes-follow-reads), so it finds fewer anomalies than list-append, never false
//! ones. A history mixing appends and writes is `unknown`.

mod cycles;
mod findings;
mod graph;
mod keys;
pub mod list_append;
pub mod model;
pub mod rw_register;
pub mod synth;
#[cfg(test)]
mod tests;

pub use model::{AnomalyClass, ConsistencyModel};

use crate::history::{History, HistoryError};
use crate::txn::{self, Mop, ReadValue, Txn, TxnStatus, Validity};
use findings::Findings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to check and with what budget.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The model the history must satisfy.
    pub model: ConsistencyModel,
    /// Wall-clock budget for the cycle search; `None` = unlimited.
    pub timeout: Option<Duration>,
    /// Examples kept per anomaly class (all are counted).
    pub max_examples: usize,
    /// rw-register only: assume a transaction that reads a key and then writes it installed
    /// its write after the version it read (Elle's `:wfr-keys?`), which yields ww edges.
    pub wfr_keys: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            model: ConsistencyModel::StrictSerializable,
            timeout: Some(Duration::from_secs(60)),
            max_examples: 16,
            wfr_keys: false,
        }
    }
}

/// A transaction as an anomaly names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnRef {
    /// `T<index>`: the history index of its completion (or invoke, if it never completed).
    pub name: String,
    /// Position in the parsed transaction list.
    pub id: usize,
    /// History index of the completion (or the invoke).
    pub index: u64,
    /// History index of the invoke.
    pub invoke_index: u64,
    /// The process that ran it.
    pub process: u64,
    /// Committed, aborted or unknown.
    pub status: TxnStatus,
    /// Source line of the completion (or the invoke).
    pub line: usize,
    /// Invoke time, ns since the test started.
    #[serde(default)]
    pub call: u64,
    /// Completion time, ns; `None` when the outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<u64>,
    /// Its micro-ops (reads filled in when committed).
    pub mops: Vec<Mop>,
}

impl TxnRef {
    pub(crate) fn of(t: &Txn) -> TxnRef {
        TxnRef {
            name: txn_name(t),
            id: t.id,
            index: t.index(),
            invoke_index: t.invoke_index,
            process: t.process,
            status: t.status,
            line: t.line(),
            call: t.call,
            ret: t.ret,
            mops: t.mops.clone(),
        }
    }
}

pub(crate) fn txn_name(t: &Txn) -> String {
    format!("T{}", t.index())
}

/// Why one transaction must precede another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// Write-write: the first appended the element just before the second's.
    Ww,
    /// Write-read: the second read the first's append.
    Wr,
    /// Read-write (anti-dependency): the first read a state the second's append followed.
    Rw,
    /// Same process, one after the other.
    Process,
    /// The first completed before the second was invoked.
    Realtime,
}

impl Relation {
    /// `ww`, `wr`, `rw`, `process`, `realtime`.
    pub fn name(self) -> &'static str {
        match self {
            Relation::Ww => "ww",
            Relation::Wr => "wr",
            Relation::Rw => "rw",
            Relation::Process => "process",
            Relation::Realtime => "realtime",
        }
    }
}

/// One edge of a cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleStep {
    /// Name of the source transaction.
    pub from: String,
    /// Name of the target transaction.
    pub to: String,
    /// Why `from` precedes `to`.
    pub relation: Relation,
    /// The key the data relation is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For a ww, wr or rw step: the micro-op of each transaction that justifies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<StepEvidence>,
    /// The reason in one sentence, naming the values.
    pub explanation: String,
}

/// The two micro-ops a data dependency rests on, exactly as the transactions hold them:
/// ww — `from`'s append (write) and `to`'s append (write) right after it in the key's
/// version order; wr — `from`'s append (write) and `to`'s read showing it last; rw — `from`'s
/// read and `to`'s append (write) of the next version, which that read missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepEvidence {
    /// The source transaction's micro-op.
    pub from: Mop,
    /// The target transaction's micro-op.
    pub to: Mop,
}

/// Why a data edge holds, as a workload's inference explains it.
pub(crate) struct Because {
    /// The key.
    pub key: String,
    /// One sentence naming the values.
    pub text: String,
    /// Position of the justifying micro-op in the source transaction.
    pub from_mop: usize,
    /// Position of the justifying micro-op in the target transaction.
    pub to_mop: usize,
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Its class.
    pub class: AnomalyClass,
    /// The transactions involved; for a cycle, in cycle order.
    pub txns: Vec<TxnRef>,
    /// For a cycle, its edges (`steps[i]` goes from `txns[i]` to the next); else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CycleStep>,
    /// The key, for anomalies about one key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What happened, in sentences naming transactions, keys and values.
    pub explanation: String,
}

/// How many transactions ended how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnCounts {
    /// Committed.
    pub ok: usize,
    /// Aborted.
    pub fail: usize,
    /// Unknown.
    pub info: usize,
}

/// Size of the dependency graph and its cyclic part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphStats {
    /// Transactions that may have committed (ok + info): the vertices.
    pub vertices: usize,
    /// Edges (parallel relations between one pair merged; a large group of anti-dependencies
    /// from the readers of one state goes through one extra vertex, see `graph::Edges::fan`).
    pub edges: usize,
    /// Strongly connected components with a cycle.
    pub cyclic_components: usize,
    /// Transactions in the largest such component.
    pub largest_component: usize,
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElleResult {
    /// `invalid` if an anomaly the model prohibits was found; else `unknown` if the check was
    /// incomplete (see `unknown_reasons`); else `valid`.
    pub verdict: Validity,
    /// The model checked.
    pub model: ConsistencyModel,
    /// The workload recognised: `list-append` or `rw-register`.
    pub workload: String,
    /// Transactions by outcome.
    pub txns: TxnCounts,
    /// The classes found that the model prohibits (they make the verdict `invalid`).
    pub violations: Vec<AnomalyClass>,
    /// How many anomalies of each class were found (cycle classes: one per class and
    /// component, as in Elle).
    pub counts: BTreeMap<AnomalyClass, usize>,
    /// Up to `max_examples` explained anomalies per class.
    pub anomalies: BTreeMap<AnomalyClass, Vec<Anomaly>>,
    /// Why the check could not be completed, when it could not.
    pub unknown_reasons: Vec<String>,
    /// The dependency graph's size.
    pub graph: GraphStats,
    /// Wall time, milliseconds.
    pub elapsed_ms: f64,
    /// The verdict in one or two sentences.
    pub explanation: String,
}

/// Parses a history's `txn` operations ([`txn::parse`]) and checks them.
pub fn check_history(h: &History, opts: &CheckOptions) -> Result<ElleResult, HistoryError> {
    Ok(check(&txn::parse(h)?, opts))
}

/// Checks transactions against `opts.model`. Never panics on any input; input it cannot
/// analyse (duplicate appends, integer reads of lists, rw-register) gives `unknown` with the
/// reason. Transactions are named by their history indices; `id`s need not be dense.
pub fn check(txns: &[Txn], opts: &CheckOptions) -> ElleResult {
    check_with(txns, opts, graph::FAN_LIMIT)
}

/// [`check`] with the hub threshold as a parameter (tests compare hubs with direct edges).
fn check_with(txns: &[Txn], opts: &CheckOptions, fan_limit: usize) -> ElleResult {
    // Everything below indexes transactions by `id`; callers building `Txn`s by hand may not
    // have numbered them densely.
    let renumbered: Vec<Txn>;
    let txns = if txns.iter().enumerate().all(|(i, t)| t.id == i) {
        txns
    } else {
        renumbered = txns
            .iter()
            .enumerate()
            .map(|(i, t)| Txn { id: i, ..t.clone() })
            .collect();
        &renumbered
    };
    let started = Instant::now();
    let deadline = opts.timeout.map(|t| started + t);
    let mut counts = TxnCounts::default();
    for t in txns {
        match t.status {
            TxnStatus::Ok => counts.ok += 1,
            TxnStatus::Fail => counts.fail += 1,
            TxnStatus::Info => counts.info += 1,
        }
    }
    // The workload shows in the micro-ops and in what reads returned: registers are written
    // and read as integers, lists appended to and read as lists.
    let line_of =
        |p: &dyn Fn(&Mop) -> bool| txns.iter().find(|t| t.mops.iter().any(p)).map(Txn::line);
    let register_line = line_of(&|m| {
        matches!(
            m,
            Mop::Write { .. }
                | Mop::Read {
                    value: Some(ReadValue::Int(_)),
                    ..
                }
        )
    });
    let list_line = line_of(&|m| {
        matches!(
            m,
            Mop::Append { .. }
                | Mop::Read {
                    value: Some(ReadValue::List(_)),
                    ..
                }
        )
    });
    let (has_writes, has_appends) = (register_line.is_some(), list_line.is_some());
    let mut f = Findings::new(opts.max_examples);
    let mut unknown = Vec::new();
    let mut graph = GraphStats::default();
    let workload = if has_writes {
        "rw-register"
    } else {
        "list-append"
    };
    if has_writes && has_appends {
        unknown.push(format!(
            "the history mixes list operations (appends, list reads; line {}) and register operations (writes, integer reads; line {}); it is neither list-append nor rw-register",
            list_line.unwrap_or(0),
            register_line.unwrap_or(0)
        ));
    } else if counts.ok == 0 {
        unknown.push("no transaction committed, so there is nothing to check".to_string());
    } else if has_writes {
        let idx = rw_register::index(txns, opts.wfr_keys);
        let ctx = (txns, opts, deadline, fan_limit);
        graph = analyse(idx, ctx, &counts, &mut f, &mut unknown);
    } else {
        let idx = list_append::index(txns);
        let ctx = (txns, opts, deadline, fan_limit);
        graph = analyse(idx, ctx, &counts, &mut f, &mut unknown);
    }
    let violations: Vec<AnomalyClass> = f
        .counts
        .keys()
        .copied()
        .filter(|&c| opts.model.prohibits(c))
        .collect();
    let verdict = Validity::of(!violations.is_empty(), !unknown.is_empty());
    let explanation = summarize(verdict, opts.model, &counts, &f, &violations, &unknown);
    ElleResult {
        verdict,
        model: opts.model,
        workload: workload.to_string(),
        txns: counts,
        violations,
        counts: f.counts,
        anomalies: f.examples,
        unknown_reasons: unknown,
        graph,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        explanation,
    }
}

/// Why a history cannot be analysed as the workload it looks like (the verdict is then
/// `unknown`, with this reason).
#[derive(Debug, Clone)]
pub(crate) struct Unusable(pub String);

/// One workload's inference from its indices: the anomalies that need no cycle, the data
/// edges, and a sentence for any data edge it emitted (list-append and rw-register).
pub(crate) trait Inference {
    /// Counts (and explains) every anomaly found without a cycle search.
    fn non_cycle_anomalies(&self, f: &mut Findings);
    /// Adds the ww / wr / rw edges.
    fn data_edges(&self, out: &mut graph::Edges);
    /// The key, a sentence and the micro-ops saying why `a -> b` carries relation `rel`.
    fn explain(&self, a: u32, b: u32, rel: u8) -> Option<Because>;
}

/// Runs one inference: its own anomalies, then the model's graph and cycle search.
fn analyse(
    idx: Result<impl Inference, Unusable>,
    (txns, opts, deadline, fan_limit): (&[Txn], &CheckOptions, Option<Instant>, usize),
    counts: &TxnCounts,
    f: &mut Findings,
    unknown: &mut Vec<String>,
) -> GraphStats {
    let idx = match idx {
        Ok(idx) => idx,
        Err(Unusable(why)) => {
            unknown.push(why);
            return GraphStats::default();
        }
    };
    idx.non_cycle_anomalies(f);
    // About three data edges per transaction, plus ~concurrency real-time ones.
    let mut edges = graph::Edges::new(txns.len(), 8, fan_limit);
    idx.data_edges(&mut edges);
    match opts.model.variant() {
        1 => graph::process_edges(txns, &mut edges.list),
        2 => graph::realtime_edges(txns, &mut edges.list),
        _ => {}
    }
    let g = graph::Graph::from_edges(edges.vertices as usize, &edges.list);
    drop(edges);
    let explain = |a: u32, b: u32, l: u8| idx.explain(a, b, l);
    let out = cycles::search(&g, txns, opts.model, deadline, &explain, f);
    unknown.extend(out.incomplete);
    GraphStats {
        vertices: counts.ok + counts.info,
        edges: g.edge_count(),
        cyclic_components: out.components,
        largest_component: out.largest,
    }
}

fn summarize(
    verdict: Validity,
    model: ConsistencyModel,
    counts: &TxnCounts,
    f: &Findings,
    violations: &[AnomalyClass],
    unknown: &[String],
) -> String {
    let list = |cs: &mut dyn Iterator<Item = AnomalyClass>| {
        cs.map(|c| format!("{} ×{}", c.name(), f.counts[&c]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let allowed = list(&mut f.counts.keys().copied().filter(|c| !model.prohibits(*c)));
    let also = if allowed.is_empty() {
        String::new()
    } else {
        format!(" Also found, allowed by {model}: {allowed}.")
    };
    let txns = format!(
        "{} committed, {} aborted, {} unknown transactions",
        counts.ok, counts.fail, counts.info
    );
    match verdict {
        Validity::Invalid => format!(
            "Not {model}: {} ({txns}).{also}",
            list(&mut violations.iter().copied())
        ),
        Validity::Unknown => format!(
            "Could not decide {model} ({txns}): {}.{also}",
            unknown.join("; ")
        ),
        Validity::Valid => format!("No anomaly {model} prohibits among {txns}.{also}"),
    }
}

/// A small fast hasher (FxHash's multiply-rotate) for the integer-keyed indices; the
/// standard SipHash dominated profiles of 100k-transaction histories.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl Fx {
    fn add(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64)
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
