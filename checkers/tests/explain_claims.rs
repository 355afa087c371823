//! Every sentence the analysis prints about an anomaly is held to the history it talks about:
//! each claim is checked against the raw events ([`explain::verify_sentence`]), the minimal
//! counterexample is illegal and relaxing any one of its ops makes it legal, and the op blamed
//! really cannot be placed (the set without it is legal). Run on every anomaly kind built by
//! hand, on synthetic histories with injected stale reads, and on every illegal file of the
//! Porcupine corpus.

use checkers::analysis::{Analysis, AnalysisOptions};
use checkers::explain::{self, KeyExplanation};
use checkers::history::{Event, EventType, History, Process};
use checkers::linearizable::{self, CheckOptions, Verdict};
use checkers::minimize::relaxed;
use checkers::model::ModelKind;
use serde_json::{json, Value};
use std::time::Duration;

/// Builds events from ops: (process, f, key, input, output or None for info, call ms, end ms,
/// node). Events are sorted by time (invokes first on ties) and indexed.
type Spec<'a> = (
    u64,
    &'a str,
    Option<&'a str>,
    Value,
    Option<Value>,
    u64,
    u64,
    &'a str,
);

fn events(spec: &[Spec]) -> Vec<Event> {
    let mut evs: Vec<(u64, u8, Event)> = Vec::new();
    for (p, f, key, input, output, call, end, node) in spec {
        let ev = |kind, value: Value, t: u64, node: Option<String>| Event {
            index: 0,
            time: t * 1_000_000,
            process: Process::Client(*p),
            kind,
            f: f.to_string(),
            key: key.map(str::to_string),
            value,
            node,
            error: None,
        };
        evs.push((*call, 0, ev(EventType::Invoke, input.clone(), *call, None)));
        let done = match output {
            Some(v) => ev(EventType::Ok, v.clone(), *end, Some(node.to_string())),
            None => {
                let mut e = ev(EventType::Info, input.clone(), *end, Some(node.to_string()));
                e.error = Some("timeout".into());
                e
            }
        };
        evs.push((*end, 1, done));
    }
    checkers::synth::indexed(evs)
}

fn nemesis(evs: &mut Vec<Event>, t_ms: u64, f: &str, value: Value) {
    evs.push(checkers::synth::nemesis_event(t_ms * 1_000_000, f, value));
    evs.sort_by_key(|e| (e.time, e.process != Process::Nemesis));
    for (i, e) in evs.iter_mut().enumerate() {
        e.index = i as u64;
    }
}

/// Checks everything this file promises about one analysis of `evs`; returns it.
fn hold(evs: &[Event], model: ModelKind, init: Value) -> Analysis {
    let history = History::from_events(evs.to_vec());
    let opts = AnalysisOptions {
        check: CheckOptions {
            model: Some(model),
            init: init.clone(),
            timeout: Some(Duration::from_secs(30)),
            ..CheckOptions::default()
        },
        minimize: Duration::from_secs(60),
        ..AnalysisOptions::default()
    };
    let a = Analysis::new(&history, &opts);
    for k in &a.counterexamples {
        hold_key(k, evs, model, &init, true);
    }
    a
}

