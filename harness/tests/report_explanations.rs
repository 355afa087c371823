//! The README's two failing examples, run for real: Raft with `--read unsafe-local` under
//! leader isolations, and NWR with N=3 W=1 R=1 under partitions. Each must come back invalid
//! with, for every key that cannot be linearized, a minimal counterexample whose blamed op
//! really cannot be placed (the set is illegal, the set without it is legal) and a sentence
//! whose every claim holds in the recorded history; the terminal summary prints that sentence,
//! not checker jargon. Both anomalies are likely, not certain, in one 10-second run, so each
//! example tries up to three seeds.

mod common;

use checkers::analysis::{Analysis, Verdict};
use checkers::history::History;
use checkers::linearizable::{self, CheckOptions, Verdict as LinVerdict};
use checkers::minimize::relaxed;
use common::{results_dir, run_dir, run_test};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the example with each seed until one is invalid; checks that run's explanations.
fn example(args: &[&str]) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut tried = Vec::new();
    for seed in ["1", "2", "3"] {
        let dir = results_dir();
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&["--seed", seed]);
        let (code, out) = run_test(dir.path(), &all);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            (0..=2).contains(&code),
            "harness failed ({code}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if code != 1 {
            tried.push(format!("seed {seed}: exit {code}"));
            continue;
        }
        let run = run_dir(dir.path());
        let a = Analysis::from_json(&std::fs::read_to_string(run.join("results.json")).unwrap())
            .unwrap();
        assert_eq!(a.verdict, Verdict::Invalid);
        let text = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
        let history = checkers::history::parse_jsonl(&text).unwrap();
        hold(&a, &history, &stdout);
        return;
    }
    panic!("no seed gave an invalid run: {tried:?}");
}

fn hold(a: &Analysis, history: &History, stdout: &str) {
    let model = a.linearizability.as_ref().unwrap().model;
    let ops = history.operations().unwrap();
    assert!(!a.counterexamples.is_empty());
    for k in &a.counterexamples {
        checkers::explain::verify_sentence(&k.sentence, &history.events)
            .unwrap_or_else(|e| panic!("{e}\n{}", k.sentence.text));
        let c = k
            .culprit()
            .expect("every key is shrunk to an op that cannot be placed");
        assert!(
            matches!(c.f.as_str(), "read" | "cas"),
            "blames a {}: {}",
            c.f,
            k.sentence.text
        );
        let key_ops: Vec<_> = ops.iter().filter(|o| o.key == k.key).cloned().collect();
        let opts = CheckOptions {
            model: Some(model),
            ..CheckOptions::default()
        };
        let verdict = |keep: &dyn Fn(u64) -> bool| {
            let mask: Vec<bool> = key_ops.iter().map(|o| keep(o.invoke_index)).collect();
            linearizable::check(&relaxed(&key_ops, &mask), &opts)
                .unwrap()
                .verdict
        };
        let members: Vec<u64> = k.ops.iter().map(|o| o.invoke_index).collect();
        assert_eq!(verdict(&|i| members.contains(&i)), LinVerdict::Illegal);
        assert_eq!(
            verdict(&|i| members.contains(&i) && i != c.invoke_index),
            LinVerdict::Linearizable,
            "the blamed op cannot be placed: {}",
            k.sentence.text
        );
        assert!(k.ops.len() <= 8, "{} ops: {}", k.ops.len(), k.sentence.text);
    }
    // The terminal says the first sentence, and no checker jargon.
    let first = &a.counterexamples[0].sentence.text;
    let flat: String = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(first),
        "summary lacks the sentence:\n{stdout}"
    );
    assert!(!stdout.contains("must come next"), "{stdout}");
}

/// The flags the two README examples share, then each one's own.
fn readme(own: &str) -> Vec<String> {
    let shared = "--nodes 3 --time-limit 10 --workload kv --nemesis partition --nemesis-interval 1";
    shared
        .split_whitespace()
        .chain(own.split_whitespace())
        .map(str::to_string)
        .collect()
}

#[test]
fn raft_unsafe_local_reads_are_explained() {
    let mut args = readme(
        "--partition-shapes leader --rate 800 --concurrency 40 --op-timeout-ms 300 --kvnode-args",
    );
    args.push("--read unsafe-local".into());
    example(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn nwr_partial_quorum_stale_reads_are_explained() {
    let args = readme("--engine nwr --nwr 3,1,1 --rate 400 --concurrency 12");
    example(&args.iter().map(String::as_str).collect::<Vec<_>>());
}
