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
    refused(&["--nodes", "0"], "--nodes");
    refused(&["--nodes", "100"], "must be between 1 and 64");
    refused(&["--nemesis", "flood"], "unknown nemesis \"flood\"");
    refused(&["--workload", "bogus"], "unknown workload");
    refused(&["--workload", "bank", "--system", "etcd"], "POST /txn");
    refused(
        &["--workload", "list-append", "--cas-percent", "10"],
        "--cas-percent applies",
    );
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

/// Per client process, the functions and written values it invoked, in order.
fn op_streams(run: &std::path::Path) -> std::collections::BTreeMap<u64, Vec<(String, String)>> {
    let text = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let mut streams = std::collections::BTreeMap::<u64, Vec<(String, String)>>::new();
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let (Some(p), Some("invoke")) = (e["process"].as_u64(), e["type"].as_str()) else {
            continue;
        };
        // A cas's `from` follows what was observed; what it writes is the generator's.
        let v = match e["f"].as_str() {
            Some("cas") => e["value"][1].to_string(),
            _ => e["value"].to_string(),
        };
        streams
            .entry(p)
            .or_default()
            .push((e["f"].as_str().unwrap().to_string(), v));
    }
    streams
}

#[test]
fn repeat_reruns_a_stored_run_with_its_flags_and_seed() {
    let dir = results_dir();
    let args = ["--nodes", "1", "--time-limit", "2", "--nemesis", "none"];
    let (code, out) = run_test(dir.path(), &args);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let first = run_dir(dir.path());
    std::thread::sleep(Duration::from_millis(1100)); // run directories are per second
    let out = faultline()
        .args(["test", "--repeat"])
        .arg(&first)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = run_dir(dir.path());
    assert_ne!(first, second, "a new run directory");
    let plan = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("test.json")).unwrap()).unwrap()
    };
    assert_eq!(plan(&first)["seed"], plan(&second)["seed"]);
    assert_eq!(plan(&second)["nodes"].as_array().unwrap().len(), 1);
    // The same seed gives every worker the same operations (the run is repeated, not
    // merely re-configured); only how many fit in the time limit may differ.
    let (a, b) = (op_streams(&first), op_streams(&second));
    assert!(!a.is_empty());
    for (p, ops) in &a {
        let n = ops.len().min(b[p].len());
        assert!(n > 0, "process {p} ran ops both times");
        assert_eq!(ops[..n], b[p][..n], "process {p}");
    }
    // Mixing --repeat with other flags is refused, not silently overridden.
    let out = faultline()
        .args(["test", "--nodes", "5", "--repeat"])
        .arg(&first)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repeat takes no other flags"));
}

/// SIGINT before the history exists: the message must not point to a history that was never
/// written (it used to say "partial history in <run dir>" regardless).
#[test]
fn sigint_before_any_op_does_not_claim_a_partial_history() {
    let dir = results_dir();
    // A kvnode that never starts serving keeps the run in its start-up wait.
    let never = dir.path().join("never-serves.sh");
    std::fs::write(&never, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&never, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let child = faultline()
        .args(["test", "--nodes", "1", "--no-report", "--kvnode"])
        .arg(&never)
        .arg("--results")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.path().join("latest/cluster.json").exists() {
        assert!(Instant::now() < deadline, "the run never started its nodes");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(!dir.path().join("latest/history.jsonl").exists());
    assert!(
        err.contains("before any operation was recorded") && !err.contains("partial history"),
        "{err}"
    );
    assert!(processes_mentioning(&dir.path().display().to_string()).is_empty());
}

/// Times (ns) of the partition-start and partition-stop events of a run's history.
fn partition_events(run: &std::path::Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let f = v["f"].as_str()?;
            f.starts_with("partition-")
                .then(|| (f.to_string(), v["time"].as_u64().unwrap()))
        })
        .collect()
}

#[test]
fn the_last_fault_is_held_to_the_end_of_the_main_phase() {
    use nemesis::schedule::{Schedule, ScheduleOptions, StepAction};
    use nemesis::{partition::PartitionShape, FaultKind};
    let limit = Duration::from_secs(2);
    // A seed whose first partition starts inside the main phase and is scheduled to stop
    // after it: that fault must be held until the limit, not healed as soon as it starts.
    let seed = (1..1000u64)
        .find(|&seed| {
            let mut s = Schedule::new(ScheduleOptions {
                kinds: vec![FaultKind::Partition],
                shapes: vec![PartitionShape::Halves],
                interval: Duration::from_secs(2),
                nodes: ["n1", "n2", "n3"].map(String::from).to_vec(),
                seed,
            });
            let (a, b) = (s.next_step().unwrap(), s.next_step().unwrap());
            matches!(a.action, StepAction::Start(_))
                && a.at < limit - Duration::from_millis(800)
                && b.at > limit
        })
        .expect("some seed starts a partition early and stops it past the limit");
    let dir = results_dir();
    let seed_arg = seed.to_string();
    let (code, out) = run_test(
        dir.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "2",
            "--nemesis",
            "partition",
            "--partition-shapes",
            "halves",
            "--nemesis-interval",
            "2",
            "--seed",
            &seed_arg,
        ],
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let ev = partition_events(&run_dir(dir.path()));
    assert_eq!(ev.len(), 2, "one partition, started and stopped: {ev:?}");
    let held = Duration::from_nanos(ev[1].1 - ev[0].1);
    let until = Duration::from_nanos(ev[1].1);
    assert!(
        until >= limit - Duration::from_millis(50),
        "seed {seed}: the partition was healed at {until:?}, before the {limit:?} limit (held {held:?})"
    );
}
