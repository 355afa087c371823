//! Linearizability checking: partitions, budgets, verdicts and counterexamples.
//!
//! The algorithm is Lowe's refinement of Wing & Gong ("Testing for linearizability", Lowe,
//! 2017), as in Porcupine's `checker.go`: ops become call and return entries in one list sorted
//! by time (calls before returns at equal times: intervals are closed); a depth-first search
//! linearizes any op whose call precedes the earliest pending return, memoizing every
//! configuration (set of linearized ops as a bitset, model state) it has already explored, and
//! backtracks when it reaches a return whose op is still unplaced. The search, and the
//! reductions that make it fast (observers first, equivalent states memoized once), live in
//! `linearizable/search.rs`.
//!
//! Around it: P-compositionality (Horn & Kroening, "Faster linearizability checking via
//! P-compositionality", 2015): a history over many keys is split per key for every model and
//! the parts are checked in parallel with rayon, smallest first, in two rounds so that one hard
//! key cannot starve the rest (a part stopped at the end of round one resumes where it was).
//! Indeterminate (`info`) ops are calls that never return. A time budget and a memory cap
//! ([`CheckOptions::max_memory`], shared by every parallel search) yield [`Verdict::Unknown`]
//! with the reason, never a wrong answer and never an abort.
//!
//! Checking without partitioning (`partition: false`) treats the history as ONE object whose
//! state is the product of per-key states ([`crate::model::Product`]). Two strategies:
//! [`Strategy::Plain`] runs the search above on the product state (Porcupine's
//! `TestKvNoPartition`), exponential in the number of keys; [`Strategy::Compositional`] (the
//! default) exploits that ops on different keys commute: by Herlihy & Wing's locality theorem
//! the remaining search from any configuration succeeds iff it succeeds on every key
//! component, so components are searched (and cached) independently, and a linearizable
//! verdict is then certified by merging the per-key orders into ONE global sequential order
//! that respects real time and replaying it on the product model. Illegal verdicts are the
//! projection argument: a global linearization restricted to one key would linearize that key.

use crate::history::Operation;
use crate::model::{
    Model, ModelError, ModelKind, ModelOptions, NilReads, Prepare, Prepared, Product, ProductOp,
};
use crate::models::{
    cas_register::CasRegisterModel, kv::KvModel, multi_register::MultiRegisterModel,
    register::RegisterModel,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

mod search;

use search::{Deadline, MemoryPool, Outcome, Progress, Reservation, Search, Stop, Why};

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// No linearization exists; a counterexample says why.
    Illegal,
    /// The budget ran out before either was proven.
    Unknown,
}

impl Verdict {
    /// Combines part verdicts: any illegal → illegal; else any unknown → unknown.
    pub fn combine(self, other: Verdict) -> Verdict {
        use Verdict::*;
        match (self, other) {
            (Illegal, _) | (_, Illegal) => Illegal,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Linearizable,
        }
    }

    /// Lower-case name (`linearizable`, `illegal`, `unknown`).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::Illegal => "illegal",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One op inside a counterexample: the history op, how the model prints it, and (in the
/// prefix) the model state right after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterexampleOp {
    /// The op as paired from the history.
    pub op: Operation,
    /// The model's rendering, e.g. `cas(1, 2)` or `get() -> "x 0 0 y"`.
    pub description: String,
    /// Position in the linearization (0-based); `None` for ops that could not be placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<usize>,
    /// Model state after this op (prefix ops only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_after: Option<serde_json::Value>,
    /// Why it cannot come next (unplaceable ops only), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Why a partition is illegal, as data the report can draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<CounterexampleOp>,
    /// The ops that could be placed next (their calls precede the earliest pending return),
    /// none of which leads to a linearization after the prefix, each with why; first the
    /// pending ops that placing one of them would leave impossible.
    pub unplaceable: Vec<CounterexampleOp>,
    /// The model state after the prefix.
    pub state: serde_json::Value,
    /// One or two sentences for a person.
    pub explanation: String,
}

