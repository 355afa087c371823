//! `faultline test` end to end at the process level: bad input is refused before anything
//! starts, and nothing we start outlives a run, also one interrupted with SIGINT.

mod common;

use common::{bound_ports, faultline, processes_mentioning, results_dir, run_dir, run_test};
use std::time::{Duration, Instant};

fn refused(args: &[&str], expect: &str) {
    let dir = results_dir();
    let (code, out) = run_test(dir.path(), args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(code, 0, "{args:?} must fail");
    assert!(
        err.contains(expect),
        "{args:?}: stderr lacks {expect:?}:\n{err}"
    );
    assert!(processes_mentioning(&dir.path().display().to_string()).is_empty());
    // Nothing started: no run directory was made.
    assert!(
        !dir.path().join("latest").exists(),
        "{args:?} created a run"
    );
}

#[test]
fn bad_input_is_refused_before_anything_starts() {
    refused(&["--frobnicate"], "--frobnicate");
    refused(&["--nodes", "0"], "--nodes must be at least 1");
    refused(&["--nemesis", "flood"], "unknown nemesis \"flood\"");
    refused(&["--workload", "bank"], "unknown workload");
    refused(&["--partition-shapes", "star"], "unknown partition shape");
    // A results "directory" that is a file: not writable.
    let f = tempfile::NamedTempFile::new().unwrap();
    let out = faultline()
        .args(["test", "--results"])
        .arg(f.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not writable"), "{err}");
}

#[test]
fn clock_without_libfaketime_names_the_package() {
    let dir = results_dir();
    let out = faultline()
        .args(["test", "--nemesis", "clock", "--results"])
        .arg(dir.path())
        .env("FAULTLINE_FAKETIME_LIB", "/nonexistent/libfaketime.so.1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("apt-get install -y faketime"));
}

fn assert_nothing_left(dir: &std::path::Path) {
    let run = run_dir(dir);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = processes_mentioning(&dir.display().to_string());
        let ports = bound_ports(&run);
        if procs.is_empty() && ports.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: pids {procs:?}, ports {ports:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_run_leaves_nothing_behind() {
    let dir = results_dir();
    let (code, out) = run_test(
        dir.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "0.5",
            "--seed",
            "3",
        ],
    );
    assert_eq!(
        code,
        0,
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_dir(dir.path());
    for f in [
        "test.json",
        "history.jsonl",
        "results.json",
        "n1/node.log",
        "n3/node.log",
    ] {
        assert!(run.join(f).exists(), "missing {f}");
    }
    assert_nothing_left(dir.path());
}

#[test]
fn sigint_tears_everything_down() {
    let dir = results_dir();
    let mut child = faultline()
        .args([
            "test",
            "--nodes",
            "3",
            "--time-limit",
            "60",
            "--nemesis",
            "pause,kill",
            "--nemesis-interval",
            "0.5",
            "--no-report",
            "--results",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the cluster serves and ops are being recorded.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = dir.path().join("latest/history.jsonl");
        if std::fs::read_to_string(&h)
            .map(|s| s.lines().count() > 50)
            .unwrap_or(false)
        {
            break;
        }
        assert!(Instant::now() < deadline, "run never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "faultline did not exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(255));
    assert_nothing_left(dir.path());
}

#[test]
fn bench_harness_reports_throughput_and_memory() {
    let out = faultline()
        .args(["bench", "harness", "--ops", "20000", "--concurrency", "50"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ops/s") && text.contains("per 100k ops"),
        "{text}"
    );
}
