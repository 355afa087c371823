//! Every history in ../shared/data/porcupine/expected.tsv gets the verdict its authors expect,
//! partitioned and (for kv) as one unpartitioned history.

use checkers::import;
use checkers::linearizable::{check, CheckOptions, Strategy, Verdict};
use checkers::model::ModelKind;
use std::path::PathBuf;
use std::time::Duration;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/porcupine")
}

fn cases() -> Vec<(String, ModelKind, Verdict)> {
    let tsv =
        std::fs::read_to_string(data_dir().join("expected.tsv")).expect("expected.tsv readable");
    tsv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let verdict = match f[2] {
                "linearizable" => Verdict::Linearizable,
                "illegal" => Verdict::Illegal,
                other => panic!("unknown verdict {other}"),
            };
            (f[0].to_string(), f[1].parse().expect("model"), verdict)
        })
        .collect()
}

fn run(file: &str, model: ModelKind, partition: bool, strategy: Strategy) -> Verdict {
    let text = std::fs::read_to_string(data_dir().join(file)).expect("data file");
    let ops = import::parse(&text, None)
        .expect("parses")
        .operations()
        .expect("pairs");
    let opts = CheckOptions {
        model: Some(model),
        partition,
        strategy,
        timeout: Some(Duration::from_secs(30)),
        ..CheckOptions::default()
    };
    check(&ops, &opts).expect("checks").verdict
}

#[test]
fn expected_verdicts_partitioned() {
    let mut wrong = Vec::new();
    for (file, model, want) in cases() {
        let got = run(&file, model, true, Strategy::Compositional);
        if got != want {
            wrong.push(format!("{file}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn kv_unpartitioned_compositional() {
    for (file, model, want) in cases() {
        if model == ModelKind::Kv {
            assert_eq!(
                run(&file, model, false, Strategy::Compositional),
                want,
                "{file}"
            );
        }
    }
}

#[test]
fn kv_unpartitioned_plain_small() {
    // Porcupine's own unpartitioned search on the product state, for the files it can do.
    for (file, model, want) in cases() {
        if model == ModelKind::Kv && (file.contains("c01") || file.contains("c10")) {
            assert_eq!(run(&file, model, false, Strategy::Plain), want, "{file}");
        }
    }
}
