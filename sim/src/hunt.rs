//! Many seeds on every core: the hunt for a failing seed.
//!
//! Seeds run in fixed-size chunks, each chunk in parallel (rayon); after a chunk the hunt
//! stops if any seed in it failed (unless asked for all failures) or the time budget is
//! spent. Because chunks are fixed and run to completion, the first failure reported is the
//! lowest failing seed of the range, whatever the number of cores: a hunt is as
//! reproducible as a single seed.

use crate::{Judged, Simulator};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Seeds per chunk: enough to keep every core busy, small enough to stop soon after a find.
pub const CHUNK: u64 = 64;

/// What to hunt for.
#[derive(Debug, Clone)]
pub struct HuntOptions {
    /// First seed.
    pub first: u64,
    /// Last seed (inclusive).
    pub last: u64,
    /// Run every seed instead of stopping after the chunk with the first failure.
    pub all: bool,
    /// Stop starting chunks after this much wall time.
    pub time_budget: Option<Duration>,
    /// Checker budget per seed.
    pub check_timeout: Duration,
    /// The faults of every seed: the seeded schedule, or the same steps for all.
    pub faults: crate::Faults,
}

/// Progress so far (for a progress bar).
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Seeds finished.
    pub done: u64,
    /// Seeds that failed.
    pub failed: u64,
}

/// One failing seed.
#[derive(Debug, Clone)]
pub struct Found {
    /// The seed.
    pub seed: u64,
    /// Why it failed, in one line.
    pub summary: String,
    /// Its run and verdict: kept for the first failure only (histories are large; any
    /// other seed replays exactly with `--seed`).
    pub judged: Option<Judged>,
}

/// What a hunt did.
#[derive(Debug, Clone, Default)]
pub struct HuntReport {
    /// Seeds run.
    pub seeds_run: u64,
    /// Failing seeds in seed order.
    pub failures: Vec<Found>,
    /// Seeds whose verdict was unknown (checker budget spent).
    pub unknown: Vec<u64>,
    /// Simulated time of all runs, ns.
    pub sim_ns: u128,
    /// Wall time of the hunt.
    pub elapsed: Duration,
    /// True when the time budget ended the hunt before the last seed.
    pub out_of_time: bool,
}

enum SeedResult {
    Failed(Box<Found>),
    Unknown(u64, u64),
    Passed(u64),
}

/// Runs seeds `opts.first..=opts.last` of `sim`'s config.
pub fn hunt(
    sim: &Simulator,
    opts: &HuntOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> HuntReport {
    let start = Instant::now();
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let mut report = HuntReport::default();
    let mut next = opts.first;
    while next <= opts.last {
        if opts.time_budget.is_some_and(|b| start.elapsed() >= b) {
            report.out_of_time = true;
            break;
        }
        let end = next.saturating_add(CHUNK - 1).min(opts.last);
        let results: Vec<SeedResult> = (next..=end)
            .into_par_iter()
            .map(|seed| {
                let judged = sim.judge(&sim.case(seed, opts.faults.clone()), opts.check_timeout);
                let sim_ns = judged.outcome.sim_ns;
                let r = if judged.failed() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    SeedResult::Failed(Box::new(Found {
                        seed,
                        summary: judged.summary(),
                        judged: Some(judged),
                    }))
                } else if judged.undecided() {
                    SeedResult::Unknown(seed, sim_ns)
                } else {
                    SeedResult::Passed(sim_ns)
                };
                progress(Progress {
                    done: done.fetch_add(1, Ordering::Relaxed) + 1,
                    failed: failed.load(Ordering::Relaxed),
                });
                r
            })
            .collect();
        for r in results {
            report.seeds_run += 1;
            match r {
                SeedResult::Failed(mut f) => {
                    report.sim_ns += f
                        .judged
                        .as_ref()
                        .map_or(0, |j| u128::from(j.outcome.sim_ns));
                    if !report.failures.is_empty() {
                        f.judged = None;
                    }
                    report.failures.push(*f);
                }
                SeedResult::Unknown(seed, ns) => {
                    report.sim_ns += u128::from(ns);
                    report.unknown.push(seed);
                }
                SeedResult::Passed(ns) => report.sim_ns += u128::from(ns),
            }
        }
        if !opts.all && !report.failures.is_empty() {
            break;
        }
        match end.checked_add(1) {
            Some(n) => next = n,
            None => break,
        }
    }
    report.elapsed = start.elapsed();
    report
}
