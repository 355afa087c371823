//! `faultline serve` never serves a file outside the results directory, whatever a symlink
//! inside it points to (issue 10, item 7), while `results/latest` (a link to a run inside
//! the results) keeps working; and it warns when bound beyond loopback.

mod report_support;

use report_support::{faultline, sample_results, Server};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn symlinks_out_of_the_results_directory_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let (pass, _) = sample_results(&results);
    let outside = tmp.path().join("secret.txt");
    std::fs::write(&outside, "top secret").unwrap();
    std::os::unix::fs::symlink(&outside, results.join("x")).unwrap();
    std::os::unix::fs::symlink("/etc", results.join("etc-link")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), pass.join("up")).unwrap();
    std::os::unix::fs::symlink("sample-pass/20260101T000000Z", results.join("latest")).unwrap();
    let server = Server::start(&results);
    for path in [
        "x",
        "etc-link/passwd",
        "sample-pass/20260101T000000Z/up/secret.txt",
    ] {
        let (status, body) = server.get(path);
        assert_eq!(status, 403, "GET /{path} must be refused");
        assert!(
            !String::from_utf8_lossy(&body).contains("top secret")
                && !String::from_utf8_lossy(&body).contains("root:"),
            "GET /{path} leaked the target"
        );
    }
    let (status, body) = server.get("latest/history.jsonl");
    assert_eq!(
        status, 200,
        "results/latest is inside the results directory"
    );
    assert!(!body.is_empty());
}

#[test]
fn binding_beyond_loopback_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = faultline()
        .args(["serve", "--dir"])
        .arg(tmp.path())
        .args(["--bind", "0.0.0.0:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("warning") && line.contains("cluster logs"),
        "no warning for 0.0.0.0: {line:?}"
    );
}