/// `minimal`: also require that relaxing each op alone was shown to make the key legal (the
/// corpus's kv histories can exhaust the shrinking budget; then the set is still illegal and
/// the culprit still cannot be placed, which is what the sentence says).
fn hold_key(k: &KeyExplanation, evs: &[Event], model: ModelKind, init: &Value, minimal: bool) {
    explain::verify_sentence(&k.sentence, evs)
        .unwrap_or_else(|e| panic!("{e}\nsentence: {}", k.sentence.text));
    assert!(!k.ops.is_empty(), "no minimal set: {}", k.sentence.text);
    assert!(
        k.one_minimal || !minimal,
        "minimality not established: {}",
        k.sentence.text
    );
    // The key's ops as the checker saw them.
    let ops: Vec<_> = History::from_events(evs.to_vec())
        .operations()
        .unwrap()
        .into_iter()
        .filter(|o| o.key == k.key)
        .collect();
    let opts = CheckOptions {
        model: Some(model),
        init: init.clone(),
        timeout: Some(Duration::from_secs(120)),
        ..CheckOptions::default()
    };
    let member = |keep: &[u64]| -> Vec<bool> {
        ops.iter().map(|o| keep.contains(&o.invoke_index)).collect()
    };
    let verdict = |keep: &[u64]| {
        linearizable::check(&relaxed(&ops, &member(keep)), &opts)
            .unwrap()
            .verdict
    };
    let set: Vec<u64> = k.ops.iter().map(|o| o.invoke_index).collect();
    assert_eq!(
        verdict(&set),
        Verdict::Illegal,
        "the minimal set is illegal"
    );
    let c = k.culprit().expect("a culprit");
    let without: Vec<u64> = set
        .iter()
        .copied()
        .filter(|j| *j != c.invoke_index)
        .collect();
    assert_eq!(
        verdict(&without),
        Verdict::Linearizable,
        "the culprit really cannot be placed: the others are legal without it ({})",
        k.sentence.text
    );
    for i in set.iter().filter(|_| minimal) {
        let without: Vec<u64> = set.iter().copied().filter(|j| j != i).collect();
        assert_eq!(
            verdict(&without),
            Verdict::Linearizable,
            "relaxing op {i} makes it legal"
        );
    }
    // The blamed op is an observation, and it is the one that cannot be placed.
    let c = k.culprit().expect("a culprit");
    assert!(
        matches!(c.f.as_str(), "read" | "get" | "cas"),
        "blames a {} ({})",
        c.f,
        k.sentence.text
    );
    let text = &k.sentence.text;
    assert!(
        text.contains(&format!(
            "by p{}",
            match c.process {
                Process::Client(p) => p,
                Process::Nemesis => u64::MAX,
            }
        )),
        "the sentence names the culprit's process: {text}"
    );
}

const N: Value = Value::Null;

