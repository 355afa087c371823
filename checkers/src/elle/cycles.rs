//! Finding and classifying dependency cycles (Elle §4.3): strongly connected components of
//! the model's graph first (every cycle lies inside one), then, inside each, one search per
//! cycle class the model prohibits, most severe first, skipping classes a found cycle already
//! implies, and using a plain any-cycle search where the classes already ruled out make any
//! cycle one of the class sought. Each found cycle is mapped back to transactions (hub
//! vertices merged away), classified by the relations its edges were taken for, and
//! explained edge by edge.
//!
//! When the time budget runs out, each remaining component still gets one cycle from a single
//! linear BFS (so a non-serializable history is never called valid), classified by its edges.

use super::findings::Findings;
use super::graph::{
    find_any, find_cycle, merge_hubs, nontrivial, scc, simple_cycles, Cycle as Walk, CycleSpec,
    Graph, OutOfTime, RwRule, Scratch, DATA, PROCESS, REALTIME, RW, WR, WW,
};
use super::model::Cycle;
use super::{Anomaly, Because, ConsistencyModel, CycleStep, Relation, StepEvidence, TxnRef};
use crate::txn::Txn;
use std::time::Instant;

/// Explains a data edge: `(a, b, relation)` to `(key, sentence)`.
pub(crate) type Explainer<'e> = dyn Fn(u32, u32, u8) -> Option<Because> + 'e;

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

/// True when every class less severe in rw count (or lacking `c`'s extra order) is known
/// absent from this component, so that any cycle over `c`'s relations is of class `c`: e.g.
/// with no G0 and no G1c and no G-single, every data cycle has two or more rw edges. Not for
/// G-single classes, whose exact search is cheap anyway.
fn any_will_do(c: Cycle, absent: &[Cycle]) -> bool {
    if c.base == 2 {
        return false;
    }
    let variants: &[u8] = if c.variant == 0 {
        &[0]
    } else {
        &[0, c.variant]
    };
    let lesser =
        (0..c.base).flat_map(|base| variants.iter().map(move |&variant| Cycle { base, variant }));
    let same_base = (c.variant != 0).then_some(Cycle {
        base: c.base,
        variant: 0,
    });
    lesser.chain(same_base).all(|d| absent.contains(&d))
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
        let mut absent: Vec<Cycle> = Vec::new();
        if !out_of_time {
            for &c in &order {
                if found.iter().any(|x| x.implies(c)) {
                    continue;
                }
                let sp = spec(c);
                let result = if any_will_do(c, &absent) {
                    Ok(find_any(&lg, sp.mask(), &mut scratch))
                } else {
                    find_cycle(&lg, sp, &mut scratch, deadline)
                };
                match result {
                    Ok(Some(walk)) => {
                        let got = record(&walk, vs, Some(c), model, txns, explain, f);
                        found.push(got);
                    }
                    Ok(None) => absent.push(c),
                    Err(OutOfTime) => {
                        out_of_time = true;
                        cut_at = ci;
                        break;
                    }
                }
            }
        }
        if out_of_time && found.is_empty() {
            if let Some(walk) = find_any(&lg, mask, &mut scratch) {
                record(&walk, vs, None, model, txns, explain, f);
            }
        }
    }
    Outcome {
        components: comps.len(),
        largest: comps
            .iter()
            .map(|c| c.iter().filter(|&&v| (v as usize) < txns.len()).count())
            .max()
            .unwrap_or(0),
        incomplete: out_of_time.then(|| {
            format!(
                "the time budget ran out while classifying cycles in component {} of {} ({} transactions); components from there on were reported with one cycle each, found by a plain search, so more severe classes may exist there",
                cut_at + 1,
                comps.len(),
                comps[cut_at].iter().filter(|&&v| (v as usize) < txns.len()).count()
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
    let global: Walk = walk
        .iter()
        .map(|&(a, b, l)| (vs[a as usize], vs[b as usize], l))
        .collect();
    let parts = simple_cycles(&merge_hubs(&global, txns.len() as u32));
    let pick = parts
        .iter()
        .find(|p| Some(classify(p)) == want)
        .or_else(|| parts.iter().find(|p| model.prohibits(classify(p).class())))
        .unwrap_or(&parts[0]);
    let class = classify(pick);
    f.push(class.class(), || describe(pick, class, txns, explain));
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
        let (key, evidence, explanation) = match l {
            PROCESS => (
                None,
                None,
                format!("process {} ran {} before {}", ta.process, name(a), name(b)),
            ),
            REALTIME => (
                None,
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
                Some(Because {
                    key,
                    text,
                    from_mop,
                    to_mop,
                }) => {
                    let evidence = match (ta.mops.get(from_mop), tb.mops.get(to_mop)) {
                        (Some(f), Some(t)) => Some(StepEvidence {
                            from: f.clone(),
                            to: t.clone(),
                        }),
                        _ => None,
                    };
                    (Some(key), evidence, text)
                }
                None => (
                    None,
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
            evidence,
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
