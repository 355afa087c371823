//! No `panicked at` is reachable from any numeric flag: every duration, rate and count flag
//! of every subcommand is swept with values that used to panic (`nan`, `inf`, `-1`, `0`,
//! `1e30`, `1e-300`, a number beyond u64). Each must end in a clear error (exit 255, the
//! flag named) or, where the value is legal, a normal exit; never exit 101. `faultline test`
//! runs with `--dry-run` so legal values start nothing.

mod common;

use common::faultline;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

const VALUES: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e30",
    "1e-300",
    "99999999999999999999999",
    "",
];

/// Runs faultline with `args`, killing it after 60 s; returns (exit code, stderr).
fn run(args: &[String]) -> (Option<i32>, String) {
    let mut child = faultline()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (st.code(), String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("faultline {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sweep(prefix: &[&str], flags: &[&str], suffix: &[&str]) {
    for flag in flags {
        for v in VALUES {
            let mut args: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
            args.push(format!("--{flag}={v}"));
            // Defaults for the other required flags, never a second copy of the swept one.
            args.extend(
                suffix
                    .iter()
                    .filter(|s| !s.starts_with(&format!("--{flag}=")))
                    .map(|s| s.to_string()),
            );
            let (code, err) = run(&args);
            assert!(
                !err.contains("panicked at") && code != Some(101),
                "faultline {args:?} panicked (exit {code:?}):\n{err}"
            );
            assert!(code.is_some(), "faultline {args:?} was killed by a signal");
            if code == Some(255) {
                assert!(
                    err.contains(flag) || err.contains("error"),
                    "faultline {args:?}: the error does not name --{flag}:\n{err}"
                );
            }
        }
    }
}

#[test]
fn test_flags_never_panic() {
    let dir = common::results_dir();
    let results = dir.path().display().to_string();
    sweep(
        &["test", "--dry-run", "--results", &results],
        &[
            "nodes",
            "nemesis-interval",
            "time-limit",
            "concurrency",
            "rate",
            "seed",
            "op-timeout-ms",
            "check-timeout",
            "cas-percent",
        ],
        &[],
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "--dry-run created something under the results directory"
    );
}

#[test]
fn check_analyze_quorum_bench_flags_never_panic() {
    let mut h = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        h,
        r#"{{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}}
{{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":1}}"#
    )
    .unwrap();
    let file = h.path().display().to_string();
    sweep(&["check", &file], &["timeout"], &[]);
    sweep(
        &["analyze", "/nonexistent-run-dir"],
        &["check-timeout"],
        &[],
    );
    sweep(
        &["quorum"],
        &["n", "w", "r", "failed", "trials", "seed"],
        &["--n=3", "--w=2", "--r=2", "--trials=1000"],
    );
    sweep(&["bench", "harness", "--ops=2000"], &["concurrency"], &[]);
    sweep(&["bench", "harness", "--concurrency=2"], &["ops"], &[]);
}

#[test]
fn op_timeout_below_the_minimum_is_refused() {
    let dir = common::results_dir();
    let out = faultline()
        .args(["test", "--dry-run", "--op-timeout-ms", "0", "--results"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--op-timeout-ms") && err.contains("50"),
        "{err}"
    );
}
