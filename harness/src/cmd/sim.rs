//! `faultline sim`: the whole kvnode cluster in one process on simulated time (the `sim`
//! crate), many seeds in parallel, every history through the same checkers as a real run.
//!
//! Modes: a hunt over `--seeds A..B` (the default: stops after the first failing seed unless
//! `--all`), one `--seed N` (always writes its run directory: the same seed gives the same
//! history, byte for byte), `--replay FILE` (a replay file: a shrunk counterexample or any
//! hand-written schedule), and `--from RUN_DIR` (a real run's faults and workload shape,
//! hunted over seeds or run for one).
//!
//! A failing seed gets a normal run directory, `results/sim-<engine>/<timestamp>/`:
//! `test.json` (the simulated test and its seed), `history.jsonl`, `schedule.txt` (the faults
//! exactly as applied, a replay file), `results.json` and the report, made by the same
//! functions as `faultline test` ([`results::analyze_dir`], [`results::render_report`]).
//! The shrunk counterexample goes to `shrunk/` inside it, in the same form.
//!
//! Exit codes: 0 nothing failed, 1 a seed failed, 2 some verdicts unknown (checker budget),
//! 255 bad input or a harness error.

use crate::numeric;
use crate::plan::{NwrSettings, TestPlan};
use crate::results;
use anyhow::{bail, Context, Result};
use nemesis::{FaultKind, Step};
use serde::Serialize;
use sim::hunt::{HuntOptions, Progress};
use sim::script::{parse_duration_ms, Script};
use sim::shrink::{Budget, Shrunk};
use sim::{Case, Faults, Judged, SimConfig, Simulator};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use workloads::{Mix, Workload};

/// Flags of `faultline sim`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Hunt for a failing seed, then replay it exactly:
  faultline sim --engine raft --kvnode-args \"--read unsafe-local\" --seeds 1..1000
  faultline sim --engine raft --kvnode-args \"--read unsafe-local\" --seed 17
  faultline sim --replay results/sim-raft/<timestamp>/shrunk/schedule.txt
A real run's faults and workload, hunted in simulation:
  faultline sim --from results/kvnode-raft-register/<timestamp>")]
