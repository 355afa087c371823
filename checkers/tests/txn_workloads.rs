//! The bank, set and counter checkers on hand-built histories: ones that must pass, ones that
//! must fail (with the exact sentence the checker prints), and malformed ones that must be
//! errors naming their line.

use checkers::bank::{self, BankOptions};
use checkers::counter::{self, CounterOptions};
use checkers::history::{parse_jsonl, History};
use checkers::set::{self, SetOptions};
use checkers::txn::Validity;
use serde_json::{json, Value};

/// A history from `(type, process, f, value)`, one event per line: index = position, time =
/// position × 0.5 s.
fn h(steps: &[(&str, u64, &str, Value)]) -> History {
    let text: String = steps
        .iter()
        .enumerate()
        .map(|(i, (ty, p, f, v))| {
            json!({"index": i, "time": i as u64 * 500_000_000, "process": p, "type": ty, "f": f, "value": v})
                .to_string()
                + "\n"
        })
        .collect();
    parse_jsonl(&text).expect("well-formed events")
}

fn transfer(from: &str, to: &str, amount: i64) -> Value {
    json!({"from": from, "to": to, "amount": amount})
}

// ------------------------------------------------------------------------------------- bank

fn bank_history(second_read: Value) -> History {
    h(&[
        ("invoke", 0, "read", Value::Null),
        ("ok", 0, "read", json!({"a": 50, "b": 50})),
        ("invoke", 1, "transfer", transfer("a", "b", 10)),
        ("invoke", 0, "read", Value::Null),
        ("ok", 1, "transfer", transfer("a", "b", 10)),
        ("ok", 0, "read", second_read),
        ("invoke", 2, "transfer", transfer("b", "a", 70)),
        ("fail", 2, "transfer", transfer("b", "a", 70)),
    ])
}

#[test]
fn bank_reads_that_conserve_the_total_pass() {
    let r = bank::check(
        &bank_history(json!({"a": 40, "b": 60})),
        &BankOptions::default(),
    )
    .unwrap();
    assert_eq!(r.verdict, Validity::Valid, "{}", r.explanation);
    assert_eq!((r.reads, r.transfers.ok, r.transfers.fail), (2, 1, 1));
    assert_eq!(r.expected_total, Some(100));
    assert_eq!(
        r.explanation,
        "all 2 reads total 100 (from the first read (index 1)) with no negative balance"
    );
}

#[test]
fn bank_reads_that_lose_money_or_go_negative_fail() {
    let r = bank::check(
        &bank_history(json!({"a": 40, "b": 50})),
        &BankOptions::default(),
    )
    .unwrap();
    assert_eq!(r.verdict, Validity::Invalid);
    assert_eq!(r.bad_reads, 1);
    let b = &r.examples[0];
    assert_eq!(
        (b.index, b.process, b.line, b.total, b.expected),
        (5, 0, 6, 90, 100)
    );
    assert_eq!(
        b.explanation,
        "the read completed at index 5 (process 0, 2.500 s) totals 90, not 100: {a: 40, b: 50}"
    );
    // A given total overrides the first read, which then is bad too.
    let o = BankOptions {
        total: Some(90),
        ..BankOptions::default()
    };
    let r = bank::check(&bank_history(json!({"a": 40, "b": 50})), &o).unwrap();
    assert_eq!((r.bad_reads, r.examples[0].index), (1, 1));
    // Negative balances, allowed or not.
    let neg = bank_history(json!({"a": -10, "b": 110}));
    let r = bank::check(&neg, &BankOptions::default()).unwrap();
    assert_eq!(r.verdict, Validity::Invalid);
    assert!(
        r.examples[0].explanation.contains("has account a at -10"),
        "{}",
        r.explanation
    );
    let allow = BankOptions {
        negative_balances: true,
        ..BankOptions::default()
    };
    assert_eq!(bank::check(&neg, &allow).unwrap().verdict, Validity::Valid);
    // Accounts that should be there.
    let o = BankOptions {
        accounts: Some(vec!["a".into(), "b".into(), "c".into()]),
        ..BankOptions::default()
    };
    let r = bank::check(&bank_history(json!({"a": 40, "b": 60})), &o).unwrap();
    assert_eq!(r.bad_reads, 2);
    assert_eq!(r.examples[0].missing_accounts, vec!["c".to_string()]);
}

