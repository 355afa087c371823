//! The simulator's figures (`cargo bench -p sim`), each re-runnable:
//!
//! 1. speed: seeds of the default test (5 nodes, register, 10 clients at 100 ops/s, every
//!    fault every ~5 s, 30 s) on ONE thread per engine: simulated seconds per CPU second
//!    (the target is >= 1000x real time per core);
//! 2. seeds per minute of the same test on every core (a hunt);
//! 3. every unsafe variant of the bug zoo: wall time and seeds to the first failing seed
//!    (a hunt on every core, stopping at the first failure), then the shrink of that seed:
//!    size before and after, runs and time spent.
//!
//! Environment: `SIM_BENCH_SEEDS` (seeds per engine for 1, default 40),
//! `SIM_BENCH_PAR_SEEDS` (seeds for 2, default 256), `SIM_BENCH_HUNT_SEEDS` (most seeds per
//! variant for 3, default 5000), `SIM_BENCH_HUNT_SECS` (most wall seconds per variant for 3,
//! default 300), `SIM_BENCH_ONLY` (run only the parts named, e.g. `1,3`).

use nemesis::FaultKind;
use sim::hunt::{hunt, HuntOptions};
use sim::shrink::{shrink, Budget};
use sim::{Faults, SimConfig, Simulator};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wanted(part: &str) -> bool {
    std::env::var("SIM_BENCH_ONLY").map_or(true, |v| v.split(',').any(|p| p.trim() == part))
}

/// CPU time of the whole process.
fn cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.max(0) as u32)
}

fn simulator(c: SimConfig) -> Simulator {
    Simulator::new(c).unwrap_or_else(|e| panic!("bench config: {e}"))
}

fn config(engine: &str, args: &str) -> SimConfig {
    let mut c = SimConfig::new(engine);
    c.kvnode_args = args.split_whitespace().map(String::from).collect();
    c
}

fn speed(seeds: u64) {
    println!("1. one thread, default test (5 nodes, 30 s, every fault every ~5 s), {seeds} seeds:");
    for engine in ["raft", "multipaxos", "nwr"] {
        let sim = simulator(config(engine, ""));
        let (t, c) = (Instant::now(), cpu());
        let mut sim_ns = 0u128;
        let mut events = 0u64;
        let mut check = Duration::ZERO;
        for seed in 1..=seeds {
            let outcome = sim.run(&sim.case(seed, Faults::Generated));
            let c0 = cpu();
            let analysis = sim.analyze(&outcome, Duration::from_secs(30));
            std::hint::black_box(analysis);
            check += cpu() - c0;
            sim_ns += u128::from(outcome.sim_ns);
            events += outcome.events;
        }
        let (wall, cpu) = (t.elapsed().as_secs_f64(), (cpu() - c).as_secs_f64());
        let s = sim_ns as f64 / 1e9;
        let run = cpu - check.as_secs_f64();
        println!(
            "   {engine:<10} {s:>7.0} simulated s in {cpu:>6.2} CPU s: {:>6.0}x real time per core \
             with the checkers ({:.0}x simulation alone, {:.0}x per wall s), {:.3} s CPU per \
             seed, {:.1} M events/CPU s",
            s / cpu,
            s / run.max(1e-9),
            s / wall,
            cpu / seeds as f64,
            events as f64 / run.max(1e-9) / 1e6
        );
    }
}

fn seeds_per_minute(seeds: u64) {
    let threads = rayon::current_num_threads();
    println!("2. every core ({threads} threads), default test, {seeds} seeds:");
    for engine in ["raft", "multipaxos", "nwr"] {
        let sim = simulator(config(engine, ""));
        let (t, c) = (Instant::now(), cpu());
        let r = hunt(
            &sim,
            &HuntOptions {
                first: 1,
                last: seeds,
                all: true,
                time_budget: None,
                check_timeout: Duration::from_secs(30),
                faults: Faults::Generated,
            },
            &|_| {},
        );
        let (wall, cpu) = (t.elapsed().as_secs_f64(), (cpu() - c).as_secs_f64());
        println!(
            "   {engine:<10} {:>6.0} seeds/min ({} seeds in {wall:.1} s, {:.0}x real time per \
             wall s, {:.0}x per CPU s); {} failing",
            r.seeds_run as f64 / wall * 60.0,
            r.seeds_run,
            r.sim_ns as f64 / 1e9 / wall,
            r.sim_ns as f64 / 1e9 / cpu,
            r.failures.len()
        );
    }
}

