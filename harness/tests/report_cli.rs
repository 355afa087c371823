//! `faultline report`, `faultline compare` and `faultline serve` end to end on sample runs
//! (no browser needed: HTTP is spoken by hand).

mod report_support;

use report_support::{faultline, sample_results, Server};

#[test]
fn report_regenerates_a_stored_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, fail) = sample_results(tmp.path());
    let out = faultline().arg("report").arg(&fail).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict: invalid"), "{stdout}");
    for f in [
        "index.html",
        "linearizability.html",
        "timeline.html",
        "rate.png",
    ] {
        assert!(fail.join(f).is_file(), "{f} missing");
    }
    // A directory without a history is a clear error, exit 255.
    let empty = tempfile::tempdir().unwrap();
    let out = faultline()
        .arg("report")
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no history.jsonl"));
}

#[test]
fn compare_puts_runs_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let (pass, fail) = sample_results(tmp.path());
    let page = tmp.path().join("compare.html");
    let out = faultline()
        .arg("compare")
        .arg(&pass)
        .arg(&fail)
        .arg("--out")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("sample-pass") && html.contains("sample-fail"));
    assert!(
        html.contains("sample-fail/20260102T000000Z/rate.png"),
        "relative plot links"
    );
}

#[test]
fn serve_lists_runs_and_serves_files_inside_the_results_dir_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (pass, _fail) = sample_results(tmp.path());
    report::render_run(&pass).unwrap();
    let server = Server::start(tmp.path());
    let (status, body) = server.get("");
    let listing = String::from_utf8_lossy(&body);
    assert_eq!(status, 200);
    assert!(listing.contains("sample-pass/20260101T000000Z/index.html"));
    assert!(listing.contains("sample-fail/20260102T000000Z/index.html"));
    // The failing run was never rendered: serve renders it on first request.
    let (status, body) = server.get("sample-fail/20260102T000000Z/index.html");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Verdict: INVALID"));
    let (status, png) = server.get("sample-pass/20260101T000000Z/rate.png");
    assert_eq!(status, 200);
    assert!(png.starts_with(b"\x89PNG"));
    let (status, _) = server.get("sample-pass/%2e%2e/%2e%2e/etc/passwd");
    assert_eq!(status, 400, "paths leaving the results dir are refused");
    let (status, _) = server.get("nope.html");
    assert_eq!(status, 404);
}