#[test]
fn bank_without_reads_is_unknown_and_bad_shapes_name_the_line() {
    let only_transfers = h(&[
        ("invoke", 1, "transfer", transfer("a", "b", 10)),
        ("info", 1, "transfer", transfer("a", "b", 10)),
    ]);
    let r = bank::check(&only_transfers, &BankOptions::default()).unwrap();
    assert_eq!((r.verdict, r.transfers.info), (Validity::Unknown, 1));
    let bad = [
        (
            h(&[("invoke", 1, "transfer", json!({"from": "a", "to": "b"}))]),
            "line 1: transfer without \"amount\"",
        ),
        (
            h(&[("invoke", 1, "transfer", json!([1, 2]))]),
            "line 1: a transfer's value must be",
        ),
        (
            h(&[
                ("invoke", 0, "read", Value::Null),
                ("ok", 0, "read", json!([50, 50])),
            ]),
            "line 2: a completed read's value must be a map",
        ),
        (
            h(&[
                ("invoke", 0, "read", Value::Null),
                ("ok", 0, "read", json!({"a": "lots"})),
            ]),
            "line 2: balance of account a must be an integer",
        ),
    ];
    for (hist, want) in bad {
        let e = bank::check(&hist, &BankOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(want), "{e} / {want}");
    }
}

// -------------------------------------------------------------------------------------- set

#[test]
fn a_set_whose_final_read_has_every_acknowledged_add_passes() {
    let hist = h(&[
        ("invoke", 0, "add", json!(1)),
        ("ok", 0, "add", json!(1)),
        ("invoke", 1, "add", json!(2)),
        ("info", 1, "add", json!(2)),
        ("invoke", 2, "add", json!(3)),
        ("fail", 2, "add", json!(3)),
        ("invoke", 3, "add", json!(4)),
        ("info", 3, "add", json!(4)),
        ("invoke", 0, "read", Value::Null),
        ("ok", 0, "read", json!([1, 2])),
    ]);
    let r = set::check(&hist, &SetOptions::default()).unwrap();
    assert_eq!(r.verdict, Validity::Valid, "{}", r.explanation);
    assert_eq!((r.attempted, r.acknowledged, r.indeterminate), (4, 1, 2));
    assert_eq!(r.final_reads, vec![9]);
    assert_eq!(r.recovered.count, 1);
    assert_eq!(
        r.recovered.examples[0].explanation,
        "the add of 2 had an unknown outcome (invoked at index 2) and the final read at index 9 shows it took effect"
    );
    assert_eq!(
        r.explanation,
        "1 of 4 adds acknowledged; 0 lost, 0 unexpected, 1 recovered, 0 stale (0 reads)"
    );
}

#[test]
fn lost_and_unexpected_elements_fail_a_set() {
    let hist = h(&[
        ("invoke", 0, "add", json!(1)),
        ("ok", 0, "add", json!(1)),
        ("invoke", 1, "add", json!(2)),
        ("fail", 1, "add", json!(2)),
        ("invoke", 0, "read", Value::Null),
        ("ok", 0, "read", json!([2, 7])),
    ]);
    let r = set::check(&hist, &SetOptions::default()).unwrap();
    assert_eq!(r.verdict, Validity::Invalid);
    assert_eq!((r.lost.count, r.unexpected.count), (1, 2));
    assert_eq!(
        r.lost.examples[0].explanation,
        "the add of 1 was acknowledged (index 1) but the final read at index 5 does not contain it"
    );
    assert_eq!(
        r.unexpected.examples[0].explanation,
        "the read at index 5 shows 2, but the add of 2 failed (index 3), so it never happened"
    );
    assert_eq!(
        r.unexpected.examples[1].explanation,
        "the read at index 5 shows 7, which nobody added"
    );
}

