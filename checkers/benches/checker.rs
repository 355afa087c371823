//! `cargo bench -p checkers`: times the linearizability checker per family on the optional
//! shared Porcupine corpus (`$FAULTLINE_CORPUS`, default ../shared/data, never copied into the
//! repo; its groups are skipped with a printed line when it is absent) and on seeded synthetic
//! histories (always), and prints one table per family. Parsing is excluded, as in Porcupine's
//! figures. Each figure is the median of several runs (fewer for the slow families).

use checkers::history::{pair, Operation};
use checkers::import;
use checkers::linearizable::{check, CheckOptions, CheckResult, Strategy, Verdict};
use checkers::model::ModelKind;
use checkers::synth::{self, SynthSpec};
use std::path::Path;
use std::time::{Duration, Instant};

fn load(dir: &Path, file: &str) -> Vec<Operation> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    import::parse(&text, None)
        .and_then(|h| h.operations())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn opts(model: ModelKind, partition: bool, strategy: Strategy, timeout: u64) -> CheckOptions {
    CheckOptions {
        model: Some(model),
        partition,
        strategy,
        timeout: Some(Duration::from_secs(timeout)),
        ..CheckOptions::default()
    }
}

/// Median wall time of `runs` runs of `f`, and the last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], last.expect("at least one run"))
}

fn row(name: &str, d: Duration, verdict: &str, note: &str) {
    println!(
        "| {name:<34} | {:>10.1} ms | {verdict:<12} | {note}",
        d.as_secs_f64() * 1e3
    );
}

fn header(title: &str) {
    println!("\n## {title}\n");
    println!(
        "| {:<34} | {:>13} | {:<12} | note",
        "case", "time", "verdict"
    );
    println!(
        "|{}|{}|{}|------",
        "-".repeat(36),
        "-".repeat(15),
        "-".repeat(14)
    );
}

fn verdict(r: &CheckResult) -> &'static str {
    r.verdict.name()
}

fn main() {
    match testkit::require(testkit::Need::Corpus) {
        Some(dir) => corpus(&dir.join("porcupine")),
        None => println!(
            "\n## shared Porcupine corpus: skipped, needs {}",
            testkit::Need::Corpus.how_to_get()
        ),
    }
    synthetic();
}

/// The groups on the shared corpus.
fn corpus(data: &Path) {
    let tsv = std::fs::read_to_string(data.join("expected.tsv")).expect("expected.tsv");
    let cases: Vec<(String, String)> = tsv
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 3).then(|| (f[0].to_string(), f[2].to_string()))
        })
        .collect();

    // etcd: all files, total time (Porcupine: 0.38 s; target ≤ 0.13 s).
    header("etcd (cas-register), all files — Porcupine 0.38 s total, target ≤ 130 ms");
    let etcd: Vec<(String, String, Vec<Operation>)> = cases
        .iter()
        .filter(|(f, _)| f.starts_with("etcd/"))
        .map(|(f, v)| (f.clone(), v.clone(), load(data, f)))
        .collect();
    let o = opts(ModelKind::CasRegister, true, Strategy::Compositional, 60);
    let (d, wrong) = time(7, || {
        etcd.iter()
            .filter(|(_, want, ops)| verdict(&check(ops, &o).expect("checks")) != want)
            .count()
    });
    row(
        &format!("{} files, total", etcd.len()),
        d,
        &format!("{wrong} wrong"),
        "",
    );
    let mut slow: Vec<(Duration, &str)> = etcd
        .iter()
        .map(|(f, _, ops)| (time(5, || check(ops, &o).expect("checks")).0, f.as_str()))
        .collect();
    slow.sort();
    for (d, f) in slow.iter().rev().take(3) {
        row(&format!("  slowest: {f}"), *d, "", "");
    }

    // kv partitioned.
    header("kv, partitioned by key — Porcupine 0.26 s total");
    let kv: Vec<(String, String, Vec<Operation>)> = cases
        .iter()
        .filter(|(f, _)| f.starts_with("kv/"))
        .map(|(f, v)| (f.clone(), v.clone(), load(data, f)))
        .collect();
    let o = opts(ModelKind::Kv, true, Strategy::Compositional, 30);
    for (f, want, ops) in &kv {
        // c50-bad has a key that stays undecided until the budget ends: time it once.
        let runs = if f.ends_with("c50-bad.txt") { 1 } else { 5 };
        let (d, r) = time(runs, || check(ops, &o).expect("checks"));
        row(f, d, verdict(&r), &format!("expected {want}"));
    }

    // kv unpartitioned.
    header("kv, ONE unpartitioned history — Porcupine c10-ok 3.8 s, c10-bad 4.1 s, c50 unknown after 60 s");
    for (f, want, ops) in &kv {
        let o = opts(ModelKind::Kv, false, Strategy::Compositional, 60);
        let (d, r) = time(5, || check(ops, &o).expect("checks"));
        row(
            &format!("{f} compositional"),
            d,
            verdict(&r),
            &format!("expected {want}"),
        );
    }
    for (f, want, ops) in &kv {
        let budget = 10;
        let o = opts(ModelKind::Kv, false, Strategy::Plain, budget);
        let runs = if f.contains("c50") { 1 } else { 3 };
        let (d, r) = time(runs, || check(ops, &o).expect("checks"));
        row(
            &format!("{f} plain product search"),
            d,
            verdict(&r),
            &format!("expected {want}; budget {budget} s"),
        );
    }

    // c50-bad, every key decided.
    header("kv c50-bad per key, every key decided — Porcupine: keys 0 and 9 unknown after 30 s");
    let (_, _, ops) = kv
        .iter()
        .find(|(f, _, _)| f.ends_with("c50-bad.txt"))
        .expect("c50-bad");
    let o = opts(ModelKind::Kv, true, Strategy::Compositional, 90);
    let (d, r) = time(1, || check(ops, &o).expect("checks"));
    row("all keys (parallel, budget 90 s)", d, verdict(&r), "");
    for p in &r.partitions {
        row(
            &format!("  key {}", p.key.as_deref().unwrap_or("-")),
            Duration::from_secs_f64(p.elapsed_ms / 1e3),
            p.verdict.name(),
            &format!("{} ops", p.ops),
        );
    }
}

