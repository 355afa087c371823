//! `faultline check` end to end: the real binary on real and malformed files, checking exit
//! codes (0 linearizable, 1 illegal, 2 unknown, 3 bad input) and that errors name the line.

use std::path::PathBuf;
use std::process::Command;

fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/porcupine")
        .join(file)
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

#[test]
fn verdicts_map_to_exit_codes() {
    let ok = data("etcd/etcd_002.log");
    let (code, out, _) = run(&["check", ok.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("linearizable"));
    let bad = data("kv/c10-bad.txt");
    let (code, out, _) = run(&["check", bad.to_str().unwrap(), "--no-partition"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("counterexample"), "{out}");
}

#[test]
fn json_output_is_the_full_result() {
    let bad = data("etcd/etcd_000.log");
    let (code, out, _) = run(&[
        "check",
        bad.to_str().unwrap(),
        "--json",
        "--model",
        "cas-register",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["verdict"], "illegal");
    assert!(v["partitions"][0]["counterexample"]["unplaceable"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
}

#[test]
fn malformed_input_exits_3_naming_the_line() {
    let w = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#;
    let cases = [
        (format!("{w}\n{{not json\n"), ":2:"),
        (format!("{w}\n{}\n", w.replace("invoke", "bogus")), ":2:"),
        (format!("{}\n", w.replace("invoke", "ok")), ":1:"),
        (format!("{w}\n{{\"index\":1,\"ti"), ":2:"),
        ("\n\n".to_string(), ":1:"),
    ];
    for (text, line) in cases {
        let (_dir, path) = temp_file(&text);
        let (code, _, err) = run(&["check", &path]);
        assert_eq!(code, 3, "input {text:?}: {err}");
        assert!(
            err.contains(line),
            "input {text:?} should name {line}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, _, err) = run(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn exhausted_budget_is_unknown_exit_2() {
    let file = data("kv/c50-ok.txt");
    let (code, out, _) = run(&[
        "check",
        file.to_str().unwrap(),
        "--no-partition",
        "--strategy",
        "plain",
        "--timeout",
        "0.05",
    ]);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn html_page_for_an_imported_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("cx.html");
    let bad = data("etcd/etcd_000.log");
    let (code, _, err) = run(&[
        "check",
        bad.to_str().unwrap(),
        "--html",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    let page = std::fs::read_to_string(&out).expect("page written");
    assert!(page.contains("NOT LINEARIZABLE"), "verdict banner");
    assert!(
        page.contains("cannot be"),
        "names the ops that cannot be placed"
    );
    assert!(page.contains("etcd_000.log"), "title names the file");

    let ok = data("etcd/etcd_002.log");
    let (code, _, _) = run(&[
        "check",
        ok.to_str().unwrap(),
        "--html",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let page = std::fs::read_to_string(&out).expect("page written");
    assert!(page.contains(">LINEARIZABLE<"), "{page}");

    let (code, _, err) = run(&[
        "check",
        ok.to_str().unwrap(),
        "--html",
        "/nonexistent-dir/x.html",
    ]);
    assert_eq!(code, 3);
    assert!(err.contains("--html /nonexistent-dir/x.html"), "{err}");
}