#[test]
fn a_stale_read_is_reported_and_fails_only_when_fresh_reads_are_required() {
    let hist = h(&[
        ("invoke", 0, "add", json!(1)),
        ("ok", 0, "add", json!(1)),
        ("invoke", 1, "read", Value::Null),
        ("ok", 1, "read", json!([])),
        ("invoke", 1, "read", Value::Null),
        ("ok", 1, "read", json!([1])),
    ]);
    let r = set::check(&hist, &SetOptions::default()).unwrap();
    assert_eq!(r.verdict, Validity::Valid, "{}", r.explanation);
    assert_eq!((r.stale.count, r.stale_reads), (1, 1));
    assert_eq!(
        r.stale.examples[0].explanation,
        "the add of 1 was acknowledged at index 1, yet 1 read(s) begun after that miss it (first: index 3), while the later read at index 5 shows it"
    );
    let strict = SetOptions {
        require_fresh_reads: true,
        ..SetOptions::default()
    };
    assert_eq!(
        set::check(&hist, &strict).unwrap().verdict,
        Validity::Invalid
    );
    // A read concurrent with the add may miss it: not stale.
    let concurrent = h(&[
        ("invoke", 0, "add", json!(1)),
        ("invoke", 1, "read", Value::Null),
        ("ok", 0, "add", json!(1)),
        ("ok", 1, "read", json!([])),
        ("invoke", 1, "read", Value::Null),
        ("ok", 1, "read", json!([1])),
    ]);
    let r = set::check(&concurrent, &strict).unwrap();
    assert_eq!((r.verdict, r.stale.count), (Validity::Valid, 0));
}

