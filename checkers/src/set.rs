//! The set workload's checker: clients add unique integers to a set and read it back. An
//! acknowledged add must be in the final read (else it is lost); no read may show an element
//! nobody added, or whose add definitely failed (unexpected); an add of unknown outcome that
//! shows up is fine (recovered); and an acknowledged add missing from a read that began after
//! it completed, yet visible in a later read, is a stale read (invalid only when fresh reads
//! are required, e.g. for a linearizable store).
//!
//! # History shape
//!
//! ```text
//! {"type":"invoke","f":"add","value":17, ...}      {"type":"ok","f":"add","value":17, ...}
//! {"type":"invoke","f":"read","value":null, ...}   {"type":"ok","f":"read","value":[1,17,3], ...}
//! ```
//!
//! The final reads are the `ok` reads invoked after the last add event (invoke or
//! completion); if there is none, the last `ok` read stands in, and the result says so. An
//! element is lost when the last of them lacks it (an earlier final read that lacks it while
//! a later read shows it is a stale read instead); recovered when any of them shows it.
//! Real-time order is history order.

use crate::history::{EventType, History, HistoryError};
use crate::txn::{json_int, pair_calls, syntax_at, Validity, NO_READS};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// What to check.
#[derive(Debug, Clone)]
pub struct SetOptions {
    /// Stale reads make the history invalid (a linearizable set); else they are reported only.
    pub require_fresh_reads: bool,
    /// Examples kept per kind (all are counted).
    pub max_examples: usize,
}

impl Default for SetOptions {
    fn default() -> Self {
        SetOptions {
            require_fresh_reads: false,
            max_examples: 16,
        }
    }
}

/// One element's problem (or recovery).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElementCase {
    /// The element.
    pub element: i64,
    /// History index of the add's completion (or invoke), if it was ever added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_index: Option<u64>,
    /// History index of the read that shows the problem.
    pub read_index: u64,
    /// What happened, in one sentence.
    pub explanation: String,
}

/// A count and the first few cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Elements {
    /// How many elements.
    pub count: usize,
    /// The first few, in element order.
    pub examples: Vec<ElementCase>,
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetResult {
    /// `invalid` if anything is lost or unexpected (or stale, when fresh reads are required);
    /// `unknown` if no read completed; else `valid`.
    pub verdict: Validity,
    /// Adds invoked.
    pub attempted: usize,
    /// Adds acknowledged (`ok`).
    pub acknowledged: usize,
    /// Adds with unknown outcome (`info`).
    pub indeterminate: usize,
    /// `ok` reads.
    pub reads: usize,
    /// History indices of the final reads used.
    pub final_reads: Vec<u64>,
    /// Acknowledged adds missing from a final read.
    pub lost: Elements,
    /// Elements read that were never added, or whose add failed.
    pub unexpected: Elements,
    /// Adds of unknown outcome present in a final read.
    pub recovered: Elements,
    /// Acknowledged adds missing from a read that began after they completed, though a later
    /// read shows them.
    pub stale: Elements,
    /// Reads that missed an element that way.
    pub stale_reads: usize,
    /// The verdict in a sentence or two.
    pub explanation: String,
}

struct Add {
    status: EventType,
    invoke: usize,
    done: Option<usize>,
}

struct Read {
    invoke: usize,
    done: usize,
    elems: HashSet<i64>,
}

