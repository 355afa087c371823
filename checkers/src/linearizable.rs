//! Linearizability checking: the Wing–Gong–Lowe search and the result types.
//!
//! The algorithm is Lowe's refinement of Wing & Gong ("Testing for linearizability", Lowe,
//! 2017), as in Porcupine's `checker.go`: ops become call and return entries in one list sorted
//! by time (calls before returns at equal times: intervals are closed); a depth-first search
//! linearizes any op whose call precedes the earliest pending return, memoizing every
//! configuration (set of linearized ops as a bitset, model state) it has already explored, and
//! backtracks when it reaches a return whose op is still unplaced.
//!
//! Around it: P-compositionality (Horn & Kroening, "Faster linearizability checking via
//! P-compositionality", 2015): a history over many keys is split per key for every model and
//! the parts are checked in parallel with rayon, smallest first, in two rounds so that one hard
//! key cannot starve the rest. Indeterminate (`info`) ops are calls that never return. A time
//! budget yields [`Verdict::Unknown`], never a wrong answer; the memo cache is capped in bytes
//! and cleared when full (it only prunes, so clearing costs time, not soundness).
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
use crate::model::{Model, ModelError, ModelKind, Prepare, Prepared, Product, ProductOp};
use crate::models::{cas_register::CasRegisterModel, kv::KvModel, register::RegisterModel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
}

/// Why a partition is illegal, as data the report can draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<CounterexampleOp>,
    /// The ops that could be placed next (their calls precede the earliest pending return),
    /// none of which is legal after the prefix.
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
    /// Memo cache cap per search, bytes; the cache is cleared when it is exceeded.
    pub cache_bytes: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            model: None,
            init: serde_json::Value::Null,
            timeout: None,
            partition: true,
            strategy: Strategy::Compositional,
            cache_bytes: 512 << 20,
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

/// Checks paired operations for linearizability. See the module doc for the strategy.
pub fn check(ops: &[Operation], opts: &CheckOptions) -> Result<CheckResult, CheckError> {
    let kind = opts.model.unwrap_or_else(|| ModelKind::infer(ops));
    match kind {
        ModelKind::Register => check_with::<RegisterModel>(kind, ops, opts),
        ModelKind::CasRegister => check_with::<CasRegisterModel>(kind, ops, opts),
        ModelKind::Kv => check_with::<KvModel>(kind, ops, opts),
    }
}

/// A deadline and a cancel flag, shared by every search of one check.
struct Budget<'a> {
    deadline: Option<Instant>,
    cancel: &'a AtomicBool,
}

impl Budget<'_> {
    fn expired(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

fn group_by_key(ops: &[Operation]) -> BTreeMap<Option<String>, Vec<&Operation>> {
    let mut groups: BTreeMap<Option<String>, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        groups.entry(op.key.clone()).or_default().push(op);
    }
    groups
}

