//! Every unsafe variant of kvnode's bug zoo that the simulator finds, found within a fixed
//! range of seeds, and its shrunk counterexample, written as readable steps and read back,
//! still failing. Each variant's safe counterpart passes the same seeds (`safe_seeds.rs` for
//! the defaults; here for the exact configuration the variant fails in), so what is found
//! is the variant's bug, not the test's setup.

mod common;

use common::{quick, seeds, simulator, synced, NO_CLOCK};
use nemesis::{FaultKind, StepAction};
use sim::script::{steps_text, Script};
use sim::shrink::{shrink, Budget};
use sim::{Case, Faults, SimConfig};
use std::time::Duration;

/// Hunts `unsafe_` over seeds `1..=last`, then shrinks the first failure and replays the
/// shrunk schedule from its text. With `safe`, the same seeds of the safe counterpart must
/// all pass.
fn found_and_shrunk(name: &str, unsafe_: SimConfig, safe: Option<SimConfig>, last: u64) {
    let sim = simulator(unsafe_);
    let r = seeds(&sim, 1, last, false);
    let found = r
        .failures
        .first()
        .unwrap_or_else(|| panic!("{name}: no failing seed in 1..={last}"));
    eprintln!("{name}: seed {} fails: {}", found.seed, found.summary);
    let judged = found
        .judged
        .as_ref()
        .expect("the first failure keeps its run");
    let case = sim.case(found.seed, Faults::Generated);
    let budget = Budget {
        max_runs: 80,
        max_time: Duration::from_secs(120),
        check_timeout: Duration::from_secs(30),
    };
    let s = shrink(&sim, &case, judged, budget);
    assert!(
        s.reproduced,
        "{name}: the applied steps did not replay the failure"
    );
    assert!(s.judged.failed(), "{name}: the shrunk case must fail");
    assert!(
        s.after.faults <= s.before.faults && s.after.ops <= s.before.ops,
        "{name}: shrinking grew the case: {} -> {}",
        s.before,
        s.after
    );
    let steps = steps_text(&s.judged.outcome.applied);
    eprintln!(
        "{name}: shrunk in {} runs: {} -> {}\n  {}",
        s.runs,
        s.before,
        s.after,
        steps.join("\n  ")
    );
    // The readable schedule replays: parse it back and run it.
    let text = Script {
        config: s.case.config.clone(),
        seed: s.case.seed,
        steps: s.judged.outcome.applied.clone(),
    }
    .render(&[format!("{name}, shrunk")]);
    for line in &steps {
        assert!(
            text.contains(line.as_str()),
            "{line:?} missing from\n{text}"
        );
    }
    let back = Script::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    let replay = Case {
        config: back.config.clone(),
        seed: back.seed,
        faults: Faults::Script(back.steps),
    };
    let replay = simulator(back.config).judge(&replay, budget.check_timeout);
    assert!(
        replay.failed(),
        "{name}: the shrunk schedule read back from its text passed:\n{text}"
    );
    assert!(
        sim::history_jsonl(&replay.outcome.history)
            == sim::history_jsonl(&s.judged.outcome.history),
        "{name}: the shrunk schedule's replay differs from the shrunk run"
    );
    if let Some(safe) = safe {
        let r = seeds(&simulator(safe), 1, found.seed, true);
        let failed: Vec<u64> = r.failures.iter().map(|f| f.seed).collect();
        assert!(
            failed.is_empty(),
            "{name}: the safe counterpart fails too, seeds {failed:?}"
        );
    }
    let starts = |st: &[nemesis::Step]| {
        st.iter()
            .filter(|x| matches!(x.action, StepAction::Start(_)))
            .count()
    };
    assert_eq!(starts(&s.judged.outcome.applied), s.after.faults);
}

#[test]
fn raft_unsafe_local_reads() {
    found_and_shrunk(
        "raft --read unsafe-local",
        quick("raft", "--read unsafe-local", &FaultKind::ALL),
        Some(quick("raft", "", &FaultKind::ALL)),
        200,
    );
}

#[test]
fn raft_unsafe_wall_clock_lease() {
    found_and_shrunk(
        "raft --read unsafe-lease-wallclock",
        quick("raft", "--read unsafe-lease-wallclock", &FaultKind::ALL),
        Some(quick("raft", "--read lease", &FaultKind::ALL)),
        200,
    );
}

#[test]
fn raft_unsafe_commit_previous_term() {
    // The default nemesis; what clients see is a stale read from a new leader whose
    // commit index lags (cluster/src/engine/raft.rs, module doc).
    found_and_shrunk(
        "raft --unsafe-commit-previous-term",
        quick("raft", "--unsafe-commit-previous-term", &FaultKind::ALL),
        Some(quick("raft", "", &FaultKind::ALL)),
        200,
    );
}

#[test]
fn multipaxos_without_start_working() {
    let faults = [FaultKind::Partition, FaultKind::Kill];
    found_and_shrunk(
        "multipaxos --unsafe-no-start-working",
        quick("multipaxos", "--unsafe-no-start-working", &faults),
        Some(quick("multipaxos", "", &faults)),
        400,
    );
}

#[test]
fn nwr_partial_quorums() {
    found_and_shrunk(
        "nwr --n 3 --w 1 --r 1",
        synced("nwr", "--n 3 --w 1 --r 1", &NO_CLOCK),
        Some(synced("nwr", "--n 3 --w 2 --r 2", &NO_CLOCK)),
        200,
    );
}

#[test]
fn nwr_wall_clock_last_writer_wins_under_skew() {
    // Skew only from clock faults; the hybrid clock under them is not flawless (a write
    // within one gossip interval of a clock jump can lose), so no safe counterpart here.
    found_and_shrunk(
        "nwr --clock wall",
        synced("nwr", "--clock wall", &[FaultKind::Clock]),
        None,
        200,
    );
}
