//! Jepsen EDN list-append histories (`checkers/tests/data/elle/`), imported through
//! `checkers::import` (which turns `:txn` values into the JSON micro-op shape) and checked:
//! each file's known anomalies are found, naming the transactions by their `:index` and the
//! lines they are on.

use checkers::elle::{check_history, AnomalyClass, CheckOptions, ConsistencyModel, ElleResult};
use checkers::import;
use checkers::txn::{self, Validity};
use serde_json::json;
use std::path::PathBuf;

use AnomalyClass::*;
use ConsistencyModel::*;

fn load(file: &str) -> checkers::history::History {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/elle")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("test data is in the repo");
    import::parse(&text, None).expect("parses as EDN")
}

fn run(file: &str, model: ConsistencyModel) -> ElleResult {
    check_history(
        &load(file),
        &CheckOptions {
            model,
            ..CheckOptions::default()
        },
    )
    .expect("transactions parse")
}

fn found(r: &ElleResult) -> Vec<AnomalyClass> {
    r.counts.keys().copied().collect()
}

#[test]
fn txn_values_import_as_json_micro_ops() {
    let h = load("g1c.edn");
    assert_eq!(h.events[2].value, json!([["append", 1, 1], ["r", 2, [1]]]));
    assert_eq!(h.events[0].value, json!([["append", 1, 1], ["r", 2, null]]));
    assert_eq!(
        h.events[2].key, None,
        "a two-mop txn is not an independent [key value] tuple"
    );
    let t = txn::parse(&h).expect("parses");
    assert_eq!(t.len(), 3);
    // Line numbers are the file's (comment line 1 and 2 come first).
    assert_eq!((t[0].invoke_line, t[0].complete_line), (3, Some(5)));
    let w = load("write-skew.edn");
    assert_eq!(
        w.events[2].value,
        json!([["r", "x", []], ["append", "y", 10]])
    );
}

#[test]
fn g1c_file() {
    let r = run("g1c.edn", Serializable);
    assert_eq!(r.verdict, Validity::Invalid);
    assert_eq!(found(&r), vec![G1c]);
    let a = &r.anomalies[&G1c][0];
    let mut names: Vec<&str> = a.txns.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["T2", "T3"]);
    let lines: Vec<usize> = a.txns.iter().map(|t| t.line).collect();
    assert!(lines.contains(&5) && lines.contains(&6), "{lines:?}");
    assert!(
        a.explanation
            .contains("T3 read 1 = [1], whose last element 1 T2 appended"),
        "{}",
        a.explanation
    );
}

#[test]
fn write_skew_file() {
    let r = run("write-skew.edn", Serializable);
    assert_eq!(found(&r), vec![G2Item], "{}", r.explanation);
    let a = &r.anomalies[&G2Item][0];
    assert!(
        a.explanation.contains("T2 read x as empty, missing 20, which T3 appended as the first element of x (T5's read of x, [20], shows that order)"),
        "{}",
        a.explanation
    );
    assert_eq!(
        run("write-skew.edn", SnapshotIsolation).verdict,
        Validity::Valid
    );
}

#[test]
fn aborted_read_file() {
    let r = run("aborted-read.edn", ReadCommitted);
    assert_eq!(r.verdict, Validity::Invalid);
    assert_eq!(found(&r), vec![G1a, DirtyUpdate], "{}", r.explanation);
    assert_eq!(
        r.anomalies[&G1a][0].explanation,
        "T8 read 7 = [1 2], which includes 1, appended by T1, a transaction that failed (aborted)"
    );
    assert_eq!((r.txns.ok, r.txns.fail, r.txns.info), (2, 1, 1));
}

#[test]
fn stale_read_file() {
    assert_eq!(run("stale-read.edn", Serializable).verdict, Validity::Valid);
    let r = run("stale-read.edn", StrictSerializable);
    assert_eq!(found(&r), vec![GSingleRealtime], "{}", r.explanation);
    let a = &r.anomalies[&GSingleRealtime][0];
    assert!(
        a.explanation
            .contains("T1 completed (index 1) before T3 was invoked (index 2)"),
        "{}",
        a.explanation
    );
    assert!(
        a.explanation
            .contains("T3 read k as empty, missing 5, which T1 appended as the first element of k"),
        "{}",
        a.explanation
    );
}

#[test]
fn valid_file_is_valid_under_every_model() {
    for m in ConsistencyModel::ALL {
        let r = run("valid.edn", m);
        assert_eq!(r.verdict, Validity::Valid, "{m}: {}", r.explanation);
        assert_eq!((r.txns.ok, r.txns.fail, r.txns.info), (4, 1, 2));
    }
}

#[test]
fn a_malformed_txn_in_edn_names_its_line() {
    let text = "{:type :invoke, :f :txn, :value [[:append 1 1]], :process 0, :index 0}\n\
                {:type :ok, :f :txn, :value [[:append 1 1] :oops], :process 0, :index 1}\n";
    let e = import::parse(text, None)
        .expect_err("bad micro-op")
        .to_string();
    assert_eq!(
        e,
        "line 2: micro-op 1: expected [f key value], got \"oops\""
    );
    let text = "{:type :invoke, :f :txn, :value [[:append 1 \"x\"]], :process 0, :index 0}\n";
    let h = import::parse(text, None).expect("EDN shape is fine");
    let e = txn::parse(&h).expect_err("non-integer append").to_string();
    assert!(
        e.starts_with("line 1: micro-op 0: append value must be an integer"),
        "{e}"
    );
}