fn r(p: u64, v: i64, call: u64, end: u64, node: &'static str) -> Spec<'static> {
    (p, "read", Some("k"), N, Some(json!(v)), call, end, node)
}
fn w(p: u64, v: i64, call: u64, end: u64, node: &'static str) -> Spec<'static> {
    (
        p,
        "write",
        Some("k"),
        json!(v),
        Some(json!(v)),
        call,
        end,
        node,
    )
}
fn cas(p: u64, a: i64, b: i64, call: u64, end: u64, node: &'static str) -> Spec<'static> {
    (
        p,
        "cas",
        Some("k"),
        json!([a, b]),
        Some(json!([a, b])),
        call,
        end,
        node,
    )
}

/// Fresh writes and reads of their own values around the anomaly, so shrinking has work to do.
fn noise(spec: &mut Vec<Spec<'static>>, from: u64) {
    for i in 0..12u64 {
        let t = from + 8 * i;
        spec.push(w(200 + i, 900 + i as i64, t, t + 3, "n1"));
        spec.push(r(300 + i, 900 + i as i64, t + 4, t + 6, "n2"));
    }
}

fn kind_of(a: &Analysis) -> String {
    a.counterexamples[0].kind.clone().unwrap_or_default()
}

#[test]
fn stale_read_after_a_write() {
    let mut spec = vec![
        w(1, 1, 0, 10, "n1"),
        w(2, 2, 20, 30, "n1"),
        r(3, 1, 48, 55, "n3"),
    ];
    noise(&mut spec, 100);
    let mut evs = events(&spec);
    let grudge = json!({"type":"partition","shape":"leader","grudge":{"n3":["n1","n2"],"n1":["n3"],"n2":["n3"]}});
    nemesis(&mut evs, 15, "partition-start", grudge.clone());
    nemesis(&mut evs, 90, "partition-stop", grudge);
    nemesis(
        &mut evs,
        16,
        "cluster-status",
        json!({"nodes":{
        "n1":{"role":"leader","term":4,"leader":"n1"},"n2":{"role":"follower","term":4,"leader":"n1"},
        "n3":{"role":"leader","term":3,"leader":"n3"}}}),
    );
    let a = hold(&evs, ModelKind::CasRegister, N);
    assert_eq!(kind_of(&a), "stale read");
    let t = &a.counterexamples[0].sentence.text;
    assert!(
        t.starts_with(
            "read → 1 by p3 via n3 began 18 ms after write 2 by p2 via n1 was acknowledged"
        ),
        "{t}"
    );
    assert!(t.contains("n3 could not reach n1, n2"), "{t}");
    assert!(
        t.contains("n1 claimed to lead (term 4) and n3 claimed to lead (term 3)"),
        "{t}"
    );
}

#[test]
fn stale_read_after_a_cas_blames_the_read_not_the_write() {
    // The Raft --read unsafe-local pattern: the write of 603 is the only one; a cas moved the
    // value on; a later read on a deposed leader still returns 603.
    let mut spec = vec![
        w(12, 603, 0, 5, "n1"),
        cas(66, 603, 662, 10, 20, "n1"),
        r(80, 603, 32, 40, "n3"),
        w(13, 525, 25, 70, "n1"),
    ];
    noise(&mut spec, 100);
    let a = hold(&events(&spec), ModelKind::CasRegister, N);
    assert_eq!(kind_of(&a), "stale read");
    let k = &a.counterexamples[0];
    assert_eq!(k.ops.len(), 2, "{:?}", k.ops);
    let t = &k.sentence.text;
    assert!(
        t.starts_with("read → 603 by p80 via n3 began 12 ms after cas 603→662 by p66 via n1 was acknowledged, yet it returned 603: that cas had replaced it, and the only write of 603 was write 603 by p12 via n1."),
        "{t}"
    );
}

#[test]
fn cas_on_a_stale_value() {
    let mut spec = vec![
        w(1, 5, 0, 10, "n1"),
        w(2, 6, 20, 30, "n1"),
        cas(3, 5, 7, 40, 50, "n2"),
    ];
    noise(&mut spec, 100);
    let a = hold(&events(&spec), ModelKind::CasRegister, N);
    assert_eq!(kind_of(&a), "lost update (cas on a stale value)");
    assert!(a.counterexamples[0]
        .sentence
        .text
        .starts_with("cas 5→7 by p3 via n2 began"));
}

#[test]
fn read_of_a_value_never_written() {
    let mut spec = vec![w(1, 5, 0, 10, "n1"), r(2, 9, 20, 30, "n1")];
    noise(&mut spec, 100);
    let a = hold(&events(&spec), ModelKind::CasRegister, N);
    assert_eq!(kind_of(&a), "read of a value never written");
}

#[test]
fn read_from_the_future() {
    let mut spec = vec![r(1, 5, 0, 10, "n1"), w(2, 5, 20, 30, "n2")];
    noise(&mut spec, 100);
    let a = hold(&events(&spec), ModelKind::CasRegister, N);
    assert_eq!(kind_of(&a), "read from the future");
    let t = &a.counterexamples[0].sentence.text;
    assert!(t.contains("began only at 0.020 s"), "{t}");
}

#[test]
fn new_old_inversion() {
    // The newer write is still in flight; one read sees it, a later one does not.
    let mut spec = vec![
        w(1, 1, 0, 10, "n1"),
        w(2, 2, 20, 80, "n1"),
        r(3, 2, 30, 40, "n2"),
        r(4, 1, 50, 60, "n3"),
    ];
    noise(&mut spec, 100);
    let a = hold(&events(&spec), ModelKind::Register, N);
    assert_eq!(kind_of(&a), "new-old inversion");
    let t = &a.counterexamples[0].sentence.text;
    assert!(
        t.starts_with(
            "read → 1 by p4 via n3 began 10 ms after read → 2 by p3 via n2 had completed"
        ),
        "{t}"
    );
}

#[test]
fn cas_that_found_another_value_although_the_register_held_it() {
    // Porcupine's etcd semantics: an ok cas with value false ran and found no match.
    let mut spec = vec![
        w(1, 5, 0, 10, "n1"),
        (
            3,
            "cas",
            Some("k"),
            json!([5, 7]),
            Some(json!(false)),
            20,
            30,
            "n2",
        ),
    ];
    noise(&mut spec, 100);
    let a = hold(&events(&spec), ModelKind::CasRegister, N);
    assert_eq!(kind_of(&a), "cas mismatch on the current value");
}

#[test]
fn several_keys_each_explained() {
    let mut spec: Vec<Spec> = Vec::new();
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        let t = 100 * i as u64;
        let v = 10 * i as i64;
        spec.push((
            1,
            "write",
            Some(key),
            json!(v),
            Some(json!(v)),
            t,
            t + 5,
            "n1",
        ));
        spec.push((
            2,
            "write",
            Some(key),
            json!(v + 1),
            Some(json!(v + 1)),
            t + 10,
            t + 15,
            "n1",
        ));
        spec.push((
            3,
            "read",
            Some(key),
            N,
            Some(json!(v)),
            t + 20,
            t + 25,
            "n2",
        ));
    }
    let a = hold(&events(&spec), ModelKind::CasRegister, N);
    assert_eq!(a.counterexamples.len(), 3, "every failing key explained");
}

/// A ghost write: the sentence of every ghost holds, claim by claim.
#[test]
fn ghost_sentences_hold() {
    let spec = vec![
        w(1, 1, 0, 10, "n1"),
        (5, "write", Some("k"), json!(17), None, 100, 3200, "n2"),
        w(2, 42, 4000, 4100, "n1"),
        r(3, 42, 4400, 4500, "n1"),
        r(4, 17, 9100, 9150, "n2"),
    ];
    let evs = events(&spec);
    let a = hold(&evs, ModelKind::CasRegister, N);
    assert_eq!(a.decided_by, Some(checkers::analysis::Check::Ghosts));
    let g = &a.ghosts.as_ref().unwrap().ghosts[0];
    explain::verify_sentence(&g.sentence, &evs).unwrap();
    assert_eq!(g.explanation, g.sentence.text);
    assert!(a.summary.contains(&g.explanation), "{}", a.summary);
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 24, ..Default::default() })]

    /// Synthetic register histories (linearizable by construction, some ops indeterminate)
    /// with one stale read injected: the shrunk set is illegal, relaxing any one of its ops
    /// makes it legal, the blamed op is an observation that cannot be placed, and every claim
    /// of the sentence holds, whatever the seed, size and concurrency.
    #[test]
    fn shrunk_sets_of_injected_stale_reads(
        seed in 0u64..10_000,
        ops in 40usize..400,
        processes in 2usize..10,
    ) {
        let spec = checkers::synth::SynthSpec {
            ops,
            keys: 1,
            processes,
            info_rate: 0.03,
            latency: 200,
            seed,
        };
        let mut evs = checkers::synth::register(&spec, true, 1_000_000);
        if checkers::synth::inject_stale_read(&mut evs) {
            let a = hold(&evs, ModelKind::CasRegister, N);
            proptest::prop_assert_eq!(a.counterexamples.len(), 1);
        }
    }
}

