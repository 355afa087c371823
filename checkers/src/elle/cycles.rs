//! Finding and classifying dependency cycles (Elle §4.3): strongly connected components of
//! the model's graph first (every cycle lies inside one), then, inside each, one search per
//! cycle class the model prohibits, most severe first, skipping classes a found cycle already
//! implies. Each found cycle is classified by the relations its edges were taken for, and
//! explained edge by edge.
//!
//! When the time budget runs out, each remaining component still gets one cycle from a single
//! linear BFS (so a non-serializable history is never called valid), classified by its edges.

use super::findings::Findings;
use super::graph::{
    any_cycle, find_cycle, nontrivial, scc, simple_cycles, Cycle as Walk, CycleSpec, Graph,
    OutOfTime, RwRule, Scratch, DATA, PROCESS, REALTIME, RW, WR, WW,
};
use super::model::Cycle;
use super::{Anomaly, ConsistencyModel, CycleStep, Relation, TxnRef};
use crate::txn::Txn;
use std::time::Instant;

/// Explains a data edge: `(a, b, relation)` to `(key, sentence)`.
pub(crate) type Explainer<'e> = dyn Fn(u32, u32, u8) -> Option<(String, String)> + 'e;

/// What the cycle search saw.
pub(crate) struct Outcome {
    /// Strongly connected components with a cycle.
    pub components: usize,
    /// Transactions in the largest of them.
    pub largest: usize,
    /// Set when the budget cut the search short.
    pub incomplete: Option<String>,
}

fn spec(c: Cycle) -> CycleSpec {
    let x = match c.variant {
        1 => PROCESS,
        2 => REALTIME,
        _ => 0,
    };
    match c.base {
        0 => CycleSpec {
            allowed: WW | x,
            rw: RwRule::Zero,
            need_a: x,
            need_b: 0,
        },
        1 => CycleSpec {
            allowed: WW | WR | x,
            rw: RwRule::Zero,
            need_a: WR,
            need_b: x,
        },
        2 => CycleSpec {
            allowed: WW | WR | x,
            rw: RwRule::One,
            need_a: x,
            need_b: 0,
        },
        _ => CycleSpec {
            allowed: WW | WR | x,
            rw: RwRule::TwoPlus,
            need_a: x,
            need_b: 0,
        },
    }
}

/// The class of a cycle, from the relations its steps were taken for.
pub(crate) fn classify(walk: &Walk) -> Cycle {
    let count = |l: u8| walk.iter().filter(|s| s.2 == l).count();
    let rw = count(RW);
    let base = match rw {
        0 if count(WR) > 0 => 1,
        0 => 0,
        1 => 2,
        _ => 3,
    };
    let variant = if count(REALTIME) > 0 {
        2
    } else if count(PROCESS) > 0 {
        1
    } else {
        0
    };
    Cycle { base, variant }
}

/// Searches every cyclic component of `g` for the cycle classes `model` prohibits.
pub(crate) fn search(
    g: &Graph,
    txns: &[Txn],
    model: ConsistencyModel,
    deadline: Option<Instant>,
    explain: &Explainer,
    f: &mut Findings,
) -> Outcome {
    let mask = DATA
        | match model.variant() {
            1 => PROCESS,
            2 => REALTIME,
            _ => 0,
        };
    let (comp, n) = scc(g, mask);
    let mut comps = nontrivial(&comp, n);
    comps.sort_by_key(Vec::len);
    let order = model.cycle_search_order();
    let mut local = vec![u32::MAX; g.len()];
    let mut scratch = Scratch::default();
    let mut out_of_time = false;
    let mut cut_at = 0;
    for (ci, vs) in comps.iter().enumerate() {
        let lg = g.induced(vs, mask, &mut local);
        let mut found: Vec<Cycle> = Vec::new();
        if !out_of_time {
            for &c in &order {
                if found.iter().any(|x| x.implies(c)) {
                    continue;
                }
                match find_cycle(&lg, spec(c), &mut scratch, deadline) {
                    Ok(Some(walk)) => {
                        let got = record(&walk, vs, Some(c), model, txns, explain, f);
                        found.push(got);
                    }
                    Ok(None) => {}
                    Err(OutOfTime) => {
                        out_of_time = true;
                        cut_at = ci;
                        break;
                    }
                }
            }
        }
        if out_of_time && found.is_empty() {
            if let Some(walk) = any_cycle(&lg, mask) {
                record(&walk, vs, None, model, txns, explain, f);
            }
        }
    }
    Outcome {
        components: comps.len(),
        largest: comps.last().map_or(0, Vec::len),
        incomplete: out_of_time.then(|| {
            format!(
                "the time budget ran out while classifying cycles in component {} of {} ({} transactions); components from there on were reported with one cycle each, found by a plain search, so more severe classes may exist there",
                cut_at + 1,
                comps.len(),
                comps[cut_at].len()
            )
        }),
    }
}