/// The result for one independent part of the history (one key, or the whole history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionResult {
    /// The key, or `None` for a history without keys / the unpartitioned whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The verdict for this part.
    pub verdict: Verdict,
    /// Ops in this part (after removing `fail`s).
    pub ops: usize,
    /// Indeterminate ops dropped because nothing observed them.
    pub dropped_indeterminate: usize,
    /// Wall time spent on this part, milliseconds.
    pub elapsed_ms: f64,
    /// Set when `verdict` is illegal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    /// Why the verdict is unknown (budget, cancelled), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The result of checking a history for linearizability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Overall verdict: illegal if any part is, else unknown if any part is, else linearizable.
    pub verdict: Verdict,
    /// The model checked against.
    pub model: ModelKind,
    /// Whether the history was split per key.
    pub partitioned: bool,
    /// Total ops checked (after removing `fail`s).
    pub ops: usize,
    /// Wall time, milliseconds.
    pub elapsed_ms: f64,
    /// One result per part, sorted by key.
    pub partitions: Vec<PartitionResult>,
    /// A short human explanation of the verdict.
    pub explanation: String,
}

/// How to search a history checked without partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Per-key components searched independently, verified by a merged global order.
    Compositional,
    /// One search over the product state (Porcupine's unpartitioned check).
    Plain,
}

/// What to check and with what budget.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The model; `None` = infer from the functions used.
    pub model: Option<ModelKind>,
    /// Initial value of every register / key (JSON null = nil; kv treats null as "").
    pub init: serde_json::Value,
    /// Wall-clock budget for the whole check; `None` = unlimited.
    pub timeout: Option<Duration>,
    /// Split per key (P-compositionality). `false` checks the history as one object.
    pub partition: bool,
    /// Search strategy when `partition` is false.
    pub strategy: Strategy,
    /// Memory cap for the whole check, bytes: every search's memo and stack plus the values
    /// models intern, across all parallel searches. A search that would exceed it stops, and
    /// its part's verdict is [`Verdict::Unknown`] with the reason (never an abort).
    pub max_memory: usize,
    /// Bytes the caller already holds for the history (its text, events and ops), counted
    /// against `max_memory` before any search starts.
    pub input_bytes: usize,
    /// What a read that returned nil means (nil is a value by default).
    pub nil_reads: NilReads,
}

/// The default of [`CheckOptions::max_memory`]: 2 GiB.
pub const DEFAULT_MAX_MEMORY: usize = 2 << 30;

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            model: None,
            init: serde_json::Value::Null,
            timeout: None,
            partition: true,
            strategy: Strategy::Compositional,
            max_memory: DEFAULT_MAX_MEMORY,
            input_bytes: 0,
            nil_reads: NilReads::Value,
        }
    }
}

/// Bad input found while checking (an op the model cannot interpret).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An op the model does not understand.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl CheckError {
    /// The 1-based line of the history the problem is on.
    pub fn line(&self) -> usize {
        match self {
            CheckError::Model(e) => e.line,
        }
    }
}

/// Checks paired operations for linearizability. See the module doc for the strategy.
pub fn check(ops: &[Operation], opts: &CheckOptions) -> Result<CheckResult, CheckError> {
    let kind = opts.model.unwrap_or_else(|| ModelKind::infer(ops));
    match kind {
        ModelKind::Register => check_with::<RegisterModel>(kind, ops, opts),
        ModelKind::CasRegister => check_with::<CasRegisterModel>(kind, ops, opts),
        ModelKind::Kv => check_with::<KvModel>(kind, ops, opts),
        ModelKind::MultiRegister => check_with::<MultiRegisterModel>(kind, ops, opts),
    }
}

/// The deadline, cancel flag and memory pool shared by every search of one check.
struct Budget<'a> {
    deadline: Deadline<'a>,
    pool: &'a MemoryPool,
}

impl Budget<'_> {
    /// The same budget with an earlier deadline.
    fn until(&self, at: Option<Instant>) -> Budget<'_> {
        Budget {
            deadline: Deadline {
                at,
                cancel: self.deadline.cancel,
            },
            pool: self.pool,
        }
    }

    /// Why a search stopped, in words.
    fn reason(&self, stop: Stop) -> String {
        match stop {
            Stop::Time => "time budget exhausted".into(),
            Stop::Memory => format!(
                "memory limit of {} reached (history, memo and model states; raise --max-memory)",
                show_bytes(self.pool.limit())
            ),
        }
    }
}