/// A partition waiting to be searched (taken by whichever rayon worker runs it).
type Slot<M> = std::sync::Mutex<Option<(Option<String>, Prepared<M>)>>;

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
    let groups = group_by_key(ops);
    let mut prepared: Vec<(Option<String>, Prepared<M>)> = Vec::with_capacity(groups.len());
    for (key, group) in &groups {
        prepared.push((key.clone(), M::prepare(group, &opts.init)?));
    }

    let partitions: Vec<PartitionResult> = if opts.partition || prepared.len() <= 1 {
        // Smallest parts first; round one gives every part a slice of the budget so a hard part
        // cannot starve the others, round two gives the unfinished ones what is left.
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        order.sort_by_key(|&i| prepared[i].1.ops.len());
        let slots: Vec<Slot<M>> = prepared
            .into_iter()
            .map(|p| std::sync::Mutex::new(Some(p)))
            .collect();
        let n = order.len().max(1) as u32;
        let first_round = opts
            .timeout
            .map(|t| (t / 4 / n).max(Duration::from_millis(20)));
        let run = |i: usize, round_deadline: Option<Instant>| -> PartitionResult {
            let mut guard = slots[i].lock().expect("slot lock");
            let (key, p) = guard.as_mut().expect("slot filled");
            let budget = Budget {
                deadline: round_deadline,
                cancel: &cancel,
            };
            check_prepared(key.clone(), p, ops, &budget, opts.cache_bytes)
        };
        let mut results: Vec<Option<PartitionResult>> = vec![None; order.len()];
        let first: Vec<(usize, PartitionResult)> = order
            .par_iter()
            .with_max_len(1)
            .map(|&i| {
                let d = match (first_round, deadline) {
                    (Some(r), Some(d)) => Some((Instant::now() + r).min(d)),
                    _ => deadline,
                };
                (i, run(i, d))
            })
            .collect();
        let mut retry = Vec::new();
        for (i, r) in first {
            if r.verdict == Verdict::Unknown && deadline.is_some_and(|d| Instant::now() < d) {
                retry.push(i);
            }
            results[i] = Some(r);
        }
        // Round two: the unfinished parts share what is left, each getting an equal slice of
        // the remaining time per worker thread, so one hard part cannot eat every other's time.
        let threads = rayon::current_num_threads().max(1) as u32;
        let waves = (retry.len() as u32).div_ceil(threads).max(1);
        let second: Vec<(usize, PartitionResult)> = retry
            .par_iter()
            .with_max_len(1)
            .map(|&i| {
                let d = deadline.map(|d| {
                    let left = d.saturating_duration_since(Instant::now());
                    (Instant::now() + left / waves).min(d)
                });
                (i, run(i, d))
            })
            .collect();
        for (i, r) in second {
            results[i] = Some(r);
        }
        let mut out: Vec<PartitionResult> = results.into_iter().flatten().collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    } else {
        let budget = Budget {
            deadline,
            cancel: &cancel,
        };
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
            let unk: Vec<String> =
                parts.iter().filter(|p| p.verdict == Verdict::Unknown).map(name).collect();
            format!("unknown: the budget ran out before deciding {}", unk.join(", "))
        }
    }
}

fn check_prepared<M: Model>(
    key: Option<String>,
    p: &mut Prepared<M>,
    all: &[Operation],
    budget: &Budget<'_>,
    cache_bytes: usize,
) -> PartitionResult {
    let start = Instant::now();
    let calls: Vec<u64> = p.ids.iter().map(|&i| all[i].call).collect();
    let rets: Vec<Option<u64>> = p.ids.iter().map(|&i| all[i].ret).collect();
    let mut result = PartitionResult {
        key,
        verdict: Verdict::Linearizable,
        ops: p.ids.len() + p.dropped.len(),
        dropped_indeterminate: p.dropped.len(),
        elapsed_ms: 0.0,
        counterexample: None,
        reason: None,
    };
    if let Some((id, why)) = &p.violation {
        let pos = p.ids.iter().position(|i| i == id);
        let description = pos
            .map(|k| p.model.describe_op(&p.ops[k]))
            .unwrap_or_default();
        result.verdict = Verdict::Illegal;
        result.counterexample = Some(Counterexample {
            prefix: Vec::new(),
            unplaceable: vec![CounterexampleOp {
                op: all[*id].clone(),
                description,
                order: None,
                state_after: None,
            }],
            state: p.model.state_json(&p.model.init()),
            explanation: why.clone(),
        });
    } else {
        match search(&mut p.model, &p.ops, &calls, &rets, budget, cache_bytes) {
            Outcome::Linearizable(_) => {}
            Outcome::Unknown => {
                result.verdict = Verdict::Unknown;
                result.reason = Some("time budget exhausted".into());
            }
            Outcome::Illegal { prefix, candidates } => {
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
    }
    result.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    result
}

fn counterexample<M: Model>(
    model: &mut M,
    ops: &[M::Op],
    ids: &[usize],
    all: &[Operation],
    prefix: &[usize],
    candidates: &[usize],
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
        });
    }
    let unplaceable: Vec<CounterexampleOp> = candidates
        .iter()
        .map(|&k| CounterexampleOp {
            op: all[ids[k]].clone(),
            description: model.describe_op(&ops[k]),
            order: None,
            state_after: None,
        })
        .collect();
    let state_json = model.state_json(&state);
    let shown: Vec<String> = unplaceable
        .iter()
        .take(4)
        .map(|c| {
            format!(
                "{} (process {}, index {})",
                c.description, c.op.process, c.op.invoke_index
            )
        })
        .collect();
    let explanation = format!(
        "after {} ops linearized (state {}), none of the {} op(s) that must come next is legal: {}{}",
        prefix.len(),
        state_json,
        unplaceable.len(),
        shown.join("; "),
        if unplaceable.len() > 4 { "; ..." } else { "" }
    );
    Counterexample {
        prefix: out,
        unplaceable,
        state: state_json,
        explanation,
    }
}