/// The bug zoo: (name, config). Every variant runs under a general nemesis (every fault kind
/// or partitions and crashes), as `faultline sim` would be asked to.
fn zoo() -> Vec<(&'static str, SimConfig)> {
    let mut mp = config("multipaxos", "--unsafe-no-start-working");
    mp.nemesis = vec![FaultKind::Partition, FaultKind::Kill];
    mp.nemesis_interval_ms = 1_000;
    mp.time_limit_ms = 10_000;
    let mut cpt = config("raft", "--unsafe-commit-previous-term");
    cpt.nemesis = vec![FaultKind::Partition, FaultKind::Kill];
    cpt.nemesis_interval_ms = 1_000;
    cpt.time_limit_ms = 10_000;
    vec![
        (
            "raft --read unsafe-local",
            config("raft", "--read unsafe-local"),
        ),
        (
            "raft --read unsafe-lease-wallclock",
            config("raft", "--read unsafe-lease-wallclock"),
        ),
        (
            "raft --unsafe-commit-previous-term",
            config("raft", "--unsafe-commit-previous-term"),
        ),
        ("  same, partition,kill every ~1 s, 10 s", cpt),
        (
            "multipaxos --unsafe-no-start-working",
            config("multipaxos", "--unsafe-no-start-working"),
        ),
        ("  same, partition,kill every ~1 s, 10 s", mp),
        ("nwr --n 3 --w 1 --r 1", config("nwr", "--n 3 --w 1 --r 1")),
        (
            "nwr --clock wall (5 ms skew + clock faults)",
            config("nwr", "--clock wall"),
        ),
    ]
}

fn bug_zoo(max_seeds: u64, max_secs: u64) {
    println!(
        "3. bug zoo: first failing seed (every core, at most {max_seeds} seeds or {max_secs} s), \
         then its shrink (400 runs / 120 s, as faultline sim):"
    );
    for (name, c) in zoo() {
        let sim = simulator(c);
        let t = Instant::now();
        let r = hunt(
            &sim,
            &HuntOptions {
                first: 1,
                last: max_seeds,
                all: false,
                time_budget: Some(Duration::from_secs(max_secs)),
                check_timeout: Duration::from_secs(30),
                faults: Faults::Generated,
            },
            &|_| {},
        );
        let took = t.elapsed().as_secs_f64();
        let Some(found) = r.failures.first() else {
            println!(
                "   {name:<45} NOT FOUND in {} seeds ({took:.1} s)",
                r.seeds_run
            );
            continue;
        };
        // The hunt runs whole chunks; the time to the failing seed alone, at the hunt's pace.
        let to_seed = took * found.seed as f64 / r.seeds_run as f64;
        let Some(judged) = found.judged.as_ref() else {
            continue;
        };
        let t = Instant::now();
        let s = shrink(
            &sim,
            &sim.case(found.seed, Faults::Generated),
            judged,
            Budget {
                max_runs: 400,
                max_time: Duration::from_secs(120),
                check_timeout: Duration::from_secs(30),
            },
        );
        println!(
            "   {name:<45} seed {:>4}: ~{to_seed:.1} s to it ({took:.1} s with its chunk of {}); \
             shrunk in {} runs, {:.1} s: {} -> {}",
            found.seed,
            r.seeds_run,
            s.runs,
            t.elapsed().as_secs_f64(),
            s.before,
            s.after
        );
        for line in sim::script::steps_text(&s.judged.outcome.applied) {
            println!("        {line}");
        }
        println!("        fails with: {}", s.judged.summary());
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    if wanted("1") {
        speed(env_or("SIM_BENCH_SEEDS", 40));
    }
    if wanted("2") {
        seeds_per_minute(env_or("SIM_BENCH_PAR_SEEDS", 256));
    }
    if wanted("3") {
        bug_zoo(
            env_or("SIM_BENCH_HUNT_SEEDS", 5000),
            env_or("SIM_BENCH_HUNT_SECS", 300),
        );
    }
}
