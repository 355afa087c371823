//! The multi-register model (Knossos's atomic read/write transactions) and the choice of what
//! a nil read means, on hand-written Jepsen EDN histories (`tests/data/multi-register/`),
//! with a brute-force oracle that replays every order of the completed transactions.

use checkers::history::Operation;
use checkers::import;
use checkers::linearizable::{check, CheckOptions, Verdict};
use checkers::model::{ModelKind, NilReads};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn ops(file: &str) -> Vec<Operation> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/multi-register")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    import::parse(&text, None).unwrap().operations().unwrap()
}

fn verdict(ops: &[Operation], model: ModelKind, init: Value, nil_reads: NilReads) -> Verdict {
    let opts = CheckOptions {
        model: Some(model),
        init,
        nil_reads,
        ..CheckOptions::default()
    };
    check(ops, &opts).unwrap().verdict
}

/// Does some order of the ops, respecting real time, replay legally? Indeterminate ops may be
/// placed anywhere after their call, or left out. Exponential: tiny histories only.
fn brute_force(ops: &[Operation], init: &BTreeMap<String, Value>) -> bool {
    fn go(ops: &[Operation], used: &mut Vec<bool>, state: &BTreeMap<String, Value>) -> bool {
        let pending: Vec<usize> = (0..ops.len()).filter(|&i| !used[i]).collect();
        if pending.iter().all(|&i| ops[i].is_indeterminate()) {
            return true;
        }
        let min_ret = pending
            .iter()
            .filter_map(|&i| ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for &i in &pending {
            if ops[i].call > min_ret {
                continue;
            }
            let mut s = state.clone();
            let Value::Array(mops) = ops[i].output.as_ref().unwrap_or(&ops[i].input) else {
                continue;
            };
            let mut ok = true;
            for m in mops {
                let (f, k, v) = (
                    m[0].as_str().unwrap(),
                    m[1].as_str().unwrap().to_string(),
                    &m[2],
                );
                if f == "write" {
                    s.insert(k, v.clone());
                } else if !ops[i].is_indeterminate() && s.get(&k) != Some(v) {
                    ok = false;
                }
            }
            if ok {
                used[i] = true;
                if go(ops, used, &s) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    go(ops, &mut vec![false; ops.len()], init)
}

#[test]
fn atomic_transactions_pass_and_a_torn_one_fails() {
    let init = json!({"x": 0, "y": 0});
    let zero: BTreeMap<String, Value> = [("x".into(), json!(0)), ("y".into(), json!(0))].into();
    let good = ops("good.edn");
    assert!(brute_force(&good, &zero));
    assert_eq!(
        verdict(
            &good,
            ModelKind::MultiRegister,
            init.clone(),
            NilReads::Value
        ),
        Verdict::Linearizable
    );
    let torn = ops("torn.edn");
    assert!(!brute_force(&torn, &zero));
    assert_eq!(
        verdict(
            &torn,
            ModelKind::MultiRegister,
            init.clone(),
            NilReads::Value
        ),
        Verdict::Illegal
    );
    // The model is inferred from `txn`.
    assert_eq!(ModelKind::infer(&torn), ModelKind::MultiRegister);
    // Without the initial values the first read of 0 could never be explained.
    assert_eq!(
        verdict(
            &good,
            ModelKind::MultiRegister,
            Value::Null,
            NilReads::Value
        ),
        Verdict::Illegal
    );
}

#[test]
fn a_nil_read_is_a_value_by_default_and_unknown_on_request() {
    let h = ops("nil-read.edn");
    assert_eq!(
        verdict(&h, ModelKind::CasRegister, Value::Null, NilReads::Value),
        Verdict::Illegal,
        "nil is a value: the register held 5"
    );
    assert_eq!(
        verdict(&h, ModelKind::CasRegister, Value::Null, NilReads::Unknown),
        Verdict::Linearizable,
        "Knossos's reading: a nil read matches any value"
    );
}