/// The result of one search.
enum Outcome {
    /// The ops in a legal order (indices into the search's op slice).
    Linearizable(Vec<usize>),
    /// The deepest prefix reached and the ops that could not extend it.
    Illegal {
        prefix: Vec<usize>,
        candidates: Vec<usize>,
    },
    /// Budget exhausted.
    Unknown,
}

/// An FxHash-style hasher for model states (fast, not DoS-resistant; inputs are ours).
#[derive(Default)]
struct Fx(u64);
impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// The memo of explored configurations: an open-addressing table over an arena, so an entry
/// costs its bitset words, its state and a hash, with no allocation per entry.
struct Memo<S> {
    words: usize,
    /// Slot → entry index + 1 (0 = empty).
    slots: Vec<u32>,
    hashes: Vec<u64>,
    bits: Vec<u64>,
    states: Vec<S>,
}

impl<S: Eq> Memo<S> {
    fn new(words: usize) -> Self {
        Memo {
            words,
            slots: vec![0; 1024],
            hashes: Vec::new(),
            bits: Vec::new(),
            states: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.states.len()
    }

    fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = 0);
        self.hashes.clear();
        self.bits.clear();
        self.states.clear();
    }

    /// Inserts (bits, state) unless present; `true` if it was new.
    fn insert(&mut self, hash: u64, bits: &[u64], state: &S) -> bool
    where
        S: Clone,
    {
        let mask = self.slots.len() - 1;
        let mut at = (hash as usize) & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                break;
            }
            let k = slot as usize - 1;
            if self.hashes[k] == hash
                && self.states[k] == *state
                && self.bits[k * self.words..(k + 1) * self.words] == *bits
            {
                return false;
            }
            at = (at + 1) & mask;
        }
        let k = self.states.len();
        self.slots[at] = k as u32 + 1;
        self.hashes.push(hash);
        self.bits.extend_from_slice(bits);
        self.states.push(state.clone());
        if self.states.len() * 2 > self.slots.len() {
            let n = self.slots.len() * 2;
            self.slots = vec![0; n];
            for (k, &h) in self.hashes.iter().enumerate() {
                let mut at = (h as usize) & (n - 1);
                while self.slots[at] != 0 {
                    at = (at + 1) & (n - 1);
                }
                self.slots[at] = k as u32 + 1;
            }
        }
        true
    }
}

/// The ops whose calls lie in the list before `stop` (the earliest pending return), except
/// the two in `skip` (the op being placed and the target).
struct Window<'a, O> {
    next: &'a [usize],
    cur: usize,
    stop: usize,
    skip: (usize, usize),
    ops: &'a [O],
}

impl<'a, O> Iterator for Window<'a, O> {
    type Item = &'a O;
    fn next(&mut self) -> Option<&'a O> {
        while self.cur != HEAD && self.cur != self.stop {
            let e = self.cur;
            self.cur = self.next[e];
            let i = e / 2;
            if e & 1 == 0 && i != self.skip.0 && i != self.skip.1 {
                return Some(&self.ops[i]);
            }
        }
        None
    }
}

fn state_hash<S: Hash>(s: &S) -> u64 {
    let mut h = Fx::default();
    s.hash(&mut h);
    h.finish()
}

const HEAD: usize = usize::MAX;