pub struct Args {
    /// Replication engine: raft, multipaxos or nwr.
    #[arg(long)]
    pub engine: Option<String>,
    /// kvnode flags for every node, parsed by kvnode's own parser, e.g. "--read unsafe-local"
    /// or, for NWR, "--n 3 --w 1 --r 1 --clock wall".
    #[arg(long, allow_hyphen_values = true)]
    pub kvnode_args: Option<String>,
    /// Number of nodes (default 5).
    #[arg(long, value_parser = numeric::count::<usize>(1, sim::MAX_NODES as u64))]
    pub nodes: Option<usize>,
    /// Workload: register (one key) or kv (many keys).
    #[arg(long)]
    pub workload: Option<String>,
    /// Faults: comma-separated partition, kill, pause, clock, packet; or all; or none.
    #[arg(long)]
    pub nemesis: Option<String>,
    /// Partition shapes to draw from: halves, one, ring, bridge, leader; or all.
    #[arg(long)]
    pub partition_shapes: Option<String>,
    /// Mean seconds between fault changes (default 5).
    #[arg(long, value_name = "SECS", value_parser = numeric::secs(0.01, numeric::MAX_INTERVAL_S))]
    pub nemesis_interval: Option<f64>,
    /// Concurrent clients (default 10).
    #[arg(long, value_parser = numeric::count::<usize>(1, 10_000))]
    pub concurrency: Option<usize>,
    /// Target total ops/s (default 100; 0 = as fast as the clients can go).
    #[arg(long, value_name = "OPS_PER_S", value_parser = numeric::rate)]
    pub rate: Option<f64>,
    /// Percent of ops that are compare-and-set, 0..=50 (default 20, 0 for nwr).
    #[arg(long, value_name = "PERCENT", value_parser = numeric::count::<u32>(0, 50))]
    pub cas_percent: Option<u32>,
    /// Client-side deadline of one request, ms (default 2000).
    #[arg(long, value_name = "MS",
          value_parser = numeric::count::<u64>(numeric::MIN_OP_TIMEOUT_MS, numeric::MAX_OP_TIMEOUT_MS))]
    pub op_timeout_ms: Option<u64>,
    /// Simulated length of the main phase, e.g. 30s, 1.5 s, 500ms (default 30s).
    #[arg(long, value_name = "DURATION")]
    pub sim_time: Option<String>,
    /// Largest offset of a node's wall clock from true time without faults, ms (default 5;
    /// 0 = every node reads the same clock, as nodes on one host do).
    #[arg(long, value_name = "MS", value_parser = numeric::count::<u64>(0, 86_400_000))]
    pub clock_skew_ms: Option<u64>,
    /// Largest rate error of a node's oscillator, parts per million (default 200).
    #[arg(long, value_name = "PPM", value_parser = numeric::count::<u64>(0, sim::clock::MAX_DRIFT_PPM))]
    pub clock_drift_ppm: Option<u64>,
    /// Seeds to run, A..B (both included; default 1..1000).
    #[arg(long, value_name = "A..B", conflicts_with = "seed")]
    pub seeds: Option<String>,
    /// Run this one seed and write its run directory.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep going after a failing seed and list every failing seed.
    #[arg(long)]
    pub all: bool,
    /// Stop hunting after this much wall time, e.g. 60s.
    #[arg(long, value_name = "DURATION")]
    pub time_budget: Option<String>,
    /// Run a replay file (a shrunk counterexample's or a run directory's `schedule.txt`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "seeds", "seed", "all"])]
    pub replay: Option<PathBuf>,
    /// Take the workload shape and the faults of a real run (`faultline test`'s run
    /// directory) and run them in simulation.
    #[arg(long, value_name = "RUN_DIR")]
    pub from: Option<PathBuf>,
    /// Do not shrink a failing seed.
    #[arg(long)]
    pub no_shrink: bool,
    /// Most runs spent shrinking.
    #[arg(long, default_value_t = 400, value_parser = numeric::count::<usize>(1, 1_000_000))]
    pub shrink_runs: usize,
    /// Most wall time spent shrinking, e.g. 120s.
    #[arg(long, value_name = "DURATION", default_value = "120s")]
    pub shrink_time: String,
    /// Linearizability budget per history, seconds (past it the verdict is unknown).
    #[arg(long, default_value_t = 10.0, value_name = "SECS",
          value_parser = numeric::secs(0.001, numeric::MAX_BUDGET_S))]
    pub check_timeout: f64,
    /// Threads (default: every core).
    #[arg(long, value_parser = numeric::count::<usize>(1, 1024))]
    pub jobs: Option<usize>,
    /// Results directory; failing seeds go to DIR/sim-<engine>/<timestamp>/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Skip rendering the HTML report.
    #[arg(long)]
    pub no_report: bool,
}

impl Args {
    /// True when any flag that shapes the simulated test was given.
    fn shapes_the_test(&self) -> bool {
        self.engine.is_some()
            || self.kvnode_args.is_some()
            || self.nodes.is_some()
            || self.workload.is_some()
            || self.nemesis.is_some()
            || self.partition_shapes.is_some()
            || self.nemesis_interval.is_some()
            || self.concurrency.is_some()
            || self.rate.is_some()
            || self.cas_percent.is_some()
            || self.op_timeout_ms.is_some()
            || self.sim_time.is_some()
            || self.clock_skew_ms.is_some()
            || self.clock_drift_ppm.is_some()
    }

