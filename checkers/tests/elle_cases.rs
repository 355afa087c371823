//! Hand-written list-append histories with known anomalies: each class is found, named and
//! explained with the right transactions, keys and values; the model table decides validity;
//! bad input gives errors naming lines or an `unknown` verdict saying why, never a panic.

use checkers::elle::{
    check, check_history, AnomalyClass, CheckOptions, ConsistencyModel, ElleResult, Relation,
};
use checkers::history::{Event, EventType, History, Process};
use checkers::txn::{self, Mop, ReadValue, TxnStatus, Validity};
use serde_json::{json, Value};
use std::time::Duration;

use AnomalyClass::*;
use ConsistencyModel::*;

/// Builds a history from `(type, process, micro-ops)`: index = position, time = 10 × position.
/// Invokes get the same micro-ops with every read's value replaced by null.
fn h(steps: &[(&str, u64, Value)]) -> History {
    let events = steps
        .iter()
        .enumerate()
        .map(|(i, (ty, p, v))| {
            let kind = match *ty {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                _ => EventType::Info,
            };
            let value = if kind == EventType::Ok {
                v.clone()
            } else {
                null_reads(v)
            };
            Event {
                index: i as u64,
                time: i as u64 * 10,
                process: Process::Client(*p),
                kind,
                f: "txn".into(),
                key: None,
                value,
                node: None,
                error: None,
            }
        })
        .collect();
    History::from_events(events)
}