/// The groups on seeded synthetic histories (no corpus needed).
fn synthetic() {
    header("synthetic (seeded)");
    let spec = SynthSpec {
        ops: 100_000,
        keys: 1000,
        processes: 20,
        info_rate: 0.0,
        latency: 200,
        seed: 1,
    };
    let ev = synth::kv(&spec);
    let ops = pair(&ev, &[]).expect("pairs");
    let o = opts(ModelKind::Kv, true, Strategy::Compositional, 60);
    let (d, r) = time(3, || check(&ops, &o).expect("checks"));
    row(
        "kv 100k ops / 1000 keys / 20 procs",
        d,
        verdict(&r),
        "target ≤ 2 s",
    );
    let spec = SynthSpec {
        ops: 5000,
        keys: 1,
        processes: 8,
        info_rate: 0.02,
        latency: 200,
        seed: 7,
    };
    let ev = synth::register(&spec, true, 5);
    let ops = pair(&ev, &[]).expect("pairs");
    let o = opts(ModelKind::CasRegister, true, Strategy::Compositional, 60);
    let (d, r) = time(3, || check(&ops, &o).expect("checks"));
    let info = ops.iter().filter(|o| o.ret.is_none()).count();
    row(
        "cas-register 5000 ops / 8 procs / 2% info",
        d,
        verdict(&r),
        &format!("{info} info ops; target ≤ 5 s, definite"),
    );
    // The shape of Porcupine's c50-bad without the corpus: 50 clients, one lost append.
    let spec = SynthSpec {
        ops: 4000,
        keys: 10,
        processes: 50,
        info_rate: 0.01,
        latency: 200,
        seed: 1,
    };
    let mut ev = synth::kv(&spec);
    assert!(synth::inject_lost_append(&mut ev), "an append to lose");
    let ops = pair(&ev, &[]).expect("pairs");
    let o = opts(ModelKind::Kv, true, Strategy::Compositional, 60);
    let (d, r) = time(3, || check(&ops, &o).expect("checks"));
    let decided = r
        .partitions
        .iter()
        .filter(|p| p.verdict != Verdict::Unknown)
        .count();
    row(
        "kv 4000 ops / 10 keys / 50 procs, lost append",
        d,
        verdict(&r),
        &format!("{decided} of {} keys decided", r.partitions.len()),
    );
}