    /// Applies the flags that were given to `c`.
    fn apply(&self, c: &mut SimConfig) -> Result<()> {
        if let Some(e) = &self.engine {
            if !["raft", "multipaxos", "nwr"].contains(&e.as_str()) {
                bail!("unknown --engine {e:?} (expected raft, multipaxos or nwr)");
            }
            if *e != c.engine {
                c.mix = SimConfig::new(e).mix;
            }
            c.engine = e.clone();
        }
        if let Some(a) = &self.kvnode_args {
            c.kvnode_args = a.split_whitespace().map(String::from).collect();
        }
        if let Some(n) = self.nodes {
            c.nodes = n;
        }
        if let Some(w) = &self.workload {
            c.workload = w.parse::<Workload>()?;
        }
        if let Some(n) = &self.nemesis {
            c.nemesis = nemesis::parse_kinds(n)?;
            if c.nemesis.contains(&FaultKind::Member) {
                bail!("--nemesis member: the simulator has no membership changes yet (use faultline test)");
            }
        }
        if let Some(s) = &self.partition_shapes {
            c.partition_shapes = nemesis::partition::parse_shapes(s)?;
        }
        if c.partition_shapes.is_empty() && c.nemesis.contains(&FaultKind::Partition) {
            bail!("--partition-shapes is empty but partitions are scheduled");
        }
        if let Some(i) = self.nemesis_interval {
            c.nemesis_interval_ms = ((i * 1000.0).round() as u64).max(1);
        }
        if let Some(n) = self.concurrency {
            c.concurrency = n;
        }
        if let Some(r) = self.rate {
            c.rate = r;
        }
        if let Some(p) = self.cas_percent {
            c.mix = Mix::with_cas_percent(p).context("--cas-percent must be at most 50")?;
        }
        if let Some(t) = self.op_timeout_ms {
            c.op_timeout_ms = t;
        }
        if let Some(t) = &self.sim_time {
            c.time_limit_ms = duration_flag("--sim-time", t)?;
        }
        if let Some(s) = self.clock_skew_ms {
            c.environment.clocks.max_skew_ms = s;
        }
        if let Some(d) = self.clock_drift_ppm {
            c.environment.clocks.max_drift_ppm = d;
        }
        Ok(())
    }
}

fn duration_flag(flag: &str, s: &str) -> Result<u64> {
    let ms = parse_duration_ms(s).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    if ms == 0 {
        bail!("{flag} must be positive (got {s:?})");
    }
    Ok(ms)
}

/// Parses `--seeds`: `A..B` or `A..=B` (both included), or one number.
fn parse_seeds(s: &str) -> Result<(u64, u64)> {
    let bad = || anyhow::anyhow!("--seeds {s:?}: expected A..B (e.g. 1..10000) or a seed");
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a, b.trim_start_matches('=')),
        None => (s, s),
    };
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if b < a {
        bail!("--seeds {s:?}: the last seed is smaller than the first");
    }
    Ok((a, b))
}

/// What `test.json` holds for a simulated run (the shape of `faultline test`'s plan where
/// the two share fields, so reports and the NWR analysis read it the same way).
#[derive(Debug, Serialize)]
struct SimPlan<'a> {
    name: String,
    /// Always `sim`: this run was simulated.
    mode: &'static str,
    system: &'static str,
    engine: &'a str,
    nodes: Vec<String>,
    workload: Workload,
    mix: Mix,
    #[serde(skip_serializing_if = "Option::is_none")]
    nwr: Option<NwrSettings>,
    nemesis: &'a [FaultKind],
    partition_shapes: &'a [nemesis::PartitionShape],
    nemesis_interval: f64,
    time_limit: f64,
    concurrency: usize,
    rate: f64,
    seed: u64,
    kvnode_args: &'a [String],
    op_timeout_ms: u64,
    max_ops: Option<u64>,
    /// `generated` (the seeded schedule) or `script` (the steps in schedule.txt).
    faults: &'static str,
    environment: &'a sim::Environment,
    argv: Vec<String>,
}

/// The NWR settings `results::analyze_dir` reads back from test.json.
fn nwr_settings(s: &Simulator) -> Option<NwrSettings> {
    s.nwr().map(|q| NwrSettings {
        n: q.n,
        w: q.w,
        r: q.r,
        clock: q.clock,
        read_repair: q.read_repair,
        read_writeback: q.read_writeback,
    })
}