/// `1.5 GiB`, `512 MiB`, `64 KiB`: for messages.
pub fn show_bytes(n: usize) -> String {
    const UNITS: [(&str, usize); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            return if v.fract() == 0.0 {
                format!("{v:.0} {unit}")
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

fn group_by_key(ops: &[Operation]) -> BTreeMap<Option<String>, Vec<&Operation>> {
    let mut groups: BTreeMap<Option<String>, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        groups.entry(op.key.clone()).or_default().push(op);
    }
    groups
}

/// One partition being checked: its model and ops, and its search while undecided, so that a
/// search stopped at the end of round one resumes in round two instead of starting over.
struct Part<'p, M: Model> {
    key: Option<String>,
    p: Prepared<M>,
    search: Option<Search<M::State>>,
    memory: Reservation<'p>,
    elapsed: Duration,
}

/// A partition waiting to be searched (taken by whichever rayon worker runs it).
type Slot<'p, M> = std::sync::Mutex<Part<'p, M>>;

fn check_with<M>(
    kind: ModelKind,
    ops: &[Operation],
    opts: &CheckOptions,
) -> Result<CheckResult, CheckError>
where
    M: Prepare + Send,
    M::Op: Send + Sync,
    M::State: Send,
{
    use rayon::prelude::*;
    let start = Instant::now();
    let deadline = opts.timeout.map(|t| start + t);
    let cancel = AtomicBool::new(false);
    let pool = MemoryPool::new(opts.max_memory, opts.input_bytes);
    let budget = Budget {
        deadline: Deadline {
            at: deadline,
            cancel: &cancel,
        },
        pool: &pool,
    };
    let groups = group_by_key(ops);
    let mut prepared: Vec<(Option<String>, Prepared<M>)> = Vec::with_capacity(groups.len());
    for (key, group) in &groups {
        let mopts = ModelOptions {
            init: &opts.init,
            nil_reads: opts.nil_reads,
        };
        prepared.push((key.clone(), M::prepare(group, &mopts)?));
    }

    let partitions: Vec<PartitionResult> = if opts.partition || prepared.len() <= 1 {
        // Smallest parts first; round one gives every part a slice of the budget so a hard part
        // cannot starve the others, round two gives the unfinished ones what is left.
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        order.sort_by_key(|&i| prepared[i].1.ops.len());
        let slots: Vec<Slot<'_, M>> = prepared
            .into_iter()
            .map(|(key, p)| {
                std::sync::Mutex::new(Part {
                    key,
                    p,
                    search: None,
                    memory: Reservation::new(&pool),
                    elapsed: Duration::ZERO,
                })
            })
            .collect();
        let n = order.len().max(1) as u32;
        let first_round = opts
            .timeout
            .map(|t| (t / 4 / n).max(Duration::from_millis(20)));
        let run = |i: usize, round_deadline: Option<Instant>, last: bool| {
            let mut part = slots[i].lock().expect("slot lock");
            advance(&mut part, ops, &budget.until(round_deadline), last)
        };
        let mut results: Vec<Option<PartitionResult>> = vec![None; order.len()];
        let first: Vec<(usize, Option<PartitionResult>)> = order
            .par_iter()
            .with_max_len(1)
            .map(|&i| {
                let d = match (first_round, deadline) {
                    (Some(r), Some(d)) => Some((Instant::now() + r).min(d)),
                    _ => deadline,
                };
                (i, run(i, d, first_round.is_none()))
            })
            .collect();
        let mut retry = Vec::new();
        for (i, r) in first {
            match r {
                Some(r) => results[i] = Some(r),
                None => retry.push(i),
            }
        }
        // Round two: the unfinished parts resume and share what is left, each getting an
        // equal slice of the remaining time per worker thread, so one hard part cannot eat
        // every other's time.
        let threads = rayon::current_num_threads().max(1) as u32;
        let waves = (retry.len() as u32).div_ceil(threads).max(1);
        let second: Vec<(usize, Option<PartitionResult>)> = retry
            .par_iter()
            .with_max_len(1)
            .map(|&i| {
                let d = deadline.map(|d| {
                    let left = d.saturating_duration_since(Instant::now());
                    (Instant::now() + left / waves).min(d)
                });
                (i, run(i, d, true))
            })
            .collect();
        for (i, r) in second {
            results[i] = r;
        }
        let mut out: Vec<PartitionResult> = results.into_iter().flatten().collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    } else {
        vec![check_unpartitioned(prepared, ops, &budget, opts)]
    };

    let verdict = partitions
        .iter()
        .fold(Verdict::Linearizable, |v, p| v.combine(p.verdict));
    let explanation = explain(verdict, &partitions);
    Ok(CheckResult {
        verdict,
        model: kind,
        partitioned: opts.partition,
        ops: ops.len(),
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
        partitions,
        explanation,
    })
}

fn explain(verdict: Verdict, parts: &[PartitionResult]) -> String {
    let name = |p: &PartitionResult| match &p.key {
        Some(k) => format!("key {k:?}"),
        None => "the history".to_string(),
    };
    match verdict {
        Verdict::Linearizable => format!(
            "linearizable: {} part(s) checked, every one has a legal sequential order respecting real time",
            parts.len()
        ),
        Verdict::Illegal => {
            let bad: Vec<&PartitionResult> =
                parts.iter().filter(|p| p.verdict == Verdict::Illegal).collect();
            let first = bad[0];
            let why = first
                .counterexample
                .as_ref()
                .map(|c| c.explanation.clone())
                .unwrap_or_default();
            format!("illegal: {} of {} part(s) cannot be linearized; {}: {}", bad.len(), parts.len(), name(first), why)
        }
        Verdict::Unknown => {
            // Group the undecided parts by reason: "time budget exhausted" for keys "0", "7".
            let mut by_reason: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for p in parts.iter().filter(|p| p.verdict == Verdict::Unknown) {
                by_reason
                    .entry(p.reason.as_deref().unwrap_or("undecided"))
                    .or_default()
                    .push(name(p));
            }
            let said: Vec<String> = by_reason
                .into_iter()
                .map(|(why, who)| format!("{why} before deciding {}", who.join(", ")))
                .collect();
            format!("unknown: {}", said.join("; "))
        }
    }
}

/// Works on one partition until it is decided or `budget` stops it. `None` when it stopped
/// on time and `last` is false (it resumes in the next round); otherwise its result.
fn advance<M: Model>(
    part: &mut Part<'_, M>,
    all: &[Operation],
    budget: &Budget<'_>,
    last: bool,
) -> Option<PartitionResult> {
    let start = Instant::now();
    let p = &mut part.p;
    let mut result = PartitionResult {
        key: part.key.clone(),
        verdict: Verdict::Linearizable,
        ops: p.ids.len() + p.dropped.len(),
        dropped_indeterminate: p.dropped.len(),
        elapsed_ms: 0.0,
        counterexample: None,
        reason: None,
    };
    if let Some((id, why)) = &p.violation {
        result.verdict = Verdict::Illegal;
        result.counterexample = Some(static_violation(p, all, *id, why));
    } else {
        let search = part.search.get_or_insert_with(|| {
            let calls: Vec<u64> = p.ids.iter().map(|&i| all[i].call).collect();
            let rets: Vec<Option<u64>> = p.ids.iter().map(|&i| all[i].ret).collect();
            Search::new(p.model.init(), &calls, &rets)
        });
        match search.run(&mut p.model, &p.ops, &budget.deadline, &mut part.memory) {
            Progress::Stopped(Stop::Time) if !last => {
                part.elapsed += start.elapsed();
                return None;
            }
            Progress::Stopped(stop) => {
                result.verdict = Verdict::Unknown;
                result.reason = Some(budget.reason(stop));
            }
            Progress::Done(Outcome::Linearizable(_)) => {}
            Progress::Done(Outcome::Illegal { prefix, candidates }) => {
                result.verdict = Verdict::Illegal;
                result.counterexample = Some(counterexample(
                    &mut p.model,
                    &p.ops,
                    &p.ids,
                    all,
                    &prefix,
                    &candidates,
                ));
            }
        }
        // Decided (or given up): the memo goes, the model's interned values stay until the end.
        part.search = None;
        let _ = part.memory.set(p.model.memory_bytes());
    }
    part.elapsed += start.elapsed();
    result.elapsed_ms = part.elapsed.as_secs_f64() * 1e3;
    Some(result)
}

/// The counterexample for an op the model found illegal whatever the order.
fn static_violation<M: Model>(
    p: &Prepared<M>,
    all: &[Operation],
    id: usize,
    why: &str,
) -> Counterexample {
    let description = p
        .ids
        .iter()
        .position(|&i| i == id)
        .map(|k| p.model.describe_op(&p.ops[k]))
        .unwrap_or_default();
    Counterexample {
        prefix: Vec::new(),
        unplaceable: vec![CounterexampleOp {
            op: all[id].clone(),
            description,
            order: None,
            state_after: None,
            why: Some(why.to_string()),
        }],
        state: p.model.state_json(&p.model.init()),
        explanation: why.to_string(),
    }
}

fn counterexample<M: Model>(
    model: &mut M,
    ops: &[M::Op],
    ids: &[usize],
    all: &[Operation],
    prefix: &[usize],
    candidates: &[(usize, Why)],
) -> Counterexample {
    let mut state = model.init();
    let mut out = Vec::with_capacity(prefix.len());
    for (order, &k) in prefix.iter().enumerate() {
        state = model.step(&state, &ops[k]).expect("prefix replays");
        out.push(CounterexampleOp {
            op: all[ids[k]].clone(),
            description: model.describe_op(&ops[k]),
            order: Some(order),
            state_after: Some(model.state_json(&state)),
            why: None,
        });
    }
    let name = |model: &M, k: usize| {
        let op = &all[ids[k]];
        format!(
            "{} (process {}, line {})",
            model.describe_op(&ops[k]),
            op.process,
            op.line
        )
    };
    // The ops a legal move would strand come first: their results are what no order explains.
    let mut listed: Vec<(usize, String)> = Vec::new();
    for &(_, why) in candidates {
        if let Why::Strands(r) = why {
            if !listed.iter().any(|(k, _)| *k == r) && !candidates.iter().any(|(c, _)| *c == r) {
                listed.push((
                    r,
                    "must take effect before it returns, and none of the ops that can come next allows that".into(),
                ));
            }
        }
    }
    for &(c, why) in candidates {
        let text = match why {
            Why::Illegal => "not legal in this state".to_string(),
            Why::Strands(r) => format!(
                "after it, {} could no longer take effect before it returns",
                name(model, r)
            ),
            Why::Explored => "every order that continues with it fails later".to_string(),
        };
        listed.push((c, text));
    }
    let unplaceable: Vec<CounterexampleOp> = listed
        .iter()
        .map(|(k, why)| CounterexampleOp {
            op: all[ids[*k]].clone(),
            description: model.describe_op(&ops[*k]),
            order: None,
            state_after: None,
            why: Some(why.clone()),
        })
        .collect();
    let state_json = model.state_json(&state);
    let shown: Vec<String> = listed
        .iter()
        .filter(|(k, _)| candidates.iter().any(|(c, _)| c == k))
        .take(4)
        .map(|(k, why)| format!("{}: {why}", name(model, *k)))
        .collect();
    let explanation = format!(
        "after {} ops linearized (state {}), none of the {} op(s) that could come next works: {}{}",
        prefix.len(),
        state_json,
        candidates.len(),
        shown.join("; "),
        if candidates.len() > 4 { "; ..." } else { "" }
    );
    Counterexample {
        prefix: out,
        unplaceable,
        state: state_json,
        explanation,
    }
}

/// The unpartitioned check: one object whose state is the product of the per-key states.
fn check_unpartitioned<M: Model>(
    prepared: Vec<(Option<String>, Prepared<M>)>,
    all: &[Operation],
    budget: &Budget<'_>,
    opts: &CheckOptions,
) -> PartitionResult {
    let start = Instant::now();
    let mut parts = Vec::with_capacity(prepared.len());
    let mut ops: Vec<ProductOp<M::Op>> = Vec::new();
    let mut ids: Vec<usize> = Vec::new();
    let mut dropped = Vec::new();
    let mut violation = None;
    for (part, (_key, p)) in prepared.into_iter().enumerate() {
        if violation.is_none() {
            violation = p.violation;
        }
        dropped.extend(p.dropped);
        for (op, id) in p.ops.into_iter().zip(p.ids) {
            ops.push(ProductOp { part, op });
            ids.push(id);
        }
        parts.push(p.model);
    }
    // Op order in the product: by id (history order).
    let mut perm: Vec<usize> = (0..ops.len()).collect();
    perm.sort_by_key(|&k| ids[k]);
    let mut slot: Vec<Option<ProductOp<M::Op>>> = ops.into_iter().map(Some).collect();
    let ops: Vec<ProductOp<M::Op>> = perm
        .iter()
        .map(|&k| slot[k].take().expect("each op once"))
        .collect();
    let ids: Vec<usize> = perm.iter().map(|&k| ids[k]).collect();
    let p = Prepared {
        model: Product { parts },
        ops,
        ids,
        dropped,
        violation,
    };
    let mut result = match opts.strategy {
        Strategy::Plain => plain(p, all, budget),
        Strategy::Compositional => compositional(p, all, budget),
    };
    result.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    result
}

/// One search over the whole product (Porcupine's unpartitioned check).
fn plain<M: Model>(p: Prepared<M>, all: &[Operation], budget: &Budget<'_>) -> PartitionResult {
    let mut part = Part {
        key: None,
        p,
        search: None,
        memory: Reservation::new(budget.pool),
        elapsed: Duration::ZERO,
    };
    advance(&mut part, all, budget, true).expect("the last round always gives a result")
}

/// The compositional search over a product: each component searched on its own; a
/// linearizable answer is certified by a merged global order replayed on the product.
fn compositional<M: Model>(
    mut p: Prepared<Product<M>>,
    all: &[Operation],
    budget: &Budget<'_>,
) -> PartitionResult {
    let mut result = PartitionResult {
        key: None,
        verdict: Verdict::Linearizable,
        ops: p.ids.len() + p.dropped.len(),
        dropped_indeterminate: p.dropped.len(),
        elapsed_ms: 0.0,
        counterexample: None,
        reason: None,
    };
    if p.violation.is_some() {
        return plain(p, all, budget);
    }
    let nparts = p.model.parts.len();
    // Component op lists (indices into p.ops), smallest component first.
    let mut comps: Vec<Vec<usize>> = vec![Vec::new(); nparts];
    for (k, op) in p.ops.iter().enumerate() {
        comps[op.part].push(k);
    }
    let mut order: Vec<usize> = (0..nparts).collect();
    order.sort_by_key(|&c| comps[c].len());
    let mut orders: Vec<Vec<usize>> = vec![Vec::new(); nparts];
    let mut unknown = None;
    // What every component's model holds, and what the running search holds on top.
    let mut models = Reservation::new(budget.pool);
    for c in order {
        let members = &comps[c];
        let sub_ops: Vec<&M::Op> = members.iter().map(|&k| &p.ops[k].op).collect();
        let calls: Vec<u64> = members.iter().map(|&k| all[p.ids[k]].call).collect();
        let rets: Vec<Option<u64>> = members.iter().map(|&k| all[p.ids[k]].ret).collect();
        let owned: Vec<RefOp<'_, M::Op>> = sub_ops.into_iter().map(RefOp).collect();
        let mut wrapped = RefModel(&mut p.model.parts[c]);
        let mut memory = Reservation::new(budget.pool);
        let mut search = Search::new(wrapped.init(), &calls, &rets);
        let progress = search.run(&mut wrapped, &owned, &budget.deadline, &mut memory);
        drop(search);
        drop(memory);
        let _ = models.set(p.model.memory_bytes());
        match progress {
            Progress::Done(Outcome::Linearizable(o)) => {
                orders[c] = o.into_iter().map(|j| members[j]).collect()
            }
            Progress::Stopped(stop) => unknown = Some(budget.reason(stop)),
            Progress::Done(Outcome::Illegal { prefix, candidates }) => {
                // Illegal on one component ⇒ illegal as a whole (project any linearization).
                let prefix: Vec<usize> = prefix.into_iter().map(|j| members[j]).collect();
                let candidates: Vec<(usize, Why)> = candidates
                    .into_iter()
                    .map(|(j, why)| {
                        let why = match why {
                            Why::Strands(r) => Why::Strands(members[r]),
                            other => other,
                        };
                        (members[j], why)
                    })
                    .collect();
                result.verdict = Verdict::Illegal;
                result.counterexample = Some(counterexample(
                    &mut p.model,
                    &p.ops,
                    &p.ids,
                    all,
                    &prefix,
                    &candidates,
                ));
                return result;
            }
        }
    }
    if let Some(reason) = unknown {
        result.verdict = Verdict::Unknown;
        result.reason = Some(reason);
        return result;
    }
    // Merge the component orders into one order that respects real time, then replay it.
    match merge_orders(&orders, &p.ids, all) {
        Some(global) => {
            let mut state = p.model.init();
            for &k in &global {
                match p.model.step(&state, &p.ops[k]) {
                    Some(s) => state = s,
                    None => {
                        result.verdict = Verdict::Unknown;
                        result.reason = Some("internal: merged order failed to replay".into());
                        return result;
                    }
                }
            }
        }
        None => {
            result.verdict = Verdict::Unknown;
            result.reason = Some("internal: per-key orders could not be merged".into());
        }
    }
    result
}

/// Topologically merges per-component orders with the real-time order: repeatedly take a
/// component head whose call is not after any unplaced op's return. Returns `None` only if
/// the union had a cycle (impossible by the locality theorem; checked, not assumed).
fn merge_orders(orders: &[Vec<usize>], ids: &[usize], all: &[Operation]) -> Option<Vec<usize>> {
    use std::collections::BTreeSet;
    let ret = |k: usize| all[ids[k]].ret.unwrap_or(u64::MAX);
    let call = |k: usize| all[ids[k]].call;
    let total: usize = orders.iter().map(Vec::len).sum();
    // Unplaced ok ops by return time (ops outside any order were never placed: only
    // indeterminate ones, which have infinite returns and constrain nothing).
    let mut pending: BTreeSet<(u64, usize)> = BTreeSet::new();
    for o in orders {
        for &k in o {
            pending.insert((ret(k), k));
        }
    }
    let mut pos = vec![0usize; orders.len()];
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let min_ret = pending.first().map(|x| x.0).unwrap_or(u64::MAX);
        let mut pick = None;
        for (c, o) in orders.iter().enumerate() {
            if let Some(&k) = o.get(pos[c]) {
                if call(k) <= min_ret && pick.is_none_or(|(_, pk)| ret(k) < ret(pk)) {
                    pick = Some((c, k));
                }
            }
        }
        let (c, k) = pick?;
        pos[c] += 1;
        pending.remove(&(ret(k), k));
        out.push(k);
    }
    Some(out)
}

