//! Helpers shared by the checker's integration tests: a brute-force linearizability oracle
//! that uses none of the checker's code or reductions, to judge small histories.

#![allow(dead_code)]

use checkers::history::Operation;
use checkers::model::ModelKind;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// Every order of `ops` respecting real time, with every subset of indeterminate ops, replayed
/// from `init` on a register (read/write/cas, Jepsen semantics; an `ok` cas whose output is
/// `false` ran and found another value) or a kv string (get/put/append): is one legal?
/// A plain memoized enumeration of (placed ops, state); none of the checker's reductions.
pub fn brute_force(ops: &[Operation], init: &Value) -> bool {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    fn apply(op: &Operation, state: &Value) -> Option<Value> {
        match op.f.as_str() {
            "read" => (op.output.as_ref().unwrap_or(&Value::Null) == state).then(|| state.clone()),
            "write" | "put" => Some(op.input.clone()),
            "get" => (op.output.as_ref().map(text) == Some(text(state))).then(|| state.clone()),
            "append" => Some(Value::String(text(state) + &text(&op.input))),
            "cas" if op.output == Some(Value::Bool(false)) => {
                (op.input[0] != *state).then(|| state.clone())
            }
            _ => (op.input[0] == *state).then(|| op.input[1].clone()),
        }
    }
    type Seen = HashSet<(Vec<bool>, Value)>;
    fn go(ops: &[Operation], placed: &mut Vec<bool>, state: &Value, seen: &mut Seen) -> bool {
        // A configuration reached before failed (the search stops at the first success).
        if !seen.insert((placed.clone(), state.clone())) {
            return false;
        }
        // Done when every determinate op is placed (indeterminate ones may never happen).
        if ops
            .iter()
            .zip(placed.iter())
            .all(|(o, &p)| p || o.ret.is_none())
        {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // i may go next only if no unplaced op returned before i was invoked.
            let blocked = ops
                .iter()
                .enumerate()
                .any(|(j, o)| !placed[j] && j != i && o.ret.is_some_and(|r| r < ops[i].call));
            if blocked {
                continue;
            }
            if let Some(next) = apply(&ops[i], state) {
                placed[i] = true;
                if go(ops, placed, &next, seen) {
                    return true;
                }
                placed[i] = false;
            }
        }
        false
    }
    go(ops, &mut vec![false; ops.len()], init, &mut Seen::new())
}

/// [`brute_force`] per key (keys are independent objects), with the model's initial value
/// (nil for registers, "" for kv).
pub fn brute_force_per_key(ops: &[Operation], model: ModelKind) -> bool {
    let init = match model {
        ModelKind::Kv => Value::String(String::new()),
        _ => Value::Null,
    };
    let mut by_key: BTreeMap<Option<String>, Vec<Operation>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.clone()).or_default().push(op.clone());
    }
    by_key.values().all(|part| brute_force(part, &init))
}

/// The rows of an `expected.tsv` (a header, then `file<TAB>model<TAB>verdict`), as in the
/// shared Porcupine corpus and the in-repo one; a malformed row fails naming its line.
pub fn expected_verdicts(
    tsv: &std::path::Path,
) -> Vec<(String, ModelKind, checkers::linearizable::Verdict)> {
    use checkers::linearizable::Verdict;
    let text = std::fs::read_to_string(tsv)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", tsv.display()));
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            let at = format!("{}:{}", tsv.display(), n + 1);
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "{at}: expected file, model, verdict");
            let verdict = match f[2] {
                "linearizable" => Verdict::Linearizable,
                "illegal" => Verdict::Illegal,
                other => panic!("{at}: unknown verdict {other:?}"),
            };
            let model = f[1].parse().unwrap_or_else(|e| panic!("{at}: {e}"));
            (f[0].to_string(), model, verdict)
        })
        .collect()
}
