//! Self-validation: the harness must pass safe Raft and catch every unsafe read path.
//!
//! Short seeded runs of the real `faultline test` against 3 kvnode processes. The detection
//! runs are shaped so the anomaly is likely: the partition isolates the *current leader*,
//! workers bound to it keep reading from it (a short op timeout frees them from writes that
//! hang there), and workers bound to the majority write through the new leader; the `kv`
//! workload spreads the indeterminate writes over keys so the checker decides quickly.
//! The runs are serialized (one lock) to stay within two cores.

mod common;

use common::{results_dir, run_test};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

/// Flags shared by every self-validation run.
const BASE: &[&str] = &[
    "--nodes",
    "3",
    "--time-limit",
    "10",
    "--workload",
    "kv",
    "--nemesis-interval",
    "1",
    "--rate",
    "800",
    "--concurrency",
    "40",
    "--op-timeout-ms",
    "300",
    "--check-timeout",
    "60",
];

fn run(seed: u64, extra: &[&str]) -> i32 {
    let dir = results_dir();
    let seed = seed.to_string();
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--seed", &seed]);
    let (code, out) = run_test(dir.path(), &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("verdict"))
        .unwrap_or("");
    eprintln!("seed {seed} {extra:?}: exit {code} {verdict}");
    assert!(
        (0..=2).contains(&code),
        "harness failed (exit {code}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    code
}

#[test]
fn safe_raft_with_partitions_and_kills_is_linearizable() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let code = run(
        1,
        &["--nemesis", "partition,kill", "--partition-shapes", "all"],
    );
    assert_eq!(code, 0, "safe Raft must be linearizable");
}

#[test]
fn unsafe_local_reads_are_caught_in_at_least_4_of_5_seeds() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let args = [
        "--nemesis",
        "partition",
        "--partition-shapes",
        "leader",
        "--kvnode-args",
        "--read unsafe-local",
    ];
    let caught = (1..=5).filter(|&s| run(s, &args) == 1).count();
    assert!(
        caught >= 4,
        "unsafe-local caught in only {caught} of 5 seeds"
    );
}

#[test]
#[cfg_attr(
    missing_faketime,
    ignore = "needs libfaketime: apt-get install -y faketime"
)]
fn unsafe_wallclock_lease_is_caught_under_clock_faults() {
    if testkit::require(testkit::Need::Faketime).is_none() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let args = [
        "--nemesis",
        "partition,clock",
        "--partition-shapes",
        "leader",
        "--kvnode-args",
        "--read unsafe-lease-wallclock",
    ];
    let caught = (1..=3).any(|s| run(s, &args) == 1);
    assert!(caught, "unsafe-lease-wallclock not caught in 3 seeds");
}
