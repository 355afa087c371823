//! Every history in the optional Porcupine corpus (`$FAULTLINE_CORPUS`, default
//! `../shared/data`, see `testkit`) gets the verdict its authors expect, partitioned and (for
//! kv) as one unpartitioned history. Without the corpus these tests show as
//! `ignored, needs the Porcupine corpus ...`; under `FAULTLINE_REQUIRE_ALL=1` they fail saying
//! so. The in-repo corpus (`corpus.rs`, `synthetic.rs`) covers the same ground on a fresh clone.

use checkers::import;
use checkers::linearizable::{check, CheckOptions, Strategy, Verdict};
use checkers::model::ModelKind;
use std::path::PathBuf;
use std::time::Duration;
use testkit::Need;

mod common;

/// `porcupine/` inside the corpus, or `None` (after a visible skip line) when it is absent.
fn data_dir() -> Option<PathBuf> {
    testkit::require(Need::Corpus).map(|d| d.join("porcupine"))
}

fn run(
    dir: &std::path::Path,
    file: &str,
    model: ModelKind,
    partition: bool,
    strategy: Strategy,
) -> Verdict {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    let ops = import::parse(&text, None)
        .and_then(|h| h.operations())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
#[cfg_attr(
    missing_corpus,
    ignore = "needs the Porcupine corpus: FAULTLINE_CORPUS=DIR or ../shared/data"
)]
fn expected_verdicts_partitioned() {
    let Some(dir) = data_dir() else { return };
    let mut wrong = Vec::new();
    for (file, model, want) in common::expected_verdicts(&dir.join("expected.tsv")) {
        let got = run(&dir, &file, model, true, Strategy::Compositional);
        if got != want {
            wrong.push(format!("{file}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
#[cfg_attr(
    missing_corpus,
    ignore = "needs the Porcupine corpus: FAULTLINE_CORPUS=DIR or ../shared/data"
)]
fn kv_unpartitioned_compositional() {
    let Some(dir) = data_dir() else { return };
    for (file, model, want) in common::expected_verdicts(&dir.join("expected.tsv")) {
        if model == ModelKind::Kv {
            let got = run(&dir, &file, model, false, Strategy::Compositional);
            assert_eq!(got, want, "{file}");
        }
    }
}

#[test]
#[cfg_attr(
    missing_corpus,
    ignore = "needs the Porcupine corpus: FAULTLINE_CORPUS=DIR or ../shared/data"
)]
fn kv_unpartitioned_plain_small() {
    // Porcupine's own unpartitioned search on the product state, for the files it can do.
    let Some(dir) = data_dir() else { return };
    for (file, model, want) in common::expected_verdicts(&dir.join("expected.tsv")) {
        if model == ModelKind::Kv && (file.contains("c01") || file.contains("c10")) {
            assert_eq!(
                run(&dir, &file, model, false, Strategy::Plain),
                want,
                "{file}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    missing_corpus,
    ignore = "needs the Porcupine corpus: FAULTLINE_CORPUS=DIR or ../shared/data"
)]
fn c50_bad_per_key_every_key_decided() {
    // The hardest file: Porcupine decides it only because the first illegal key cancels the
    // rest; here every one of its 10 keys must be decided (each is illegal) within the budget.
    let Some(dir) = data_dir() else { return };
    let path = dir.join("kv/c50-bad.txt");
    let text = std::fs::read_to_string(&path).expect("c50-bad.txt readable");
    let ops = import::parse(&text, None)
        .and_then(|h| h.operations())
        .expect("parses");
    let opts = CheckOptions {
        model: Some(ModelKind::Kv),
        timeout: Some(Duration::from_secs(30)),
        ..CheckOptions::default()
    };
    let r = check(&ops, &opts).expect("checks");
    assert_eq!(r.partitions.len(), 10);
    for p in &r.partitions {
        assert_eq!(
            p.verdict,
            Verdict::Illegal,
            "key {:?}: {:?}",
            p.key,
            p.reason
        );
    }
}