/// Writes a run directory for `case` and its run; checks and renders it like `faultline
/// test` does. Returns the analysis.
fn write_run(
    simulator: &Simulator,
    dir: &Path,
    case: &Case,
    judged: &Judged,
    comments: &[String],
    args: &Args,
) -> Result<checkers::analysis::Analysis> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let c = &case.config;
    let plan = SimPlan {
        name: format!("sim-{}", c.engine),
        mode: "sim",
        system: "kvnode",
        engine: &c.engine,
        nodes: c.node_ids(),
        workload: c.workload,
        mix: c.mix,
        nwr: nwr_settings(simulator),
        nemesis: &c.nemesis,
        partition_shapes: &c.partition_shapes,
        nemesis_interval: c.nemesis_interval_ms as f64 / 1000.0,
        time_limit: c.time_limit_ms as f64 / 1000.0,
        concurrency: c.concurrency,
        rate: c.rate,
        seed: case.seed,
        kvnode_args: &c.kvnode_args,
        op_timeout_ms: c.op_timeout_ms,
        max_ops: c.max_ops,
        faults: match case.faults {
            Faults::Generated => "generated",
            Faults::Script(_) => "script",
        },
        environment: &c.environment,
        argv: std::env::args().collect(),
    };
    std::fs::write(dir.join("test.json"), serde_json::to_string_pretty(&plan)?)
        .context("cannot write test.json")?;
    std::fs::write(
        dir.join("history.jsonl"),
        sim::history_jsonl(&judged.outcome.history),
    )
    .context("cannot write history.jsonl")?;
    let script = Script {
        config: c.clone(),
        seed: case.seed,
        steps: judged.outcome.applied.clone(),
    };
    std::fs::write(dir.join("schedule.txt"), script.render(comments))
        .context("cannot write schedule.txt")?;
    let (analysis, observed) =
        results::analyze_dir(dir, Duration::from_secs_f64(args.check_timeout))?;
    if !args.no_report {
        results::render_report(dir, observed.as_ref().map(|o| (&analysis, o)));
    }
    Ok(analysis)
}

/// The command that replays seed `seed` of this invocation.
fn seed_command(seed: u64) -> String {
    let mut out = vec!["faultline".to_string(), "sim".to_string()];
    let mut skip = false;
    for a in std::env::args().skip(2) {
        if skip {
            skip = false;
            continue;
        }
        let name = a.split('=').next().unwrap_or_default().to_string();
        if ["--seeds", "--seed", "--time-budget", "--jobs"].contains(&name.as_str()) {
            skip = !a.contains('=');
            continue;
        }
        if name == "--all" {
            continue;
        }
        out.push(if a.contains(' ') || a.is_empty() {
            format!("{a:?}")
        } else {
            a
        });
    }
    out.push("--seed".into());
    out.push(seed.to_string());
    out.join(" ")
}

/// CPU time of this process so far (user + system), for the per-core throughput figure.
fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::new(
                tv.tv_sec().max(0) as u64,
                (tv.tv_usec().max(0) as u32) * 1000,
            )
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// The config and the faults the flags describe.
fn resolve(args: &Args) -> Result<(SimConfig, Faults, Option<u64>)> {
    if let Some(file) = &args.replay {
        if args.shapes_the_test() {
            bail!(
                "--replay takes the whole test from {}; drop the other test flags",
                file.display()
            );
        }
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--replay: cannot read {}", file.display()))?;
        let script = Script::parse(&text).with_context(|| format!("{}", file.display()))?;
        return Ok((
            script.config,
            Faults::Script(script.steps),
            Some(script.seed),
        ));
    }
    if let Some(dir) = &args.from {
        let (mut config, steps, seed) = from_run(dir)?;
        args.apply(&mut config)?;
        return Ok((
            config,
            Faults::Script(steps),
            args.seed.or(Some(seed)).filter(|_| args.seeds.is_none()),
        ));
    }
    let mut config = SimConfig::new(args.engine.as_deref().unwrap_or("raft"));
    args.apply(&mut config)?;
    Ok((config, Faults::Generated, args.seed))
}