fn null_reads(v: &Value) -> Value {
    match v {
        Value::Array(mops) => Value::Array(
            mops.iter()
                .map(|m| match m.as_array() {
                    Some(p) if p.len() == 3 && p[0] == "r" => json!(["r", p[1], null]),
                    _ => m.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Each transaction runs alone: invoke then completion.
fn serial(txns: &[(&str, u64, Value)]) -> History {
    let mut steps = Vec::new();
    for (ty, p, v) in txns {
        steps.push(("invoke", *p, v.clone()));
        steps.push((*ty, *p, v.clone()));
    }
    h(&steps)
}

/// T2 and T3 each read the other's append (wr both ways).
fn g1c_history() -> History {
    h(&[
        ("invoke", 0, json!([["append", "x", 1], ["r", "y", null]])),
        ("invoke", 1, json!([["append", "y", 1], ["r", "x", null]])),
        ("ok", 0, json!([["append", "x", 1], ["r", "y", [1]]])),
        ("ok", 1, json!([["append", "y", 1], ["r", "x", [1]]])),
    ])
}

/// T2 and T3 each read a key empty and append to the key the other read (rw both ways); the
/// second reads null, which list-append treats as the empty list.
fn write_skew() -> History {
    h(&[
        ("invoke", 0, json!([["r", "x", null], ["append", "y", 1]])),
        ("invoke", 1, json!([["r", "y", null], ["append", "x", 1]])),
        ("ok", 0, json!([["r", "x", []], ["append", "y", 1]])),
        ("ok", 1, json!([["r", "y", null], ["append", "x", 1]])),
    ])
}

fn run(history: &History, model: ConsistencyModel) -> ElleResult {
    check_history(
        history,
        &CheckOptions {
            model,
            ..CheckOptions::default()
        },
    )
    .expect("parses")
}

/// `text` contains `want`; the failure shows the whole text.
fn says(text: &str, want: &str) {
    assert!(text.contains(want), "expected {want:?} in:\n{text}");
}

/// `text` starts with `want`.
fn starts(text: &str, want: &str) {
    assert!(
        text.starts_with(want),
        "expected {want:?} at the start of:\n{text}"
    );
}

/// The only `class` anomaly reads exactly `want`.
fn explained(r: &ElleResult, class: AnomalyClass, want: &str) {
    assert_eq!(only(r, class).explanation, want);
}

/// Every class in `cs` was found.
fn has_all(r: &ElleResult, cs: &[AnomalyClass]) {
    for c in cs {
        assert!(
            r.counts.contains_key(c),
            "{} missing: {}",
            c.name(),
            r.explanation
        );
    }
}

fn classes(r: &ElleResult) -> Vec<AnomalyClass> {
    r.counts.keys().copied().collect()
}

fn only(r: &ElleResult, c: AnomalyClass) -> &checkers::elle::Anomaly {
    let v = &r.anomalies[&c];
    assert_eq!(v.len(), 1, "{}", r.explanation);
    &v[0]
}

#[test]
fn a_serial_history_is_valid_under_every_model() {
    let hist = serial(&[
        ("ok", 0, json!([["append", "x", 1], ["r", "y", null]])),
        ("ok", 1, json!([["r", "x", [1]], ["append", "y", 1]])),
        (
            "ok",
            0,
            json!([["append", "x", 2], ["r", "x", [1, 2]], ["r", "y", [1]]]),
        ),
        ("fail", 1, json!([["append", "y", 2]])),
        ("info", 2, json!([["append", "y", 3]])),
        ("ok", 3, json!([["r", "y", [1, 3]]])),
    ]);
    for m in ConsistencyModel::ALL {
        let r = run(&hist, m);
        assert_eq!(r.verdict, Validity::Valid, "{m}: {}", r.explanation);
        assert!(r.counts.is_empty());
        assert_eq!((r.txns.ok, r.txns.fail, r.txns.info), (4, 1, 1));
    }
}

#[test]
fn g1c_names_both_transactions_and_the_values_they_read() {
    let hist = g1c_history();
    let r = run(&hist, Serializable);
    assert_eq!(r.verdict, Validity::Invalid);
    assert_eq!(classes(&r), vec![G1c]);
    let a = only(&r, G1c);
    let names: Vec<&str> = a.txns.iter().map(|t| t.name.as_str()).collect();
    assert!(names == ["T2", "T3"] || names == ["T3", "T2"], "{names:?}");
    assert!(a.steps.iter().all(|s| s.relation == Relation::Wr));
    says(
        &a.explanation,
        "T3 read x = [1], whose last element 1 T2 appended",
    );
    says(
        &a.explanation,
        "T2 read y = [1], whose last element 1 T3 appended",
    );
    assert_eq!(a.txns[0].process, if names[0] == "T2" { 0 } else { 1 });
    // Read committed prohibits G1c too; the summary names the class and count.
    let rc = run(&hist, ReadCommitted);
    assert_eq!(rc.verdict, Validity::Invalid);
    starts(&rc.explanation, "Not read-committed: G1c ×1");
}

#[test]
fn g0_explains_the_version_order_with_the_read_that_shows_it() {
    let hist = h(&[
        ("invoke", 0, json!([["append", "x", 1], ["append", "y", 1]])),
        ("invoke", 1, json!([["append", "x", 2], ["append", "y", 2]])),
        ("ok", 0, json!([["append", "x", 1], ["append", "y", 1]])),
        ("ok", 1, json!([["append", "x", 2], ["append", "y", 2]])),
        ("invoke", 2, json!([["r", "x", null]])),
        ("ok", 2, json!([["r", "x", [1, 2]]])),
        ("invoke", 3, json!([["r", "y", null]])),
        ("ok", 3, json!([["r", "y", [2, 1]]])),
    ]);
    for m in [ReadCommitted, Serializable, StrictSerializable] {
        let r = run(&hist, m);
        assert_eq!(classes(&r), vec![G0], "{m}: {}", r.explanation);
        let a = only(&r, G0);
        assert!(a.steps.iter().all(|s| s.relation == Relation::Ww));
        says(&a.explanation, "T2 appended 1 to x just before T3 appended 2 (T5's read of x, [1 2], shows that order)");
        says(&a.explanation, "T3 appended 2 to y just before T2 appended 1 (T7's read of y, [2 1], shows that order)");
    }
}

#[test]
fn write_skew_is_g2_item_prohibited_by_serializable_but_not_snapshot_isolation() {
    let hist = write_skew();
    let r = run(&hist, Serializable);
    assert_eq!(classes(&r), vec![G2Item], "{}", r.explanation);
    let a = only(&r, G2Item);
    assert!(a.steps.iter().all(|s| s.relation == Relation::Rw));
    says(
        &a.explanation,
        "T2 read x as empty and no read ever showed an element of x, so it missed T3's append of 1",
    );
    let si = run(&hist, SnapshotIsolation);
    assert_eq!(si.verdict, Validity::Valid, "{}", si.explanation);
    assert!(si.counts.is_empty(), "SI does not search for G2-item");
}

#[test]
fn read_skew_is_g_single_prohibited_by_snapshot_isolation() {
    let hist = h(&[
        ("invoke", 0, json!([["append", "x", 1], ["append", "y", 1]])),
        ("invoke", 1, json!([["r", "x", null], ["r", "y", null]])),
        ("ok", 0, json!([["append", "x", 1], ["append", "y", 1]])),
        ("ok", 1, json!([["r", "x", []], ["r", "y", [1]]])),
    ]);
    let r = run(&hist, SnapshotIsolation);
    assert_eq!(classes(&r), vec![GSingle], "{}", r.explanation);
    let a = only(&r, GSingle);
    let rels: Vec<Relation> = a.steps.iter().map(|s| s.relation).collect();
    assert!(rels.contains(&Relation::Rw) && rels.contains(&Relation::Wr));
    assert_eq!(run(&hist, ReadCommitted).verdict, Validity::Valid);
}

#[test]
fn a_stale_read_needs_real_time_or_process_order() {
    // Process 0 appends, completes, then reads the key empty.
    let hist = serial(&[
        ("ok", 0, json!([["append", "x", 1]])),
        ("ok", 0, json!([["r", "x", []]])),
    ]);
    assert_eq!(run(&hist, Serializable).verdict, Validity::Valid);
    let s = run(&hist, StrictSerializable);
    assert_eq!(classes(&s), vec![GSingleRealtime], "{}", s.explanation);
    let a = only(&s, GSingleRealtime);
    says(
        &a.explanation,
        "T1 completed (index 1) before T3 was invoked (index 2)",
    );
    let p = run(&hist, StrongSessionSerializable);
    assert_eq!(classes(&p), vec![GSingleProcess], "{}", p.explanation);
    assert!(only(&p, GSingleProcess)
        .explanation
        .contains("process 0 ran T1 before T3"));
    // Different processes: real time still orders them, process order does not.
    let hist2 = serial(&[
        ("ok", 0, json!([["append", "x", 1]])),
        ("ok", 1, json!([["r", "x", []]])),
    ]);
    assert_eq!(
        run(&hist2, StrongSessionSerializable).verdict,
        Validity::Valid
    );
    assert_eq!(
        run(&hist2, StrongSnapshotIsolation).verdict,
        Validity::Invalid
    );
}

#[test]
fn aborted_intermediate_dirty_and_garbage_reads() {
    let hist = serial(&[
        ("fail", 0, json!([["append", "x", 1]])),
        ("ok", 1, json!([["append", "x", 2]])),
        ("ok", 2, json!([["r", "x", [1, 2]]])),
        ("ok", 3, json!([["append", "y", 1], ["append", "y", 2]])),
        ("ok", 4, json!([["r", "y", [1]]])),
        ("ok", 5, json!([["r", "z", [9]]])),
    ]);
    let r = run(&hist, ReadCommitted);
    assert_eq!(r.verdict, Validity::Invalid);
    has_all(&r, &[G1a, G1b, DirtyUpdate, GarbageRead]);
    explained(
        &r,
        G1a,
        "T5 read x = [1 2], which includes 1, appended by T1, a transaction that failed (aborted)",
    );
    explained(&r, G1b, "T9 read y = [1], ending at 1, but T7 appended 1 and 2 to y in that order, so T9 saw its intermediate state");
    explained(&r, DirtyUpdate, "T3 appended 2 to x after 1, which T1 appended but T1 failed (aborted) (T5's read of x, [1 2], shows that order)");
    explained(
        &r,
        GarbageRead,
        "T11 read z = [9], which includes 9, but no transaction appended 9 to z",
    );
    assert_eq!(only(&r, G1a).txns[0].status, TxnStatus::Fail);
}

#[test]
fn internal_future_read_duplicates_and_incompatible_orders() {
    let hist = serial(&[
        ("ok", 0, json!([["append", "x", 5]])),
        ("ok", 1, json!([["r", "x", [5]], ["r", "x", []]])),
        ("ok", 2, json!([["r", "y", [7]], ["append", "y", 7]])),
        ("ok", 3, json!([["append", "z", 1]])),
        ("ok", 4, json!([["r", "z", [1, 1]]])),
        ("ok", 5, json!([["append", "w", 1]])),
        ("ok", 6, json!([["append", "w", 2]])),
        ("ok", 7, json!([["r", "w", [1, 2]]])),
        ("ok", 8, json!([["r", "w", [2, 1]]])),
        ("ok", 9, json!([["append", "v", 3], ["r", "v", [4]]])),
    ]);
    let r = run(&hist, Serializable);
    has_all(
        &r,
        &[Internal, FutureRead, DuplicateElements, IncompatibleOrder],
    );
    let internal = &r.anomalies[&Internal];
    assert_eq!(internal.len(), 2, "{}", r.explanation);
    assert_eq!(
        internal[0].explanation,
        "T3 read x = [], but its own earlier reads and appends of x mean it should have read [5]"
    );
    assert_eq!(
        internal[1].explanation,
        "T19 read v = [4], but its own earlier reads and appends of v mean it should have read a list ending in [3]"
    );
    explained(&r, FutureRead, "T5 read y = [7], which includes 7, an element T5 only appends later in the same transaction");
    explained(
        &r,
        DuplicateElements,
        "T9 read z = [1 1], which contains 1 more than once, though each value is appended once",
    );
    assert!(only(&r, IncompatibleOrder)
        .explanation
        .contains("neither is a prefix of the other"));
    // Internal is not prohibited by read committed (Elle), the others are.
    let rc = run(&hist, ReadCommitted);
    assert!(!rc.violations.contains(&Internal));
    assert!(rc.violations.contains(&FutureRead));
    says(
        &rc.explanation,
        "Also found, allowed by read-committed: internal ×2",
    );
}

#[test]
fn lost_update_is_reported_and_allowed_only_by_read_committed() {
    let hist = h(&[
        ("invoke", 0, json!([["r", "x", null], ["append", "x", 1]])),
        ("invoke", 1, json!([["r", "x", null], ["append", "x", 2]])),
        ("ok", 0, json!([["r", "x", []], ["append", "x", 1]])),
        ("ok", 1, json!([["r", "x", []], ["append", "x", 2]])),
        ("invoke", 2, json!([["r", "x", null]])),
        ("ok", 2, json!([["r", "x", [1, 2]]])),
    ]);
    let rc = run(&hist, ReadCommitted);
    assert_eq!(rc.verdict, Validity::Valid, "{}", rc.explanation);
    assert_eq!(classes(&rc), vec![LostUpdate]);
    explained(&rc, LostUpdate, "T2 and T3 all read x as empty and then appended to it, so at most one of them can have seen the state the others wrote");
    let si = run(&hist, SnapshotIsolation);
    assert_eq!(si.verdict, Validity::Invalid);
    assert!(
        si.violations.contains(&LostUpdate) && si.violations.contains(&GSingle),
        "{}",
        si.explanation
    );
}

#[test]
fn integer_and_string_keys_are_the_same_key() {
    let hist = serial(&[
        ("ok", 0, json!([["append", 1, 5]])),
        ("ok", 1, json!([["r", "1", [5]]])),
        ("ok", 1, json!([["r", 1, [5, 6]]])),
    ]);
    let r = run(&hist, Serializable);
    assert_eq!(classes(&r), vec![GarbageRead], "{}", r.explanation);
    assert!(only(&r, GarbageRead)
        .explanation
        .contains("no transaction appended 6 to 1"));
}

#[test]
fn input_the_checker_cannot_use_gives_unknown_with_the_reason() {
    let cases = [
        (
            serial(&[("ok", 0, json!([["w", "x", 1]])), ("ok", 1, json!([["r", "x", [1]]]))]),
            "mixes list operations (appends, list reads; line 4) and register operations (writes, integer reads; line 2)",
        ),
        (
            serial(&[("ok", 0, json!([["w", "x", 1]])), ("ok", 1, json!([["w", "x", 1]]))]),
            "values must be unique per key, but the history writes 1 to key x by T1 and T3",
        ),
        (
            serial(&[("ok", 0, json!([["w", "x", 1], ["append", "y", 1]]))]),
            "mixes list operations (appends, list reads; line 2) and register operations (writes, integer reads; line 2)",
        ),
        (
            serial(&[("ok", 0, json!([["append", "x", 1]])), ("ok", 1, json!([["append", "x", 1]]))]),
            "values must be unique per key, but the history appends 1 to key x by T1 and T3",
        ),
        (
            serial(&[("ok", 0, json!([["append", "x", 3]])), ("ok", 0, json!([["r", "x", 3]]))]),
            "mixes list operations",
        ),
        (serial(&[("fail", 0, json!([["append", "x", 1]]))]), "no transaction committed"),
        (History::default(), "no transaction committed"),
    ];
    for (hist, why) in cases {
        let r = run(&hist, Serializable);
        assert_eq!(r.verdict, Validity::Unknown, "{why}");
        assert!(
            r.unknown_reasons.iter().any(|u| u.contains(why)),
            "{why}: {:?}",
            r.unknown_reasons
        );
    }
}

#[test]
fn malformed_transactions_are_errors_naming_the_line() {
    let bad = [
        (
            json!([["append", "x"]]),
            "line 1: micro-op 0: expected [f, key, value]",
        ),
        (
            json!([["cas", "x", 1]]),
            "line 1: micro-op 0: unknown micro-op \"cas\"",
        ),
        (
            json!([["append", "x", "one"]]),
            "line 1: micro-op 0: append value must be an integer",
        ),
        (
            json!([["append", [1], 1]]),
            "line 1: micro-op 0: key must be a string or an integer",
        ),
        (
            json!({"append": 1}),
            "line 1: txn value must be a list of micro-ops",
        ),
    ];
    for (v, want) in bad {
        let hist = h(&[("invoke", 0, v.clone()), ("ok", 0, v)]);
        let e = txn::parse(&hist).expect_err("malformed");
        assert!(e.to_string().starts_with(want), "{e} / {want}");
    }
    // A completion must repeat its invoke's writes.
    let hist = h(&[
        ("invoke", 0, json!([["append", "x", 1]])),
        ("ok", 0, json!([["append", "x", 2]])),
    ]);
    let e = txn::parse(&hist).expect_err("mismatch").to_string();
    assert!(e.starts_with("line 2: micro-op 0 of the completed txn is [\"append\",\"x\",2] but the invoke (line 1) has [\"append\",\"x\",1]"), "{e}");
    let hist = h(&[("invoke", 0, json!([])), ("invoke", 0, json!([]))]);
    assert!(txn::parse(&hist)
        .expect_err("double")
        .to_string()
        .starts_with("line 2: process 0 invoked txn"));
    let hist = h(&[("ok", 0, json!([]))]);
    assert!(txn::parse(&hist)
        .expect_err("orphan")
        .to_string()
        .starts_with("line 1: ok completion"));
}

#[test]
fn parsing_keeps_outcomes_and_skips_other_functions() {
    let mut hist = serial(&[
        ("ok", 0, json!([["append", "x", 1], ["r", "x", [1]]])),
        ("fail", 1, json!([["append", "x", 2], ["r", "y", [3]]])),
        ("info", 2, json!([["r", "x", null]])),
    ]);
    hist.push(
        99,
        Event {
            index: 6,
            time: 60,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: "partition-start".into(),
            key: None,
            value: Value::Null,
            node: None,
            error: None,
        },
    );
    let t = txn::parse(&hist).expect("parses");
    assert_eq!(t.len(), 3);
    assert_eq!(t[0].status, TxnStatus::Ok);
    assert_eq!(
        t[0].mops[1],
        Mop::Read {
            key: "x".into(),
            value: Some(ReadValue::List(vec![1]))
        }
    );
    assert_eq!(t[1].status, TxnStatus::Fail);
    // A failed transaction's reads are unknown even if its completion carried values.
    assert_eq!(
        t[1].mops[1],
        Mop::Read {
            key: "y".into(),
            value: None
        }
    );
    assert_eq!((t[2].status, t[2].ret), (TxnStatus::Info, None));
    assert_eq!(
        (t[0].invoke_line, t[0].complete_line, t[0].index()),
        (1, Some(2), 1)
    );
}

#[test]
fn an_exhausted_budget_never_hides_a_prohibited_cycle() {
    let g1c = g1c_history();
    let zero = |model| CheckOptions {
        model,
        timeout: Some(Duration::ZERO),
        ..CheckOptions::default()
    };
    let r = check_history(&g1c, &zero(Serializable)).expect("parses");
    assert_eq!(r.verdict, Validity::Invalid, "{}", r.explanation);
    assert_eq!(
        classes(&r),
        vec![G1c],
        "the fallback cycle is classified by its edges"
    );
    assert!(r.unknown_reasons[0].contains("time budget ran out"));
    // Write skew under SI: the fallback cycle is G2-item, allowed, so the verdict is unknown.
    let skew = h(&[
        ("invoke", 0, json!([["r", "x", null], ["append", "y", 1]])),
        ("invoke", 1, json!([["r", "y", null], ["append", "x", 1]])),
        ("ok", 0, json!([["r", "x", []], ["append", "y", 1]])),
        ("ok", 1, json!([["r", "y", []], ["append", "x", 1]])),
    ]);
    let r = check_history(&skew, &zero(SnapshotIsolation)).expect("parses");
    assert_eq!(r.verdict, Validity::Unknown, "{}", r.explanation);
    starts(&r.explanation, "Could not decide snapshot-isolation");
}

#[test]
fn the_model_table_follows_elle() {
    assert!(ReadCommitted.prohibits(G1c) && !ReadCommitted.prohibits(GSingle));
    assert!(!ReadCommitted.prohibits(Internal) && !ReadCommitted.prohibits(LostUpdate));
    assert!(SnapshotIsolation.prohibits(GSingle) && !SnapshotIsolation.prohibits(G2Item));
    assert!(Serializable.prohibits(G2Item) && !Serializable.prohibits(G2ItemRealtime));
    assert!(
        StrictSerializable.prohibits(G2ItemRealtime) && !StrictSerializable.prohibits(G0Process)
    );
    assert!(StrongSessionSerializable.prohibits(G0Process));
    assert!(!StrongSnapshotIsolation.prohibits(G2ItemRealtime));
    assert!(StrongSnapshotIsolation.prohibits(GSingleRealtime));
    for m in ConsistencyModel::ALL {
        assert_eq!(m.name().parse::<ConsistencyModel>(), Ok(m));
        assert_eq!(serde_json::to_value(m).unwrap(), json!(m.name()));
        for c in [
            G0,
            G1a,
            G1b,
            G1c,
            DirtyUpdate,
            IncompatibleOrder,
            DuplicateElements,
            GarbageRead,
            FutureRead,
        ] {
            assert!(m.prohibits(c), "{m} must prohibit {}", c.name());
        }
    }
    let e = "linearizable".parse::<ConsistencyModel>().unwrap_err();
    assert!(e.contains("strict-serializable"), "{e}");
    assert_eq!(
        serde_json::to_value(GSingleRealtime).unwrap(),
        json!("G-single-realtime")
    );
}

#[test]
fn the_result_round_trips_through_json() {
    let hist = g1c_history();
    let r = run(&hist, StrictSerializable);
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.contains("\"G1c\":[{\"class\":\"G1c\""), "{text}");
    let mut back: ElleResult = serde_json::from_str(&text).unwrap();
    // serde_json's default float parsing may differ in the last bit; everything else is exact.
    assert!((back.elapsed_ms - r.elapsed_ms).abs() < 1e-9);
    back.elapsed_ms = r.elapsed_ms;
    assert_eq!(back, r);
    // The typed transactions are what `check` consumes; both entry points agree.
    let direct = check(&txn::parse(&hist).unwrap(), &CheckOptions::default());
    assert_eq!(direct.counts, r.counts);
}

#[test]
fn hand_built_transactions_with_odd_ids_or_no_completion_do_not_crash() {
    let mut txns = txn::parse(&g1c_history()).unwrap();
    let want = check(&txns, &CheckOptions::default()).counts;
    for t in txns.iter_mut() {
        t.id = 7; // not dense
    }
    assert_eq!(check(&txns, &CheckOptions::default()).counts, want);
    txns[0].complete_index = None; // "ok" without a completion: never ordered in real time
    let r = check(&txns, &CheckOptions::default());
    assert_eq!(r.verdict, Validity::Invalid, "{}", r.explanation);
    let none = CheckOptions {
        max_examples: 0,
        ..CheckOptions::default()
    };
    let r = check(&txns, &none);
    assert_eq!((r.verdict, r.counts[&G1c]), (Validity::Invalid, 1));
    assert!(r.anomalies.values().all(Vec::is_empty));
}

fn run_wfr(history: &History, model: ConsistencyModel, wfr_keys: bool) -> ElleResult {
    check_history(
        history,
        &CheckOptions {
            model,
            wfr_keys,
            ..CheckOptions::default()
        },
    )
    .expect("parses")
}

#[test]
fn rw_register_read_skew_from_the_initial_state() {
    let hist = h(&[
        ("invoke", 0, json!([["w", "x", 1], ["w", "y", 1]])),
        ("invoke", 1, json!([["r", "x", null], ["r", "y", null]])),
        ("ok", 0, json!([["w", "x", 1], ["w", "y", 1]])),
        ("ok", 1, json!([["r", "x", null], ["r", "y", 1]])),
    ]);
    let r = run(&hist, Serializable);
    assert_eq!(r.workload, "rw-register");
    assert_eq!(classes(&r), vec![GSingle], "{}", r.explanation);
    let a = only(&r, GSingle);
    says(
        &a.explanation,
        "T3 read x as null, its initial state, so it came before T2's write of 1",
    );
    says(&a.explanation, "T3 read y = 1, which T2 wrote");
    assert_eq!(run(&hist, ReadCommitted).verdict, Validity::Valid);
}

#[test]
fn rw_register_g1c_g1a_g1b_garbage_internal_and_lost_update() {
    let g1c = h(&[
        ("invoke", 0, json!([["w", "x", 1], ["r", "y", null]])),
        ("invoke", 1, json!([["w", "y", 1], ["r", "x", null]])),
        ("ok", 0, json!([["w", "x", 1], ["r", "y", 1]])),
        ("ok", 1, json!([["w", "y", 1], ["r", "x", 1]])),
    ]);
    assert_eq!(classes(&run(&g1c, ReadCommitted)), vec![G1c]);
    let hist = serial(&[
        ("fail", 0, json!([["w", "x", 1]])),
        ("ok", 1, json!([["r", "x", 1]])),
        ("ok", 2, json!([["w", "y", 1], ["w", "y", 2]])),
        ("ok", 3, json!([["r", "y", 1]])),
        ("ok", 4, json!([["r", "z", 9]])),
        ("ok", 5, json!([["w", "v", 3], ["r", "v", 4]])),
        ("ok", 6, json!([["r", "u", null], ["w", "u", 1]])),
        ("ok", 7, json!([["r", "u", null], ["w", "u", 2]])),
    ]);
    let r = run(&hist, Serializable);
    has_all(&r, &[G1a, G1b, GarbageRead, Internal, LostUpdate]);
    explained(
        &r,
        G1a,
        "T3 read x = 1, written by T1, a transaction that failed (aborted)",
    );
    explained(
        &r,
        G1b,
        "T7 read y = 1, but T5 wrote 1 and 2 to y in that order, so T7 saw its intermediate state",
    );
    explained(&r, LostUpdate, "T13 and T15 all read u = null and then wrote it, so at most one of them can have seen the value the others wrote");
    assert_eq!(
        r.anomalies[&Internal][0].explanation,
        "T11 read v = 4, but its own earlier reads and writes of v mean it should have read 3"
    );
}

#[test]
fn rw_register_writes_follow_reads_yields_ww_edges_and_g0() {
    // T2 reads x = 1 (T1's) then writes 2; T1 reads y = 2 (T2's) then writes y = 1 ... which
    // T2 read first: each overwrote a version the other wrote.
    let hist = h(&[
        (
            "invoke",
            0,
            json!([["w", "x", 1], ["r", "y", null], ["w", "y", 1]]),
        ),
        (
            "invoke",
            1,
            json!([["r", "x", null], ["w", "x", 2], ["w", "y", 2]]),
        ),
        (
            "ok",
            0,
            json!([["w", "x", 1], ["r", "y", 2], ["w", "y", 1]]),
        ),
        (
            "ok",
            1,
            json!([["r", "x", 1], ["w", "x", 2], ["w", "y", 2]]),
        ),
    ]);
    let without = run_wfr(&hist, Serializable, false);
    assert_eq!(classes(&without), vec![G1c], "{}", without.explanation);
    let with = run_wfr(&hist, Serializable, true);
    assert_eq!(classes(&with), vec![G0], "{}", with.explanation);
    says(
        &only(&with, G0).explanation,
        "T3 read x = 1, which T2 wrote, and then overwrote it with 2, so 2 follows 1",
    );
}
