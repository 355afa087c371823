//! `faultline check` end to end: the real binary on the in-repo corpus (checkers/tests/data),
//! on generated and malformed files, checking exit codes (0 linearizable, 1 illegal,
//! 2 unknown, 3 bad input, 255 bad flags) and that errors name the line. One test needs the
//! optional Porcupine corpus and shows as ignored without it.

use checkers::synth::{self, SynthSpec};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

/// A file of the in-repo corpus.
fn data(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../checkers/tests/data")
        .join(file)
        .display()
        .to_string()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = faultline().args(args).output().expect("faultline runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(contents: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, contents).expect("write");
    (dir, path.display().to_string())
}

/// A generated kv history of 50 slow clients over 10 keys, as JSONL: compositional checking
/// decides it in milliseconds, the plain product search never does.
fn hard_for_the_product_search() -> (tempfile::TempDir, String) {
    let spec = SynthSpec {
        ops: 4000,
        keys: 10,
        processes: 50,
        info_rate: 0.0,
        latency: 2000,
        seed: 1,
    };
    let mut text = String::new();
    for e in synth::kv(&spec) {
        text.push_str(&serde_json::to_string(&e).expect("serializes"));
        text.push('\n');
    }
    temp_file(&text)
}

#[test]
fn verdicts_map_to_exit_codes() {
    let (code, out, _) = run(&["check", &data("porcupine/etcd-ok.log")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("linearizable"));
    let (code, out, _) = run(&["check", &data("edn/kv-lost-append.txt"), "--no-partition"]);
    assert_eq!(code, 1, "{out}");
    // The minimal counterexample names the lines of the file, not event indices.
    assert!(
        out.lines().any(|l| l.contains("get() -> \"x 1 0 y\"")
            && l.contains("line 5")
            && l.ends_with("cannot be placed")),
        "{out}"
    );
}

/// The terminal says what the page says: each illegal key's sentence, whose every claim holds
/// against the file, and the minimal set with the op that cannot be placed.
#[test]
fn an_illegal_history_is_explained_by_checked_sentences() {
    use checkers::analysis::{Analysis, AnalysisOptions};
    use checkers::linearizable::CheckOptions;
    for (file, model) in [
        (
            "jsonl/register-stale.jsonl",
            checkers::model::ModelKind::Register,
        ),
        (
            "porcupine/etcd-bad.log",
            checkers::model::ModelKind::CasRegister,
        ),
    ] {
        let path = data(file);
        let (code, out, err) = run(&["check", &path, "--model", model.name()]);
        assert_eq!(code, 1, "{file}: {out}{err}");
        let text = std::fs::read_to_string(&path).unwrap();
        let history = checkers::import::parse(&text, None).unwrap();
        let a = Analysis::new(
            &history,
            &AnalysisOptions {
                check: CheckOptions {
                    model: Some(model),
                    ..CheckOptions::default()
                },
                ..AnalysisOptions::default()
            },
        );
        let k = &a.counterexamples[0];
        assert!(out.contains(&k.sentence.text), "{file}: {out}");
        checkers::explain::verify_sentence(&k.sentence, &history.events).unwrap();
        let culprit = k.culprit().expect("a culprit");
        let blamed = out
            .lines()
            .find(|l| l.ends_with("cannot be placed"))
            .expect("a blamed op");
        assert!(
            blamed.contains(&format!(
                "process {}, line {}",
                culprit.process, culprit.line
            )),
            "{file}: {blamed} is not {culprit:?}"
        );
        assert!(!out.contains(" 0 µs"), "a gap rounded to nothing: {out}");
    }
}

#[test]
fn json_output_is_the_full_result() {
    let (code, out, _) = run(&[
        "check",
        &data("porcupine/etcd-bad.log"),
        "--json",
        "--model",
        "cas-register",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["verdict"], "illegal");
    let unplaceable = &v["partitions"][0]["counterexample"]["unplaceable"];
    assert!(unplaceable.as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(
        unplaceable[0]["op"]["line"], 5,
        "the cas mismatch's invoke line"
    );
}

#[test]
fn malformed_input_exits_3_naming_the_line() {
    let w = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#;
    let ok = r#"{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":1}"#;
    let cases = [
        (format!("{w}\n{{not json\n"), ":2:", "key must be a string"),
        (
            format!("{w}\n{}\n", w.replace("invoke", "bogus")),
            ":2:",
            "bogus",
        ),
        (
            format!("{}\n", w.replace("invoke", "ok")),
            ":1:",
            "without a pending invoke",
        ),
        (format!("{w}\n{{\"index\":1,\"ti"), ":2:", "truncated"),
        ("\n\n".to_string(), ":1:", "empty history"),
        // A completion timed before its invoke.
        (
            format!("{w}\n{}\n", ok.replace(r#""time":2"#, r#""time":0"#)),
            ":2:",
            "earlier than its invoke",
        ),
        // Numbers a float would change: refused, never compared rounded.
        (
            format!(
                "{}\n{}\n",
                w.replace(":1}", ":18446744073709551616}"),
                ok.replace(":1}", ":18446744073709551616}")
            ),
            ":1:",
            "does not fit in 64 bits",
        ),
        (
            format!("{w}\n{}\n", ok.replace(":1}", ":0.10000000000000000001}")),
            ":2:",
            "exactly",
        ),
        // An op the model cannot read: the line, not an index.
        (
            format!(
                "\n{}\n{}\n",
                w.replace("write", "frob"),
                ok.replace("write", "frob")
            ),
            ":2:",
            "unknown function",
        ),
        (
            format!(
                "{}\n{}\n",
                w.replace(r#""write","value":1"#, r#""cas","value":3"#),
                ok.replace(r#""write","value":1"#, r#""cas","value":3"#)
            ),
            ":1:",
            "cas needs",
        ),
    ];
    for (text, line, what) in cases {
        let (_dir, path) = temp_file(&text);
        let (code, _, err) = run(&["check", &path, "--model", "cas-register"]);
        assert_eq!(code, 3, "input {text:?}: {err}");
        assert!(
            err.contains(&format!("{path}{line}")),
            "input {text:?} should name {line}: {err}"
        );
        assert!(
            err.contains(what),
            "input {text:?} should say {what:?}: {err}"
        );
        assert!(!err.contains("panicked") && !err.contains("index"), "{err}");
    }
    let (code, _, err) = run(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn huge_numbers_in_edn_and_porcupine_logs_exit_3_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edn = dir.path().join("h.edn");
    std::fs::write(
        &edn,
        "{:process 0 :type :invoke :f :write :value 1}\n{:process 0 :type :ok :f :write :value 1}\n{:process 1 :type :invoke :f :write :value 18446744073709551616N}\n",
    )
    .expect("write");
    let log = dir.path().join("h.log");
    std::fs::write(
        &log,
        "INFO  jepsen.util - 0\t:invoke\t:write\t99999999999999999999\n",
    )
    .expect("write");
    for path in [edn, log] {
        let shown = path.display().to_string();
        let (code, _, err) = run(&["check", &shown]);
        assert_eq!(code, 3, "{err}");
        let line = if shown.ends_with(".edn") { 3 } else { 1 };
        assert!(
            err.contains(&format!("{shown}:{line}: ")) && err.contains("64 bits"),
            "{err}"
        );
    }
}

#[test]
fn an_endless_line_is_refused_at_once() {
    // /dev/zero has no newline and no end: reading stops at the longest line allowed.
    let t = Instant::now();
    let (code, _, err) = run(&["check", "/dev/zero"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("/dev/zero:1: longer than"), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    // --help states the limit the reader enforces.
    let (_, help, _) = run(&["check", "--help"]);
    let mib = checkers::import::MAX_LINE_BYTES >> 20;
    assert!(help.contains(&format!("longer than {mib} MiB")), "{help}");
}

#[test]
fn exhausted_budget_is_unknown_exit_2() {
    let (_dir, path) = hard_for_the_product_search();
    let (code, out, _) = run(&[
        "check",
        &path,
        "--no-partition",
        "--strategy",
        "plain",
        "--timeout",
        "0.001",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("time budget exhausted"), "{out}");
}

#[test]
fn memory_cap_is_unknown_exit_2_with_the_reason() {
    let (_dir, path) = hard_for_the_product_search();
    let (code, out, err) = run(&[
        "check",
        &path,
        "--no-partition",
        "--strategy",
        "plain",
        "--timeout",
        "120",
        "--max-memory",
        "24M",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("memory limit of 24 MiB reached"), "{out}");
    // The same history split per key is decided well within the cap.
    let (code, out, _) = run(&["check", &path, "--max-memory", "24M"]);
    assert_eq!(code, 0, "{out}");
    // Text beyond an eighth of the cap is not even read.
    let big = "x".repeat(3 << 20);
    let (_d2, huge) = temp_file(&format!("{big}\n"));
    let (code, out, _) = run(&["check", &huge, "--max-memory", "16M"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("larger than 2 MiB"), "{out}");
}

#[test]
fn bad_sizes_and_inexact_init_are_flag_errors() {
    let ok = data("porcupine/etcd-ok.log");
    for bad in [
        ["--max-memory", "12"],
        ["--max-memory", "2X"],
        ["--max-memory", "1e30"],
        ["--max-memory", "4T"],
        ["--max-memory", "nan"],
        ["--max-memory", "inf"],
        ["--max-memory=-1", "--json"], // attached, or clap reads -1 as a flag
        ["--max-memory", "0"],
        ["--init", "18446744073709551616"],
        ["--init", "1e400"],
    ] {
        let mut args = vec!["check", ok.as_str()];
        args.extend(bad);
        let (code, _, err) = run(&args);
        assert_eq!(code, 255, "{bad:?}: {err}");
        let flag = bad[0].split('=').next().unwrap_or_default();
        assert!(err.contains(flag) && !err.contains("panicked"), "{err}");
    }
    let (code, _, err) = run(&["check", &ok, "--max-memory", "512M", "--init", "nil"]);
    assert_eq!(
        code, 1,
        "init \"nil\" is a string, so the first read of nil fails: {err}"
    );
}

#[test]
fn html_page_for_an_imported_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("cx.html");
    let bad = data("porcupine/etcd-bad.log");
    let (code, _, err) = run(&["check", &bad, "--html", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let page = std::fs::read_to_string(&out).expect("page written");
    assert!(page.contains("NOT LINEARIZABLE"), "verdict banner");
    assert!(
        page.contains("cannot be"),
        "names the ops that cannot be placed"
    );
    assert!(page.contains("etcd-bad.log"), "title names the file");

    let ok = data("porcupine/etcd-ok.log");
    let (code, _, _) = run(&["check", &ok, "--html", out.to_str().unwrap()]);
    assert_eq!(code, 0);
    let page = std::fs::read_to_string(&out).expect("page written");
    assert!(page.contains(">LINEARIZABLE<"), "{page}");

    let (code, _, err) = run(&["check", &ok, "--html", "/nonexistent-dir/x.html"]);
    assert_eq!(code, 3);
    assert!(err.contains("--html /nonexistent-dir/x.html"), "{err}");
}

#[test]
#[cfg_attr(
    missing_corpus,
    ignore = "needs the Porcupine corpus: FAULTLINE_CORPUS=DIR or ../shared/data"
)]
fn porcupine_c50_bad_every_key_decided() {
    let Some(dir) = testkit::require(testkit::Need::Corpus) else {
        return;
    };
    let file = dir.join("porcupine/kv/c50-bad.txt").display().to_string();
    let (code, out, err) = run(&["check", &file, "--model", "kv", "--json", "--timeout", "30"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let parts = v["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 10);
    for p in parts {
        assert_eq!(
            p["verdict"], "illegal",
            "key {} decided: {}",
            p["key"], p["reason"]
        );
    }
}

#[test]
fn multi_register_transactions_and_nil_reads_from_the_command_line() {
    let init = r#"{"x":0,"y":0}"#;
    let (code, out, err) = run(&[
        "check",
        &data("multi-register/good.edn"),
        "--model",
        "multi-register",
        "--init",
        init,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&["check", &data("multi-register/torn.edn"), "--init", init]);
    assert_eq!(
        code, 1,
        "a torn transaction is illegal (model inferred from txn): {out}"
    );
    let (code, _, _) = run(&["check", &data("multi-register/nil-read.edn")]);
    assert_eq!(code, 1, "by default nil is a value");
    let (code, out, _) = run(&[
        "check",
        &data("multi-register/nil-read.edn"),
        "--nil-reads",
        "unknown",
    ]);
    assert_eq!(code, 0, "Knossos's reading: {out}");
    let (_, help, _) = run(&["check", "--help"]);
    assert!(
        help.contains("--nil-reads")
            && help.contains("the default")
            && help.contains("multi-register"),
        "--help says which nil-read semantics is the default: {help}"
    );
}

#[test]
fn transactional_histories_are_checked_by_elle_with_the_isolation_asked() {
    let (code, out, _) = run(&["check", &data("elle/valid.edn")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("list-append"), "the model is inferred: {out}");
    // Write skew: prohibited by serializability, allowed by snapshot isolation.
    let (code, out, _) = run(&[
        "check",
        &data("elle/write-skew.edn"),
        "--isolation",
        "serializable",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("G2-item"), "{out}");
    let (code, out, _) = run(&[
        "check",
        &data("elle/write-skew.edn"),
        "--isolation",
        "snapshot-isolation",
    ]);
    assert_eq!(code, 0, "snapshot isolation allows write skew: {out}");
    let (code, out, _) = run(&[
        "check",
        &data("elle/aborted-read.edn"),
        "--model",
        "list-append",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("G1a"), "{out}");
    let (code, _, err) = run(&["check", &data("elle/valid.edn"), "--isolation", "nonsense"]);
    assert_eq!(code, 255, "{err}");
}
