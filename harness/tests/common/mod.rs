//! Helpers shared by the harness's integration tests: run the real `faultline` binary in a
//! fresh results directory, and check that nothing it started outlived it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The faultline binary under test.
pub fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

/// A fresh results directory.
pub fn results_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("faultline-test-")
        .tempdir()
        .unwrap()
}

/// Runs `faultline test` with `args` into `dir`; returns (exit code, output).
pub fn run_test(dir: &Path, args: &[&str]) -> (i32, Output) {
    let out = faultline()
        .arg("test")
        .args(args)
        .arg("--results")
        .arg(dir)
        .arg("--no-report")
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), out)
}

/// Runs `faultline test --env ssh --no-report --hosts HOSTS_FILE` with `args` in a fresh
/// results directory: (exit code, stdout and stderr, the run directory, the results directory
/// that holds it). With `FAULTLINE_KEEP_RESULTS` set the results directory is kept for a look.
pub fn run_ssh_test(hosts_file: &Path, args: &[&str]) -> (i32, String, PathBuf, tempfile::TempDir) {
    let dir = results_dir();
    let out = faultline()
        .args(["test", "--env", "ssh", "--no-report", "--hosts"])
        .arg(hosts_file)
        .arg("--results")
        .arg(dir.path())
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code().unwrap_or(-1);
    let run = std::fs::canonicalize(dir.path().join("latest")).unwrap_or_default();
    if std::env::var_os("FAULTLINE_KEEP_RESULTS").is_some() {
        eprintln!("kept {}", run.display());
        let _ = dir.keep();
        return (code, text, run, results_dir());
    }
    (code, text, run, dir)
}

/// The single run directory under `dir`.
pub fn run_dir(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir.join("latest")).unwrap()
}

/// Pids of live processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        // Zombies have an empty cmdline; they are not running anything.
        if cmd.contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Ports recorded in a run's cluster.json that can not be bound again.
pub fn bound_ports(run: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(run.join("cluster.json")) else {
        return vec![];
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut busy = Vec::new();
    for n in v["nodes"].as_array().unwrap() {
        for k in ["peer", "client"] {
            let addr = n[k].as_str().unwrap();
            if std::net::TcpListener::bind(addr).is_err() {
                busy.push(addr.to_string());
            }
        }
    }
    busy
}

/// The scenario that exposes stale reads from a deposed leader (`--read unsafe-local`): 3
/// nodes, short leader-only isolations, many workers at a high rate with a short op timeout
/// (workers bound to the old leader keep reading from it while the majority writes), the kv
/// workload so the checker decides quickly. Add `--seed`.
pub const STALE_READ_SCENARIO: &[&str] = &[
    "--time-limit",
    "10",
    "--workload",
    "kv",
    "--nemesis",
    "partition",
    "--partition-shapes",
    "leader",
    "--nemesis-interval",
    "1",
    "--rate",
    "800",
    "--concurrency",
    "40",
    "--op-timeout-ms",
    "300",
    "--kvnode-args",
    "--read unsafe-local",
];

/// The fault kinds a run's results.json says were applied, sorted and unique.
pub fn fault_kinds(run: &Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    let mut kinds: Vec<String> = v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str().map(String::from))
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Asserts that a run applied every fault kind and that none of its faults failed to apply
/// (a `*-failed` nemesis op); `what` names the run in the message.
pub fn assert_every_fault_kind_applied(run: &Path, what: &str) {
    assert_eq!(
        fault_kinds(run),
        ["clock", "kill", "packet", "partition", "pause"],
        "every fault kind applied ({what})"
    );
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    assert!(
        !history.contains("-failed\""),
        "a fault failed to apply ({what}): {}",
        history
            .lines()
            .find(|l| l.contains("-failed\""))
            .unwrap_or("")
    );
}