/// A real run directory's test shape, fault steps and seed.
fn from_run(dir: &Path) -> Result<(SimConfig, Vec<Step>, u64)> {
    let path = dir.join("test.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--from: cannot read {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--from: {} is not JSON", path.display()))?;
    if value.get("mode").and_then(|m| m.as_str()) == Some("sim") {
        bail!(
            "--from {}: this is a simulated run; replay it with --replay {}",
            dir.display(),
            dir.join("schedule.txt").display()
        );
    }
    let plan: TestPlan = serde_json::from_value(value)
        .with_context(|| format!("--from: {} is not a faultline test plan", path.display()))?;
    if plan.system != crate::plan::System::Kvnode {
        bail!(
            "--from: only kvnode runs can be simulated (this run tested {})",
            plan.system.name()
        );
    }
    let mut config = SimConfig::new(&plan.engine);
    config.nodes = plan.nodes.len();
    config.workload = plan.workload;
    config.mix = plan.mix;
    config.concurrency = plan.concurrency;
    config.rate = plan.rate;
    config.time_limit_ms = (plan.time_limit * 1000.0).round() as u64;
    config.op_timeout_ms = plan.op_timeout_ms;
    config.nemesis = plan.nemesis.clone();
    config.partition_shapes = plan.partition_shapes.clone();
    config.nemesis_interval_ms = (plan.nemesis_interval * 1000.0).round() as u64;
    config.kvnode_args = plan
        .kvnode_args
        .iter()
        .cloned()
        .chain(plan.nwr.iter().flat_map(NwrSettings::kvnode_args))
        .collect();
    let events = results::read_history(&dir.join("history.jsonl"))?;
    let steps = sim::from_run::steps_from_history(&events.events)
        .with_context(|| format!("--from: {}", dir.join("history.jsonl").display()))?;
    // The simulated nodes are n1..nN; a run on named hosts is mapped in order.
    let ids = config.node_ids();
    let steps = sim::from_run::rename_nodes(steps, &plan.nodes, &ids);
    Ok((config, steps, plan.seed))
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let (config, faults, seed) = resolve(&args)?;
    let simulator = Simulator::new(config)?;
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(j) = args.jobs {
        pool = pool.num_threads(j);
    }
    let pool = pool.build().context("cannot start worker threads")?;
    pool.install(|| match seed {
        Some(seed) => run_one(&simulator, &args, seed, faults),
        None => run_hunt(&simulator, &args, faults),
    })
}

fn check_timeout(args: &Args) -> Duration {
    Duration::from_secs_f64(args.check_timeout)
}

fn engine_line(c: &SimConfig) -> String {
    let a = c.kvnode_args.join(" ");
    format!(
        "{}{} on {} nodes, {} workload, {} clients at {} ops/s",
        c.engine,
        if a.is_empty() {
            String::new()
        } else {
            format!(" ({a})")
        },
        c.nodes,
        c.workload,
        c.concurrency,
        c.rate
    )
}