#[test]
fn without_a_read_after_the_adds_the_last_read_stands_in() {
    let hist = h(&[
        ("invoke", 0, "add", json!(1)),
        ("invoke", 1, "read", Value::Null),
        ("ok", 1, "read", json!([])),
        ("ok", 0, "add", json!(1)),
    ]);
    let r = set::check(&hist, &SetOptions::default()).unwrap();
    assert_eq!(
        r.verdict,
        Validity::Invalid,
        "the acknowledged 1 is missing from the last read"
    );
    assert!(
        r.explanation.ends_with(
            "no read began after the last add, so the last read (index 2) served as the final read"
        ),
        "{}",
        r.explanation
    );
    let no_reads = h(&[("invoke", 0, "add", json!(1)), ("ok", 0, "add", json!(1))]);
    assert_eq!(
        set::check(&no_reads, &SetOptions::default())
            .unwrap()
            .verdict,
        Validity::Unknown
    );
    let e = set::check(
        &h(&[("invoke", 0, "add", json!("x"))]),
        &SetOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("line 1: add value must be an integer"),
        "{e}"
    );
    let e = set::check(
        &h(&[
            ("invoke", 0, "read", Value::Null),
            ("ok", 0, "read", json!(3)),
        ]),
        &SetOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("line 2: a completed read's value must be a list"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------- counter

#[test]
fn counter_reads_within_bounds_pass() {
    let hist = h(&[
        ("invoke", 0, "add", json!(5)),
        ("ok", 0, "add", json!(5)),
        ("invoke", 1, "add", json!(3)),
        ("invoke", 2, "read", Value::Null),
        ("ok", 2, "read", json!(8)), // 5 certain, 3 possible: [5, 8]
        ("info", 1, "add", json!(3)),
        ("invoke", 2, "read", Value::Null),
        ("ok", 2, "read", json!(5)), // the info add may never happen: [5, 8]
        ("invoke", 0, "add", json!(-2)),
        ("invoke", 2, "read", Value::Null),
        ("ok", 2, "read", json!(3)), // a concurrent -2: [3, 8]
        ("ok", 0, "add", json!(-2)),
    ]);
    let r = counter::check(&hist, &CounterOptions::default()).unwrap();
    assert_eq!(r.verdict, Validity::Valid, "{}", r.explanation);
    assert_eq!((r.reads, r.ok_adds, r.info_adds), (3, 2, 1));
}

#[test]
fn counter_reads_out_of_bounds_fail() {
    let hist = h(&[
        ("invoke", 0, "add", json!(5)),
        ("ok", 0, "add", json!(5)),
        ("invoke", 2, "read", Value::Null),
        ("ok", 2, "read", json!(4)),
        ("invoke", 1, "add", json!(1)),
        ("fail", 1, "add", json!(1)),
        ("invoke", 2, "read", Value::Null),
        ("ok", 2, "read", json!(6)),
    ]);
    let r = counter::check(&hist, &CounterOptions::default()).unwrap();
    assert_eq!(r.verdict, Validity::Invalid);
    assert_eq!(r.violations, 2);
    let v = &r.examples[0];
    assert_eq!(
        (v.index, v.value, v.lower, v.upper, v.line),
        (3, 4, 5, 5, 4)
    );
    assert_eq!(
        v.explanation,
        "the read invoked at index 2 and completed at index 3 (process 2) returned 4, but adds certainly done before it began bring the counter to 5 and those that could have happened by its end allow only 5 to 5"
    );
    assert_eq!(
        (r.examples[1].value, r.examples[1].upper),
        (6, 5),
        "a failed add never counts"
    );
    // The initial value shifts both bounds.
    let o = CounterOptions {
        initial: 1,
        ..CounterOptions::default()
    };
    assert_eq!(counter::check(&hist, &o).unwrap().violations, 1);
}

#[test]
fn counter_without_reads_is_unknown_and_bad_values_name_the_line() {
    let hist = h(&[("invoke", 0, "add", json!(1)), ("ok", 0, "add", json!(1))]);
    assert_eq!(
        counter::check(&hist, &CounterOptions::default())
            .unwrap()
            .verdict,
        Validity::Unknown
    );
    let e = counter::check(
        &h(&[("invoke", 0, "add", json!(1.5))]),
        &CounterOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("line 1: add value must be an integer"),
        "{e}"
    );
    let e = counter::check(
        &h(&[
            ("invoke", 0, "read", Value::Null),
            ("ok", 0, "read", json!([1])),
        ]),
        &CounterOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("line 2: read value must be an integer"),
        "{e}"
    );
}

#[test]
fn no_examples_and_absurd_numbers_do_not_crash() {
    let hist = bank_history(json!({"a": i64::MAX, "b": i64::MAX}));
    let o = BankOptions {
        max_examples: 0,
        ..BankOptions::default()
    };
    let r = bank::check(&hist, &o).unwrap();
    assert_eq!(
        (r.verdict, r.bad_reads, r.examples.len()),
        (Validity::Invalid, 1, 0)
    );
    assert_eq!(
        r.explanation,
        "1 of 2 reads broke the bank's invariant (total 100, from the first read (index 1))"
    );
    let hist = h(&[
        ("invoke", 0, "add", json!(i64::MAX)),
        ("ok", 0, "add", json!(i64::MAX)),
        ("invoke", 0, "add", json!(i64::MAX)),
        ("ok", 0, "add", json!(i64::MAX)),
        ("invoke", 1, "read", Value::Null),
        ("ok", 1, "read", json!(-1)),
    ]);
    let o = CounterOptions {
        max_examples: 0,
        ..CounterOptions::default()
    };
    let r = counter::check(&hist, &o).unwrap();
    assert_eq!((r.verdict, r.violations), (Validity::Invalid, 1));
    assert_eq!(r.explanation, "1 of 1 reads out of bounds");
}