/// Every illegal file of the Porcupine corpus: the explanation names an op that really cannot
/// be placed and every claim of its sentence holds.
#[test]
#[cfg_attr(
    missing_corpus,
    ignore = "needs the Porcupine corpus: set FAULTLINE_CORPUS=DIR or place it at ../shared/data"
)]
fn porcupine_corpus_illegal_files() {
    let Some(dir) = testkit::require(testkit::Need::Corpus) else {
        return;
    };
    let root = dir.join("porcupine");
    let tsv = std::fs::read_to_string(root.join("expected.tsv")).unwrap();
    let mut checked = 0;
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 || f[2] != "illegal" {
            continue;
        }
        let model: ModelKind = f[1].parse().unwrap();
        let text = std::fs::read_to_string(root.join(f[0])).unwrap();
        let history = checkers::import::parse(&text, None).unwrap();
        let opts = AnalysisOptions {
            check: CheckOptions {
                model: Some(model),
                timeout: Some(Duration::from_secs(30)),
                ..CheckOptions::default()
            },
            minimize: Duration::from_secs(60),
            ..AnalysisOptions::default()
        };
        let a = Analysis::new(&History::from_events(history.events.clone()), &opts);
        // Keys whose single check takes the checker seconds (c50-bad) may not shrink in the
        // budget; they say so. Every key that did is held to its sentence, and so is the
        // one the run's summary quotes.
        for k in a.counterexamples.iter().filter(|k| k.culprit.is_some()) {
            hold_key(k, &history.events, model, &N, false);
        }
        let quoted = a.counterexamples.iter().find(|k| k.culprit.is_some());
        assert!(quoted.is_some(), "{}: no key shrunk", f[0]);
        assert!(a.summary.contains(&quoted.unwrap().sentence.text));
        eprintln!(
            "{}: {} keys; first minimal set {} ops: {}",
            f[0],
            a.counterexamples.len(),
            a.counterexamples[0].ops.len(),
            a.counterexamples[0].sentence.text
        );
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} illegal files");
}
