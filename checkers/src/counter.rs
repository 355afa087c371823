//! The counter workload's checker: clients add integers to one counter and read it. A read
//! must lie between what had certainly been added when it began and what could possibly have
//! been added by the time it completed (Jepsen's counter checker, generalised to negative
//! increments).
//!
//! For a read R: the *definite* adds are the `ok` adds that completed before R was invoked;
//! the *possible* ones are the other `ok` adds and every `info` add invoked before R
//! completed (they may or may not have happened, in any order). Then
//! `lower = initial + Σ definite + Σ min(0, n) over possible` and
//! `upper = initial + Σ definite + Σ max(0, n) over possible`. With non-negative adds this is
//! [sum of ok adds completed before R began, sum of ok + info adds invoked before R ended].
//!
//! # History shape
//!
//! ```text
//! {"type":"invoke","f":"add","value":3, ...}      {"type":"ok","f":"add","value":3, ...}
//! {"type":"invoke","f":"read","value":null, ...}  {"type":"ok","f":"read","value":42, ...}
//! ```
//!
//! Real-time order is history order; `fail`ed adds never count.

use crate::history::{EventType, History, HistoryError};
use crate::txn::{first, json_int, pair_calls, syntax_at, Validity, NO_READS};
use serde::{Deserialize, Serialize};

/// What to check.
#[derive(Debug, Clone)]
pub struct CounterOptions {
    /// The counter's value before any add.
    pub initial: i64,
    /// Violations kept as examples (all are counted).
    pub max_examples: usize,
}

impl Default for CounterOptions {
    fn default() -> Self {
        CounterOptions {
            initial: 0,
            max_examples: 16,
        }
    }
}

/// A read outside its bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterViolation {
    /// History index of the read's completion.
    pub index: u64,
    /// Completion time, ns.
    pub time: u64,
    /// The process that read.
    pub process: u64,
    /// Source line of the completion.
    pub line: usize,
    /// The value read.
    pub value: i64,
    /// Smallest legal value.
    pub lower: i64,
    /// Largest legal value.
    pub upper: i64,
    /// What is wrong, in one sentence.
    pub explanation: String,
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterResult {
    /// `invalid` if a read is out of bounds, `unknown` if no read completed, else `valid`.
    pub verdict: Validity,
    /// Reads judged (`ok` reads).
    pub reads: usize,
    /// Adds acknowledged.
    pub ok_adds: usize,
    /// Adds of unknown outcome.
    pub info_adds: usize,
    /// How many reads were out of bounds.
    pub violations: usize,
    /// The first few, in history order.
    pub examples: Vec<CounterViolation>,
    /// The verdict in a sentence.
    pub explanation: String,
}

/// Prefix sums of `n`, `min(0, n)` and `max(0, n)` over adds sorted by history position.
struct Sums {
    pos: Vec<usize>,
    all: Vec<i128>,
    neg: Vec<i128>,
    pos_sum: Vec<i128>,
}

impl Sums {
    fn new(mut v: Vec<(usize, i64)>) -> Sums {
        v.sort_unstable();
        let mut s = Sums {
            pos: Vec::with_capacity(v.len()),
            all: vec![0],
            neg: vec![0],
            pos_sum: vec![0],
        };
        for (p, n) in v {
            s.pos.push(p);
            let n = n as i128;
            s.all.push(s.all.last().expect("seeded") + n);
            s.neg.push(s.neg.last().expect("seeded") + n.min(0));
            s.pos_sum.push(s.pos_sum.last().expect("seeded") + n.max(0));
        }
        s
    }

    /// (Σ n, Σ min(0, n), Σ max(0, n)) over entries at positions before `p`.
    fn before(&self, p: usize) -> (i128, i128, i128) {
        let k = self.pos.partition_point(|&x| x < p);
        (self.all[k], self.neg[k], self.pos_sum[k])
    }
}

/// Checks a counter history.
pub fn check(h: &History, opts: &CounterOptions) -> Result<CounterResult, HistoryError> {
    let calls = pair_calls(h, |f| f == "add" || f == "read")?;
    let mut done_ok: Vec<(usize, i64)> = Vec::new(); // ok adds by completion position
    let mut invoked: Vec<(usize, i64)> = Vec::new(); // ok + info adds by invoke position
    let mut reads: Vec<(usize, usize, u64, i64)> = Vec::new(); // invoke, completion, process, value
    for c in &calls {
        let inv = &h.events[c.invoke];
        let done = c.completion.map(|p| (p, h.events[p].kind));
        if inv.f == "add" {
            let n = json_int(&inv.value)
                .map_err(|m| syntax_at(h, c.invoke, format!("add value {m}")))?;
            match done {
                Some((p, EventType::Ok)) => {
                    done_ok.push((p, n));
                    invoked.push((c.invoke, n));
                }
                Some((_, EventType::Fail)) => {}
                _ => invoked.push((c.invoke, n)),
            }
        } else if let Some((p, EventType::Ok)) = done {
            let v = json_int(&h.events[p].value)
                .map_err(|m| syntax_at(h, p, format!("read value {m}")))?;
            reads.push((c.invoke, p, c.process, v));
        }
    }
    let ok_adds = done_ok.len();
    let info_adds = invoked.len() - ok_adds;
    let definite = Sums::new(done_ok);
    let possible = Sums::new(invoked);
    let cap = opts.max_examples;
    reads.sort_unstable_by_key(|r| r.1);
    let mut violations = 0;
    let mut examples = Vec::new();
    for &(ri, rc, process, v) in &reads {
        let (d, d_neg, d_pos) = definite.before(ri);
        let (_, p_neg, p_pos) = possible.before(rc);
        let base = opts.initial as i128 + d;
        let (lower, upper) = (base + (p_neg - d_neg), base + (p_pos - d_pos));
        if (lower..=upper).contains(&(v as i128)) {
            continue;
        }
        violations += 1;
        if examples.len() < cap {
            let e = &h.events[rc];
            let clamp = |x: i128| x.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
            examples.push(CounterViolation {
                index: e.index,
                time: e.time,
                process,
                line: crate::txn::line_at(h, rc),
                value: v,
                lower: clamp(lower),
                upper: clamp(upper),
                explanation: format!(
                    "the read invoked at index {} and completed at index {} (process {process}) returned {v}, but adds certainly done before it began bring the counter to {base} and those that could have happened by its end allow only {lower} to {upper}",
                    h.events[ri].index, e.index
                ),
            });
        }
    }
    let verdict = Validity::of(violations > 0, reads.is_empty());
    let explanation = match verdict {
        Validity::Invalid => format!(
            "{violations} of {} reads out of bounds{}",
            reads.len(),
            first(examples.first().map(|e| &e.explanation))
        ),
        Validity::Unknown => NO_READS.to_string(),
        Validity::Valid => format!(
            "all {} reads within their bounds ({ok_adds} acknowledged and {info_adds} indeterminate adds)",
            reads.len()
        ),
    };
    Ok(CounterResult {
        verdict,
        reads: reads.len(),
        ok_adds,
        info_adds,
        violations,
        examples,
        explanation,
    })
}