/// One seed: always written to a run directory.
fn run_one(simulator: &Simulator, args: &Args, seed: u64, faults: Faults) -> Result<ExitCode> {
    let case = simulator.case(seed, faults);
    let t = Instant::now();
    let judged = simulator.judge(&case, check_timeout(args));
    let took = t.elapsed();
    let name = format!("sim-{}", case.config.engine);
    let dir = crate::plan::create_run_dir(&args.results, &name)?;
    let _ = crate::rundir::link_latest(&args.results, &dir);
    let comments = vec![format!("seed {seed}, {}", engine_line(&case.config))];
    let analysis = write_run(simulator, &dir, &case, &judged, &comments, args)?;
    eprintln!(
        "faultline sim: seed {seed}: {:.1} simulated s in {:.2} s",
        judged.outcome.sim_ns as f64 / 1e9,
        took.as_secs_f64()
    );
    for e in &judged.outcome.errors {
        println!("error: {e}");
    }
    let report = (!args.no_report)
        .then(|| dir.join("index.html"))
        .filter(|p| p.is_file());
    results::print_summary(&analysis, &dir, report.as_deref());
    println!("schedule: {}", dir.join("schedule.txt").display());
    println!(
        "seed {seed} {}: {}",
        if judged.failed() { "fails" } else { "passes" },
        judged.summary()
    );
    Ok(if judged.failed() {
        ExitCode::from(1)
    } else if judged.undecided() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// A progress bar on a terminal: seeds done, seeds/s, failures so far.
fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} seeds, {per_sec}, {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message("0 failing");
    Some(pb)
}

fn run_hunt(simulator: &Simulator, args: &Args, faults: Faults) -> Result<ExitCode> {
    let (first, last) = parse_seeds(args.seeds.as_deref().unwrap_or("1..1000"))?;
    let budget = args
        .time_budget
        .as_deref()
        .map(|t| duration_flag("--time-budget", t))
        .transpose()?
        .map(Duration::from_millis);
    let shrink_time = Duration::from_millis(duration_flag("--shrink-time", &args.shrink_time)?);
    let opts = HuntOptions {
        first,
        last,
        all: args.all,
        time_budget: budget,
        check_timeout: check_timeout(args),
        faults,
    };
    let c = simulator.config();
    eprintln!(
        "faultline sim: {}; seeds {first}..{last}, {:.1} s simulated each{}",
        engine_line(c),
        c.time_limit_ms as f64 / 1000.0,
        match &opts.faults {
            Faults::Generated => format!(
                ", nemesis [{}] every ~{:.1} s",
                c.nemesis
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(","),
                c.nemesis_interval_ms as f64 / 1000.0
            ),
            Faults::Script(s) => format!(", {} fault steps from the run", s.len()),
        }
    );
    let pb = progress_bar(last - first + 1);
    let cpu0 = cpu_time();
    let on_progress = |p: Progress| {
        if let Some(pb) = &pb {
            pb.set_position(p.done);
            pb.set_message(format!("{} failing", p.failed));
        }
    };
    let report = sim::hunt::hunt(simulator, &opts, &on_progress);
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let cpu = cpu_time().saturating_sub(cpu0);
    let wall = report.elapsed.as_secs_f64().max(1e-9);
    let sim_s = report.sim_ns as f64 / 1e9;
    println!(
        "{} seeds in {:.1} s: {:.1} seeds/s, {:.0} seeds/min; {:.0} simulated s per wall s, \
         {:.0} per CPU s (one core){}",
        report.seeds_run,
        wall,
        report.seeds_run as f64 / wall,
        report.seeds_run as f64 / wall * 60.0,
        sim_s / wall,
        sim_s / cpu.as_secs_f64().max(1e-9),
        if report.out_of_time {
            "; time budget spent"
        } else {
            ""
        }
    );
    if !report.unknown.is_empty() {
        println!(
            "{} seed(s) undecided (checker budget of {} s spent): {:?}",
            report.unknown.len(),
            args.check_timeout,
            report.unknown
        );
    }
    let Some(found) = report.failures.first() else {
        println!("no failing seed");
        return Ok(if report.unknown.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    };
    if args.all {
        println!("{} failing seed(s):", report.failures.len());
        for f in &report.failures {
            println!("  seed {}: {}", f.seed, f.summary);
        }
    }
    let seed = found.seed;
    let judged = found
        .judged
        .clone()
        .context("the first failure keeps its run")?;
    let case = simulator.case(seed, opts.faults.clone());
    println!("seed {seed} fails: {}", found.summary);
    let name = format!("sim-{}", case.config.engine);
    let dir = crate::plan::create_run_dir(&args.results, &name)?;
    let _ = crate::rundir::link_latest(&args.results, &dir);
    let comments = vec![format!(
        "seed {seed}, {}, as applied",
        engine_line(&case.config)
    )];
    write_run(simulator, &dir, &case, &judged, &comments, args)?;
    println!("run: {}", dir.display());
    println!("replay: {}", seed_command(seed));
    println!(
        "   or: faultline sim --replay {}",
        dir.join("schedule.txt").display()
    );
    if !args.no_shrink {
        let budget = Budget {
            max_runs: args.shrink_runs,
            max_time: shrink_time,
            check_timeout: check_timeout(args),
        };
        let t = Instant::now();
        let shrunk = sim::shrink::shrink(simulator, &case, &judged, budget);
        report_shrunk(simulator, &shrunk, &dir, t.elapsed(), args)?;
    }
    Ok(ExitCode::from(1))
}

fn report_shrunk(
    simulator: &Simulator,
    s: &Shrunk,
    dir: &Path,
    took: Duration,
    args: &Args,
) -> Result<()> {
    if !s.reproduced {
        println!("not shrunk: the faults as applied did not reproduce the failure");
        return Ok(());
    }
    let shrunk_dir = dir.join("shrunk");
    let comments = vec![
        format!("shrunk from {} to {}", s.before, s.after),
        format!("fails with: {}", s.judged.summary()),
    ];
    write_run(simulator, &shrunk_dir, &s.case, &s.judged, &comments, args)?;
    println!(
        "shrunk in {} runs ({:.1} s): {} -> {}",
        s.runs,
        took.as_secs_f64(),
        s.before,
        s.after
    );
    for line in sim::script::steps_text(&s.judged.outcome.applied) {
        println!("  {line}");
    }
    println!("  fails with: {}", s.judged.summary());
    println!(
        "replay the shrunk case: faultline sim --replay {}",
        shrunk_dir.join("schedule.txt").display()
    );
    Ok(())
}
