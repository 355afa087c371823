//! `cargo bench -p checkers --bench elle`: throughput of the Elle list-append checker on
//! seeded synthetic histories of 10k and 100k transactions, each with planted G0, G1c,
//! G-single, G2-item and stale-read (G-single-realtime) anomalies. Before timing, every run
//! asserts that each planted anomaly is found with its exact class, so a fast checker that
//! stopped finding things would fail here instead of reporting a good number.
//! Parsing (events to typed transactions) is timed apart from checking.

use checkers::elle::synth::{self, Inject, SynthSpec};
use checkers::elle::{check, AnomalyClass, CheckOptions, ConsistencyModel, ElleResult};
use checkers::history::History;
use checkers::txn::{self, Txn, Validity};
use std::time::{Duration, Instant};

/// The median of `runs` timed calls of `f`, and what the last call returned.
fn median_time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut out = f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            out = f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], out)
}

fn opts(model: ConsistencyModel) -> CheckOptions {
    CheckOptions {
        model,
        timeout: Some(Duration::from_secs(120)),
        ..CheckOptions::default()
    }
}

/// Every planted anomaly must be reported, with exactly its class, once.
fn assert_found(r: &ElleResult, expected: &[AnomalyClass]) {
    assert_eq!(r.verdict, Validity::Invalid, "{}", r.explanation);
    for c in expected {
        assert_eq!(
            r.counts.get(c).copied(),
            Some(1),
            "{} not found exactly once: {}",
            c.name(),
            r.explanation
        );
    }
    let extra: Vec<_> = r.counts.keys().filter(|c| !expected.contains(c)).collect();
    assert!(
        extra.is_empty(),
        "unexpected classes {extra:?}: {}",
        r.explanation
    );
}

/// The worst case: hot keys that never roll, and a store that lost its data, so half the
/// reads are empty. Many readers of one state and many appends no read shows make one giant
/// cyclic component; the check must still finish, complete, well within its budget.
fn pathological(n: usize) {
    let spec = SynthSpec {
        txns: n,
        processes: 10,
        active_keys: 20,
        appends_per_key: usize::MAX,
        empty_reads: 0.5,
        seed: 7,
        ..SynthSpec::default()
    };
    let txns = txn::parse(&History::from_events(synth::list_append(&spec))).expect("parses");
    for model in [
        ConsistencyModel::SnapshotIsolation,
        ConsistencyModel::Serializable,
        ConsistencyModel::StrictSerializable,
    ] {
        let o = opts(model);
        let (d, r) = median_time(3, || check(&txns, &o));
        assert_eq!(r.verdict, Validity::Invalid, "{}", r.explanation);
        assert!(r.unknown_reasons.is_empty(), "{:?}", r.unknown_reasons);
        println!(
            "| {} txns, 20 hot keys, half the reads empty | {} | – | {:.1} ms | {:.0} | {} (largest cycle component {}) | {} |",
            txns.len(),
            model,
            d.as_secs_f64() * 1e3,
            txns.len() as f64 / d.as_secs_f64(),
            r.graph.edges,
            r.graph.largest_component,
            r.verdict.name()
        );
    }
}

fn main() {
    println!("| history | model | parse | check | txns/s (check) | edges | verdict |");
    println!("|---|---|---|---|---|---|---|");
    for n in [10_000usize, 100_000] {
        let spec = SynthSpec {
            txns: n,
            processes: 10,
            inject: vec![
                Inject::G0,
                Inject::G1c,
                Inject::GSingle,
                Inject::G2Item,
                Inject::StaleRead,
            ],
            seed: 42,
            ..SynthSpec::default()
        };
        let history = History::from_events(synth::list_append(&spec));
        let runs = if n >= 100_000 { 5 } else { 11 };
        let (parse_t, txns): (Duration, Vec<Txn>) = median_time(runs, || {
            txn::parse(&history).expect("synthetic history parses")
        });
        for (model, expected) in [
            (
                ConsistencyModel::Serializable,
                vec![
                    AnomalyClass::G0,
                    AnomalyClass::G1c,
                    AnomalyClass::GSingle,
                    AnomalyClass::G2Item,
                ],
            ),
            (
                ConsistencyModel::StrictSerializable,
                vec![
                    AnomalyClass::G0,
                    AnomalyClass::G1c,
                    AnomalyClass::GSingle,
                    AnomalyClass::G2Item,
                    AnomalyClass::GSingleRealtime,
                ],
            ),
        ] {
            let o = opts(model);
            assert_found(&check(&txns, &o), &expected);
            let (d, r) = median_time(runs, || check(&txns, &o));
            println!(
                "| {} txns, 10 procs, 5 planted | {} | {:.1} ms | {:.1} ms | {:.0} | {} | {} |",
                txns.len(),
                model,
                parse_t.as_secs_f64() * 1e3,
                d.as_secs_f64() * 1e3,
                txns.len() as f64 / d.as_secs_f64(),
                r.graph.edges,
                r.verdict.name()
            );
        }
    }
    pathological(20_000);
}