/// Checks a set history.
pub fn check(h: &History, opts: &SetOptions) -> Result<SetResult, HistoryError> {
    let calls = pair_calls(h, |f| f == "add" || f == "read")?;
    let mut adds: HashMap<i64, Add> = HashMap::new();
    let mut reads: Vec<Read> = Vec::new();
    let mut last_add_event = None;
    let (mut attempted, mut acknowledged, mut indeterminate) = (0, 0, 0);
    for c in &calls {
        let inv = &h.events[c.invoke];
        let done = c.completion.map(|p| (p, &h.events[p]));
        let status = done.map_or(EventType::Info, |(_, e)| e.kind);
        if inv.f == "add" {
            let v = json_int(&inv.value)
                .map_err(|m| syntax_at(h, c.invoke, format!("add value {m}")))?;
            attempted += 1;
            match status {
                EventType::Ok => acknowledged += 1,
                EventType::Info => indeterminate += 1,
                _ => {}
            }
            last_add_event = Some(c.completion.unwrap_or(c.invoke).max(c.invoke));
            let rank = |s: EventType| match s {
                EventType::Ok => 2,
                EventType::Info => 1,
                _ => 0,
            };
            // A value added twice counts by its best outcome.
            let better = adds.get(&v).is_none_or(|a| rank(status) > rank(a.status));
            if better {
                adds.insert(
                    v,
                    Add {
                        status,
                        invoke: c.invoke,
                        done: c.completion.filter(|_| status != EventType::Info),
                    },
                );
            }
        } else if let Some((p, e)) = done.filter(|(_, e)| e.kind == EventType::Ok) {
            let Value::Array(items) = &e.value else {
                return Err(syntax_at(
                    h,
                    p,
                    format!("a completed read's value must be a list, got {}", e.value),
                ));
            };
            let elems = items
                .iter()
                .map(|x| json_int(x).map_err(|m| syntax_at(h, p, format!("read element {m}"))))
                .collect::<Result<_, _>>()?;
            reads.push(Read {
                invoke: c.invoke,
                done: p,
                elems,
            });
        }
    }
    reads.sort_by_key(|r| r.invoke);
    let idx = |p: usize| h.events[p].index;
    let mut finals: Vec<&Read> = reads
        .iter()
        .filter(|r| last_add_event.is_none_or(|l| r.invoke > l))
        .collect();
    let stand_in = finals.is_empty();
    if stand_in {
        finals.extend(reads.iter().max_by_key(|r| r.done));
    }
    let cap = opts.max_examples;
    let mut lost = Elements::default();
    let mut recovered = Elements::default();
    let mut unexpected = Elements::default();
    let mut sorted: Vec<(&i64, &Add)> = adds.iter().collect();
    sorted.sort_by_key(|(v, _)| **v);
    // Lost: missing from the last final read, so no later read can show it (a final read
    // that misses it while a later one shows it is a stale read). Recovered: in any final read.
    let last = finals.iter().copied().max_by_key(|r| r.invoke);
    for (&v, a) in &sorted {
        let case = match a.status {
            EventType::Ok => last.filter(|f| !f.elems.contains(&v)).map(|f| {
                (&mut lost, f, format!(
                    "the add of {v} was acknowledged (index {}) but the final read at index {} does not contain it",
                    idx(a.done.unwrap_or(a.invoke)), idx(f.done)
                ))
            }),
            EventType::Info => finals.iter().find(|f| f.elems.contains(&v)).map(|f| {
                (&mut recovered, *f, format!(
                    "the add of {v} had an unknown outcome (invoked at index {}) and the final read at index {} shows it took effect",
                    idx(a.invoke), idx(f.done)
                ))
            }),
            _ => None,
        };
        if let Some((bucket, f, text)) = case {
            push(
                bucket,
                cap,
                ElementCase {
                    element: v,
                    add_index: Some(idx(a.done.unwrap_or(a.invoke))),
                    read_index: idx(f.done),
                    explanation: text,
                },
            );
        }
    }
    // Unexpected: per element, its first read.
    let mut seen_unexpected: HashSet<i64> = HashSet::new();
    let mut bad: Vec<(i64, &Read)> = Vec::new();
    for r in &reads {
        for &v in &r.elems {
            let never = adds.get(&v).is_none_or(|a| a.status == EventType::Fail);
            if never && seen_unexpected.insert(v) {
                bad.push((v, r));
            }
        }
    }
    bad.sort_by_key(|(v, _)| *v);
    for (v, r) in bad {
        let text = match adds.get(&v) {
            Some(a) => format!(
                "the read at index {} shows {v}, but the add of {v} failed (index {}), so it never happened",
                idx(r.done),
                idx(a.done.unwrap_or(a.invoke))
            ),
            None => format!("the read at index {} shows {v}, which nobody added", idx(r.done)),
        };
        push(
            &mut unexpected,
            cap,
            ElementCase {
                element: v,
                add_index: adds.get(&v).map(|a| idx(a.done.unwrap_or(a.invoke))),
                read_index: idx(r.done),
                explanation: text,
            },
        );
    }
    let (stale, stale_reads) = stale(&reads, &sorted, cap, &idx);
    let verdict = Validity::of(
        lost.count > 0 || unexpected.count > 0 || (opts.require_fresh_reads && stale.count > 0),
        reads.is_empty(),
    );
    let explanation = match verdict {
        Validity::Unknown => NO_READS.to_string(),
        _ => format!(
            "{} of {attempted} adds acknowledged; {} lost, {} unexpected, {} recovered, {} stale ({} reads){}",
            acknowledged,
            lost.count,
            unexpected.count,
            recovered.count,
            stale.count,
            stale_reads,
            if stand_in {
                format!(
                    "; no read began after the last add, so the last read (index {}) served as the final read",
                    finals.first().map_or(0, |r| idx(r.done))
                )
            } else {
                String::new()
            }
        ),
    };
    Ok(SetResult {
        verdict,
        attempted,
        acknowledged,
        indeterminate,
        reads: reads.len(),
        final_reads: finals.iter().map(|r| idx(r.done)).collect(),
        lost,
        unexpected,
        recovered,
        stale,
        stale_reads,
        explanation,
    })
}

fn push(e: &mut Elements, cap: usize, c: ElementCase) {
    e.count += 1;
    if e.examples.len() < cap {
        e.examples.push(c);
    }
}

/// Acknowledged elements missing from reads that began after the add completed, though a
/// later read shows them. Linear in the input: each element's reads come from the reads'
/// own element lists.
fn stale(
    reads: &[Read],
    adds: &[(&i64, &Add)],
    cap: usize,
    idx: &dyn Fn(usize) -> u64,
) -> (Elements, usize) {
    let mut containing: HashMap<i64, Vec<usize>> = HashMap::new(); // element -> read ranks
    for (i, r) in reads.iter().enumerate() {
        for &v in &r.elems {
            containing.entry(v).or_default().push(i);
        }
    }
    let mut out = Elements::default();
    let mut bad_reads: HashSet<usize> = HashSet::new();
    for (&v, a) in adds {
        let (EventType::Ok, Some(done)) = (a.status, a.done) else {
            continue;
        };
        let Some(has) = containing.get(&v) else {
            continue;
        };
        let last = *has.last().expect("non-empty");
        let first = reads.partition_point(|r| r.invoke <= done);
        let mut missing = Vec::new();
        let mut j = 0;
        for i in first..last {
            while j < has.len() && has[j] < i {
                j += 1;
            }
            if has.get(j) != Some(&i) {
                missing.push(i);
            }
        }
        if let Some(&m) = missing.first() {
            bad_reads.extend(missing.iter().copied());
            push(&mut out, cap, ElementCase {
                element: v,
                add_index: Some(idx(done)),
                read_index: idx(reads[m].done),
                explanation: format!(
                    "the add of {v} was acknowledged at index {}, yet {} read(s) begun after that miss it (first: index {}), while the later read at index {} shows it",
                    idx(done),
                    missing.len(),
                    idx(reads[m].done),
                    idx(reads[last].done)
                ),
            });
        }
    }
    (out, bad_reads.len())
}
