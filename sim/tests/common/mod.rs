//! Shared configurations of the simulation tests: short runs (5 s of simulated time, a
//! fault change every second on average) so a test covers hundreds of seeds in seconds.

#![allow(dead_code)]

use nemesis::FaultKind;
use sim::hunt::{hunt, HuntOptions, HuntReport};
use sim::{Faults, SimConfig, Simulator};
use std::time::Duration;

/// Every fault kind but clock faults.
pub const NO_CLOCK: [FaultKind; 4] = [
    FaultKind::Partition,
    FaultKind::Kill,
    FaultKind::Pause,
    FaultKind::Packet,
];

/// A short run of `engine` with kvnode flags `args` and faults of `kinds`.
pub fn quick(engine: &str, args: &str, kinds: &[FaultKind]) -> SimConfig {
    let mut c = SimConfig::new(engine);
    c.kvnode_args = args.split_whitespace().map(String::from).collect();
    c.time_limit_ms = 5_000;
    c.nemesis_interval_ms = 1_000;
    c.nemesis = kinds.to_vec();
    c
}

/// The same, with every node reading one clock (no skew, no drift), as on one host: what
/// last-writer-wins needs to be safe.
pub fn synced(engine: &str, args: &str, kinds: &[FaultKind]) -> SimConfig {
    let mut c = quick(engine, args, kinds);
    c.environment.clocks.max_skew_ms = 0;
    c.environment.clocks.max_drift_ppm = 0;
    c
}

/// A checked simulator; the configs here are valid.
pub fn simulator(c: SimConfig) -> Simulator {
    Simulator::new(c).unwrap_or_else(|e| panic!("invalid test config: {e}"))
}

/// Runs seeds `first..=last` (every one of them when `all`).
pub fn seeds(sim: &Simulator, first: u64, last: u64, all: bool) -> HuntReport {
    hunt(
        sim,
        &HuntOptions {
            first,
            last,
            all,
            time_budget: None,
            check_timeout: Duration::from_secs(30),
            faults: Faults::Generated,
        },
        &|_| {},
    )
}
