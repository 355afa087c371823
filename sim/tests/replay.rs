//! Exact replay: a seed gives the same history, byte for byte, every time; and the faults a
//! run applied, written as the readable schedule and read back, give that history again.

mod common;

use common::{quick, simulator, synced, NO_CLOCK};
use nemesis::FaultKind;
use sim::script::Script;
use sim::{history_jsonl, Case, Faults, SimConfig};
use std::time::Duration;

fn replays_exactly(c: SimConfig, seed: u64) {
    let engine = c.engine.clone();
    let sim = simulator(c);
    let case = sim.case(seed, Faults::Generated);
    let first = sim.run(&case);
    let second = sim.run(&case);
    let bytes = history_jsonl(&first.history);
    assert!(
        first.history.len() > 100,
        "{engine}: a run of a few seconds records hundreds of events"
    );
    assert!(
        bytes == history_jsonl(&second.history),
        "{engine} seed {seed}: two runs of one seed differ"
    );
    assert!(!first.applied.is_empty(), "{engine}: faults were applied");
    let text = Script {
        config: case.config.clone(),
        seed,
        steps: first.applied.clone(),
    }
    .render(&[]);
    let back = Script::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let replay = Case {
        config: back.config.clone(),
        seed: back.seed,
        faults: Faults::Script(back.steps),
    };
    let replayed = simulator(back.config).run(&replay);
    assert!(
        bytes == history_jsonl(&replayed.history),
        "{engine} seed {seed}: the schedule as applied, read back from\n{text}\ndoes not replay the run"
    );
    // A different seed is a different run (the test above could not pass by recording nothing
    // that depends on the seed).
    let other = sim.run(&sim.case(seed + 1, Faults::Generated));
    assert!(bytes != history_jsonl(&other.history));
}

#[test]
fn the_same_seed_gives_the_same_history_byte_for_byte() {
    replays_exactly(quick("raft", "", &FaultKind::ALL), 11);
    replays_exactly(quick("multipaxos", "", &FaultKind::ALL), 12);
    replays_exactly(quick("nwr", "", &FaultKind::ALL), 13);
    replays_exactly(
        synced("nwr", "--n 3 --w 2 --r 2 --clock wall", &NO_CLOCK),
        14,
    );
}

#[test]
fn judging_is_deterministic_too() {
    let sim = simulator(quick("raft", "--read unsafe-local", &FaultKind::ALL));
    let case = sim.case(5, Faults::Generated);
    let a = sim.judge(&case, Duration::from_secs(30));
    let b = sim.judge(&case, Duration::from_secs(30));
    assert!(a.failed() && b.failed(), "seed 5 fails (bug_zoo.rs)");
    assert_eq!(a.summary(), b.summary());
}
