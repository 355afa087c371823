//! The safe engines under every fault the simulator has: a few hundred seeds each, no
//! failure. A failing seed here is a bug in an engine (or in the simulator); the message
//! names the seed and the command that replays it.

mod common;

use common::{quick, seeds, simulator, synced, NO_CLOCK};
use nemesis::FaultKind;
use sim::SimConfig;

fn no_failures(what: &str, c: SimConfig, n: u64) {
    let sim = simulator(c);
    let r = seeds(&sim, 1, n, true);
    assert_eq!(r.seeds_run, n);
    let failed: Vec<String> = r
        .failures
        .iter()
        .map(|f| format!("seed {}: {}", f.seed, f.summary))
        .collect();
    assert!(
        failed.is_empty(),
        "{what}: {} of {n} seeds failed (replay one with `faultline sim --seed N` and the \
         same flags):\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(
        r.unknown.is_empty(),
        "{what}: undecided seeds {:?}",
        r.unknown
    );
    eprintln!(
        "{what}: {n} seeds, {:.0} simulated s in {:.1} s",
        r.sim_ns as f64 / 1e9,
        r.elapsed.as_secs_f64()
    );
}

#[test]
fn raft_passes_150_seeds_of_every_fault() {
    no_failures("raft", quick("raft", "", &FaultKind::ALL), 150);
}

#[test]
fn multipaxos_passes_150_seeds_of_every_fault() {
    no_failures("multipaxos", quick("multipaxos", "", &FaultKind::ALL), 150);
}

/// Strict quorums (W + R > N) on one clock: no stale read, no lost write. Clock faults are
/// left out on purpose: last-writer-wins cannot order writes whose coordinators' clocks
/// disagree by more than the time between them (`quorum_anomaly` and the test of
/// `--clock wall` in `bug_zoo.rs`).
#[test]
fn nwr_strict_quorums_pass_150_seeds_without_clock_faults() {
    no_failures("nwr 5/3/3", synced("nwr", "", &NO_CLOCK), 150);
    no_failures(
        "nwr 3/2/2",
        synced("nwr", "--n 3 --w 2 --r 2", &NO_CLOCK),
        50,
    );
}
