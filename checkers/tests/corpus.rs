//! The in-repo corpus (`tests/data/`, hand-written, see its README): every file gets the
//! verdict `expected.tsv` gives it, partitioned and as one history (both strategies), and a
//! brute-force oracle that shares no code with the checker agrees. It covers every importer
//! (our JSONL, Jepsen EDN as one vector and as a map per line, Jepsen's independent `[k v]`
//! form, Porcupine's etcd log with tabs and with spaces, Porcupine's kv maps), so the checker
//! and the importers are tested on a fresh clone without the shared corpus.

use checkers::import::{self, Format};
use checkers::linearizable::{check, CheckOptions, Strategy, Verdict};
use std::path::PathBuf;
use std::time::Duration;

mod common;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[test]
fn every_file_gets_its_expected_verdict() {
    let cases = common::expected_verdicts(&data().join("expected.tsv"));
    assert!(cases.len() >= 10, "the corpus lost files: {}", cases.len());
    let mut wrong = Vec::new();
    for (file, model, want) in &cases {
        let text = std::fs::read_to_string(data().join(file)).expect("corpus file readable");
        let ops = import::parse(&text, None)
            .and_then(|h| h.operations())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let oracle = if common::brute_force_per_key(&ops, *model) {
            Verdict::Linearizable
        } else {
            Verdict::Illegal
        };
        if oracle != *want {
            wrong.push(format!(
                "{file}: expected.tsv says {want:?}, the oracle {oracle:?}"
            ));
        }
        for (partition, strategy) in [
            (true, Strategy::Compositional),
            (false, Strategy::Compositional),
            (false, Strategy::Plain),
        ] {
            let opts = CheckOptions {
                model: Some(*model),
                partition,
                strategy,
                timeout: Some(Duration::from_secs(30)),
                ..CheckOptions::default()
            };
            let got = check(&ops, &opts).expect("checks").verdict;
            if got != *want {
                wrong.push(format!(
                    "{file} (partition {partition}, {strategy:?}): want {want:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_importer_shape_is_covered() {
    let cases = common::expected_verdicts(&data().join("expected.tsv"));
    let mut shapes = std::collections::BTreeSet::new();
    for (file, _, _) in &cases {
        let text = std::fs::read_to_string(data().join(file)).expect("corpus file readable");
        let format = import::detect(&text).unwrap_or_else(|| panic!("{file}: undetected"));
        let first = text.lines().find(|l| !l.starts_with(';')).unwrap_or("");
        let shape = match format {
            Format::Jsonl => "jsonl",
            Format::Porcupine if first.contains('\t') => "porcupine log, tabs",
            Format::Porcupine => "porcupine log, spaces",
            Format::Edn if first.trim_start().starts_with('[') => "edn vector",
            Format::Edn if first.contains(":key") => "edn maps with :key (porcupine kv)",
            Format::Edn if first.contains(":value [:") => "edn maps, independent [k v]",
            Format::Edn => "edn maps",
        };
        shapes.insert(shape);
    }
    for want in [
        "jsonl",
        "porcupine log, tabs",
        "porcupine log, spaces",
        "edn vector",
        "edn maps with :key (porcupine kv)",
        "edn maps, independent [k v]",
    ] {
        assert!(
            shapes.contains(want),
            "no corpus file in the shape {want:?}: {shapes:?}"
        );
    }
}
