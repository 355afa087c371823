//! Seeded synthetic histories with known verdicts (`checkers::synth`): executions generated
//! with a linearization point per op are linearizable, and the same histories with one read
//! made stale or one acknowledged append lost are illegal. Sizes reach the shape of
//! Porcupine's hardest kv file (50 clients, thousands of ops), so the fresh-clone suite checks
//! the hard cases without the shared corpus; every check must decide within its budget.

use checkers::history::{pair, Event, Operation};
use checkers::linearizable::{check, CheckOptions, CheckResult, Verdict};
use checkers::model::ModelKind;
use checkers::synth::{self, SynthSpec};
use std::time::Duration;

fn run(events: &[Event], model: ModelKind) -> CheckResult {
    let ops: Vec<Operation> = pair(events, &[]).expect("synthetic histories pair");
    let opts = CheckOptions {
        model: Some(model),
        timeout: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    check(&ops, &opts).expect("checks")
}

/// Quick clients: ops last 1–200 time units.
fn spec(ops: usize, keys: usize, processes: usize, info_rate: f64, seed: u64) -> SynthSpec {
    SynthSpec {
        ops,
        keys,
        processes,
        info_rate,
        latency: 200,
        seed,
    }
}

/// Slow clients: ops last up to 2000 units, so with 50 clients many appends are never
/// observed before a put overwrites them (the shape of Porcupine's c50 logs). Before the
/// search memoized unobservable values as one class, these stayed unknown after 60 s.
fn slow(ops: usize, keys: usize, info_rate: f64, seed: u64) -> SynthSpec {
    SynthSpec {
        latency: 2000,
        ..spec(ops, keys, 50, info_rate, seed)
    }
}

#[test]
fn generated_executions_are_linearizable() {
    for seed in 1..=3 {
        let cases: [(Vec<Event>, ModelKind); 6] = [
            (
                synth::register(&spec(3000, 1, 8, 0.02, seed), false, 5),
                ModelKind::Register,
            ),
            (
                synth::register(&spec(3000, 1, 8, 0.02, seed), true, 5),
                ModelKind::CasRegister,
            ),
            (
                synth::register(&spec(4000, 20, 30, 0.02, seed), true, 3),
                ModelKind::CasRegister,
            ),
            (synth::kv(&spec(4000, 10, 50, 0.01, seed)), ModelKind::Kv),
            (
                synth::kv_small_alphabet(&spec(600, 2, 12, 0.05, seed)),
                ModelKind::Kv,
            ),
            (synth::kv(&slow(4000, 10, 0.01, seed)), ModelKind::Kv),
        ];
        for (i, (events, model)) in cases.iter().enumerate() {
            let r = run(events, *model);
            assert_eq!(
                r.verdict,
                Verdict::Linearizable,
                "seed {seed}, case {i}: {}",
                r.explanation
            );
        }
    }
}

#[test]
fn a_stale_read_is_illegal() {
    for seed in 1..=3 {
        let mut events = synth::register(&spec(2000, 4, 10, 0.0, seed), false, 1000);
        assert_eq!(
            run(&events, ModelKind::Register).verdict,
            Verdict::Linearizable
        );
        assert!(
            synth::inject_stale_read(&mut events),
            "seed {seed}: a read to make stale"
        );
        let r = run(&events, ModelKind::Register);
        assert_eq!(
            r.verdict,
            Verdict::Illegal,
            "seed {seed}: {}",
            r.explanation
        );
        let bad: Vec<_> = r
            .partitions
            .iter()
            .filter(|p| p.verdict == Verdict::Illegal)
            .collect();
        assert_eq!(bad.len(), 1, "only the key with the stale read is illegal");
    }
}

#[test]
fn a_lost_append_is_illegal_even_among_50_slow_clients() {
    for (seed, info) in [(1, 0.0), (2, 0.01), (3, 0.02)] {
        let mut events = synth::kv(&slow(4000, 10, info, seed));
        assert!(
            synth::inject_lost_append(&mut events),
            "seed {seed}: an append to lose"
        );
        let r = run(&events, ModelKind::Kv);
        assert_eq!(
            r.verdict,
            Verdict::Illegal,
            "seed {seed}: {}",
            r.explanation
        );
        let decided = r.partitions.iter().all(|p| p.verdict != Verdict::Unknown);
        assert!(decided, "seed {seed}: every key decided: {}", r.explanation);
        let bad = r
            .partitions
            .iter()
            .filter(|p| p.verdict == Verdict::Illegal)
            .count();
        assert_eq!(
            bad, 1,
            "seed {seed}: only the key that lost an append is illegal"
        );
    }
}

#[test]
fn the_memory_cap_gives_unknown_with_the_reason_never_a_verdict() {
    // The product search over 10 keys of slow clients grows without bound; under a 4 MiB
    // cap it must stop with `unknown` and say why, while the per-key check stays decided.
    let events = synth::kv(&slow(4000, 10, 0.0, 1));
    let ops: Vec<Operation> = pair(&events, &[]).expect("pairs");
    let capped = CheckOptions {
        model: Some(ModelKind::Kv),
        partition: false,
        strategy: checkers::linearizable::Strategy::Plain,
        timeout: Some(Duration::from_secs(120)),
        max_memory: 4 << 20,
        ..CheckOptions::default()
    };
    let r = check(&ops, &capped).expect("checks");
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.explanation);
    assert!(
        r.explanation.contains("memory limit of 4 MiB reached"),
        "{}",
        r.explanation
    );
    // What the caller already holds counts: with all of it taken, nothing is searched.
    let held = CheckOptions {
        model: Some(ModelKind::Kv),
        max_memory: 4 << 20,
        input_bytes: 4 << 20,
        ..CheckOptions::default()
    };
    let r = check(&ops, &held).expect("checks");
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.explanation);
    let per_key = CheckOptions {
        model: Some(ModelKind::Kv),
        max_memory: 4 << 20,
        ..CheckOptions::default()
    };
    assert_eq!(
        check(&ops, &per_key).expect("checks").verdict,
        Verdict::Linearizable
    );
}