/// Borrowed op, so a component search can run on a product's ops without copying them.
#[derive(Debug, PartialEq)]
struct RefOp<'a, O>(&'a O);
/// Borrowed model, for the same reason.
struct RefModel<'a, M>(&'a mut M);
impl<'a, M: Model> Model for RefModel<'a, M> {
    type State = M::State;
    type Op = RefOp<'a, M::Op>;
    fn init(&self) -> M::State {
        self.0.init()
    }
    fn step(&mut self, s: &M::State, op: &Self::Op) -> Option<M::State> {
        self.0.step(s, op.0)
    }
    fn describe_op(&self, op: &Self::Op) -> String {
        self.0.describe_op(op.0)
    }
    fn state_json(&self, s: &M::State) -> serde_json::Value {
        self.0.state_json(s)
    }
    fn can_reach(
        &mut self,
        state: &M::State,
        target: &Self::Op,
        window: &mut dyn Iterator<Item = &Self::Op>,
    ) -> bool {
        self.0.can_reach(state, target.0, &mut window.map(|o| o.0))
    }
    fn is_observer(&self, op: &Self::Op) -> bool {
        self.0.is_observer(op.0)
    }
    fn representative(&mut self, s: &M::State) -> M::State {
        self.0.representative(s)
    }
    fn memory_bytes(&self) -> usize {
        self.0.memory_bytes()
    }
    fn state_heap_bytes(&self, s: &M::State) -> usize {
        self.0.state_heap_bytes(s)
    }
}