/// How many of the earliest pending returns the lookahead checks after each step.
const LOOKAHEAD: usize = 4;

/// Wing–Gong–Lowe over `ops` with call times `calls` and return times `rets` (`None` = never).
fn search<M: Model>(
    model: &mut M,
    ops: &[M::Op],
    calls: &[u64],
    rets: &[Option<u64>],
    budget: &Budget<'_>,
    cache_bytes: usize,
) -> Outcome {
    let n = ops.len();
    if n == 0 {
        return Outcome::Linearizable(Vec::new());
    }
    // Entries: 2*i = call of op i, 2*i+1 = return of op i. Sorted by time, calls first on ties.
    let mut entries: Vec<usize> = (0..2 * n).collect();
    let time = |e: usize| -> (u64, u8) {
        let i = e / 2;
        if e & 1 == 0 {
            (calls[i], 0)
        } else {
            (rets[i].unwrap_or(u64::MAX), 1)
        }
    };
    entries.sort_by_key(|&e| time(e));
    let mut next = vec![HEAD; 2 * n];
    let mut prev = vec![HEAD; 2 * n];
    let mut head_next = entries[0];
    for w in 0..entries.len() {
        let e = entries[w];
        prev[e] = if w == 0 { HEAD } else { entries[w - 1] };
        next[e] = entries.get(w + 1).copied().unwrap_or(HEAD);
    }
    // Zobrist keys for the linearized set.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let zobrist: Vec<u64> = (0..n)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        })
        .collect();
    let words = n.div_ceil(64);
    let mut bits = vec![0u64; words];
    let mut zob = 0u64;
    let entry_bytes = words * 8 + std::mem::size_of::<M::State>() + 8 + 8;
    let max_entries = (cache_bytes / entry_bytes).max(1024);
    let mut memo: Memo<M::State> = Memo::new(words);

    let mut state = model.init();
    let mut stack: Vec<(usize, M::State)> = Vec::with_capacity(n);
    let mut best: Vec<usize> = Vec::new();
    let mut best_candidates: Vec<usize> = Vec::new();
    let mut cur = head_next;
    let mut steps: u64 = 0;

    macro_rules! unlink {
        ($e:expr) => {{
            let e = $e;
            let (p, q) = (prev[e], next[e]);
            if p == HEAD {
                head_next = q
            } else {
                next[p] = q
            }
            if q != HEAD {
                prev[q] = p
            }
        }};
    }
    macro_rules! relink {
        ($e:expr) => {{
            let e = $e;
            let (p, q) = (prev[e], next[e]);
            if p == HEAD {
                head_next = e
            } else {
                next[p] = e
            }
            if q != HEAD {
                prev[q] = e
            }
        }};
    }

    loop {
        steps += 1;
        if steps & 0xfff == 1 && budget.expired() {
            return Outcome::Unknown;
        }
        if cur == HEAD {
            return Outcome::Linearizable(stack.iter().map(|(i, _)| *i).collect());
        }
        let i = cur / 2;
        if cur & 1 == 0 {
            // Symmetry: identical indeterminate ops that can both be placed now are
            // interchangeable (both may take effect at any later time), so only the first in
            // list order is tried; swapping two such ops maps any linearization to one of those.
            let twin = rets[i].is_none() && {
                let mut e = head_next;
                let mut found = false;
                while e != cur {
                    if e & 1 == 0 && rets[e / 2].is_none() && ops[e / 2] == ops[i] {
                        found = true;
                        break;
                    }
                    e = next[e];
                }
                found
            };
            let stepped = if twin {
                None
            } else {
                model.step(&state, &ops[i])
            };
            let stepped = stepped.filter(|ns| {
                // Lookahead: each of the next few pending ops to return must still be
                // placeable after this one, using only ops invoked before it returns (exactly
                // the unplaced calls ahead of its return entry in the time-sorted list).
                let mut e = head_next;
                let mut checked = 0;
                while e != HEAD && checked < LOOKAHEAD {
                    if e & 1 == 1 && e / 2 != i {
                        let r = e / 2;
                        if rets[r].is_none() {
                            break;
                        }
                        checked += 1;
                        let mut window = Window {
                            next: &next,
                            cur: head_next,
                            stop: e,
                            skip: (i, r),
                            ops,
                        };
                        if !model.can_reach(ns, &ops[r], &mut window) {
                            return false;
                        }
                    }
                    e = next[e];
                }
                true
            });
            if let Some(ns) = stepped {
                bits[i / 64] |= 1 << (i % 64);
                zob ^= zobrist[i];
                let hash = zob ^ state_hash(&ns);
                if memo.len() >= max_entries {
                    memo.clear();
                }
                if memo.insert(hash, &bits, &ns) {
                    stack.push((i, std::mem::replace(&mut state, ns)));
                    unlink!(2 * i);
                    unlink!(2 * i + 1);
                    cur = head_next;
                    continue;
                }
                bits[i / 64] &= !(1 << (i % 64));
                zob ^= zobrist[i];
            }
            cur = next[cur];
        } else {
            if rets[i].is_none() {
                // Only never-returning ops remain unplaced: they may never take effect.
                return Outcome::Linearizable(stack.iter().map(|(i, _)| *i).collect());
            }
            if stack.len() >= best.len() && (stack.len() > best.len() || best_candidates.is_empty())
            {
                best = stack.iter().map(|(i, _)| *i).collect();
                best_candidates.clear();
                let mut e = head_next;
                while e != HEAD && e != cur {
                    if e & 1 == 0 {
                        best_candidates.push(e / 2);
                    }
                    e = next[e];
                }
                best_candidates.push(i);
                best_candidates.sort_unstable();
                best_candidates.dedup();
            }
            let Some((j, old)) = stack.pop() else {
                return Outcome::Illegal {
                    prefix: best,
                    candidates: best_candidates,
                };
            };
            relink!(2 * j + 1);
            relink!(2 * j);
            bits[j / 64] &= !(1 << (j % 64));
            zob ^= zobrist[j];
            state = old;
            cur = next[2 * j];
        }
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
    let mut p = Prepared {
        model: Product { parts },
        ops,
        ids,
        dropped,
        violation,
    };
    let mut result = match opts.strategy {
        Strategy::Plain => check_prepared(None, &mut p, all, budget, opts.cache_bytes),
        Strategy::Compositional => compositional(&mut p, all, budget, opts.cache_bytes),
    };
    result.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    result
}

/// The compositional search over a product: each component searched on its own; a
/// linearizable answer is certified by a merged global order replayed on the product.
fn compositional<M: Model>(
    p: &mut Prepared<Product<M>>,
    all: &[Operation],
    budget: &Budget<'_>,
    cache_bytes: usize,
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
        return check_prepared(None, p, all, budget, cache_bytes);
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
    let mut unknown = false;
    for c in order {
        let members = &comps[c];
        let sub_ops: Vec<&M::Op> = members.iter().map(|&k| &p.ops[k].op).collect();
        let calls: Vec<u64> = members.iter().map(|&k| all[p.ids[k]].call).collect();
        let rets: Vec<Option<u64>> = members.iter().map(|&k| all[p.ids[k]].ret).collect();
        let model = &mut p.model.parts[c];
        let owned: Vec<RefOp<'_, M::Op>> = sub_ops.into_iter().map(RefOp).collect();
        let mut wrapped = RefModel(model);
        match search(&mut wrapped, &owned, &calls, &rets, budget, cache_bytes) {
            Outcome::Linearizable(o) => orders[c] = o.into_iter().map(|j| members[j]).collect(),
            Outcome::Unknown => unknown = true,
            Outcome::Illegal { prefix, candidates } => {
                // Illegal on one component ⇒ illegal as a whole (project any linearization).
                let prefix: Vec<usize> = prefix.into_iter().map(|j| members[j]).collect();
                let candidates: Vec<usize> = candidates.into_iter().map(|j| members[j]).collect();
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
    if unknown {
        result.verdict = Verdict::Unknown;
        result.reason = Some("time budget exhausted".into());
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
}