/// Records the simple cycle inside `walk` that best matches `want` (a walk from the
/// product-graph search may pass a vertex twice); returns its class.
fn record(
    walk: &Walk,
    vs: &[u32],
    want: Option<Cycle>,
    model: ConsistencyModel,
    txns: &[Txn],
    explain: &Explainer,
    f: &mut Findings,
) -> Cycle {
    let parts = simple_cycles(walk);
    let pick = parts
        .iter()
        .find(|p| Some(classify(p)) == want)
        .or_else(|| parts.iter().find(|p| model.prohibits(classify(p).class())))
        .unwrap_or(&parts[0]);
    let class = classify(pick);
    let global: Walk = pick
        .iter()
        .map(|&(a, b, l)| (vs[a as usize], vs[b as usize], l))
        .collect();
    f.push(class.class(), || describe(&global, class, txns, explain));
    class
}

fn relation(l: u8) -> Relation {
    match l {
        WW => Relation::Ww,
        WR => Relation::Wr,
        RW => Relation::Rw,
        PROCESS => Relation::Process,
        _ => Relation::Realtime,
    }
}

fn describe(walk: &Walk, class: Cycle, txns: &[Txn], explain: &Explainer) -> Anomaly {
    let name = |t: u32| super::txn_name(&txns[t as usize]);
    let mut steps = Vec::with_capacity(walk.len());
    for &(a, b, l) in walk {
        let (ta, tb) = (&txns[a as usize], &txns[b as usize]);
        let (key, explanation) = match l {
            PROCESS => (
                None,
                format!("process {} ran {} before {}", ta.process, name(a), name(b)),
            ),
            REALTIME => (
                None,
                format!(
                    "{} completed (index {}) before {} was invoked (index {})",
                    name(a),
                    ta.complete_index.unwrap_or(ta.invoke_index),
                    name(b),
                    tb.invoke_index
                ),
            ),
            _ => match explain(a, b, l) {
                Some((k, s)) => (Some(k), s),
                None => (
                    None,
                    format!("{} -{}-> {}", name(a), relation(l).name(), name(b)),
                ),
            },
        };
        steps.push(CycleStep {
            from: name(a),
            to: name(b),
            relation: relation(l),
            key,
            explanation,
        });
    }
    let mut arrows = name(walk[0].0);
    for &(_, b, l) in walk {
        arrows.push_str(&format!(" -{}-> {}", relation(l).name(), name(b)));
    }
    let because: Vec<String> = steps.iter().map(|s| s.explanation.clone()).collect();
    Anomaly {
        class: class.class(),
        txns: walk
            .iter()
            .map(|&(a, _, _)| TxnRef::of(&txns[a as usize]))
            .collect(),
        steps,
        key: None,
        explanation: format!(
            "{}: {arrows}. {}.",
            class.class().name(),
            because.join("; ")
        ),
    }
}
