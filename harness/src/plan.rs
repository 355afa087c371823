//! Two-stage parsing of `faultline test`, after ripgrep's lowargs/hiargs split.
//!
//! [`Flags`] is what the user typed (clap); [`Flags::resolve`] validates it and builds a
//! [`TestPlan`]: every default filled in, the seed drawn, the kvnode binary and libfaketime
//! located, the run directory created. Nothing is started before `resolve` succeeds, so bad
//! input never leaves a process or a half-made run behind. The plan is stored as `test.json`,
//! which is enough to repeat a run exactly.

use anyhow::{bail, Context, Result};
use nemesis::{FaultKind, PartitionShape};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use workloads::Workload;

/// Where Debian's `faketime` package puts the library.
pub const FAKETIME_PATHS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// Finds libfaketime (`FAULTLINE_FAKETIME_LIB` overrides the search).
pub fn find_faketime() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FAULTLINE_FAKETIME_LIB") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    FAKETIME_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Flags of `faultline test`, as typed.
#[derive(clap::Args, Debug, Clone)]
pub struct Flags {
    /// Replication engine of the bundled kvnode (raft, multipaxos, nwr).
    #[arg(long, default_value = "raft")]
    pub engine: String,
    /// Extra arguments passed verbatim to every kvnode, e.g. "--read unsafe-local".
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub kvnode_args: String,
    /// The kvnode binary (default: this executable, run as `faultline kvnode`).
    #[arg(long)]
    pub kvnode: Option<PathBuf>,
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Workload: register (one key) or kv (many keys).
    #[arg(long, default_value = "register")]
    pub workload: String,
    /// Faults: comma-separated partition, kill, pause, clock, packet; or all; or none.
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Mean seconds between fault changes (each kind waits ~this long, then holds ~this long).
    #[arg(long, default_value_t = 5.0)]
    pub nemesis_interval: f64,
    /// Partition shapes to draw from: halves, one, ring, bridge, leader; or all.
    #[arg(long, default_value = "all")]
    pub partition_shapes: String,
    /// Seconds of workload + faults (the main phase).
    #[arg(long, default_value_t = 30.0)]
    pub time_limit: f64,
    /// Concurrent client workers.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Target total ops/s across all workers (0 = as fast as possible).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seed for workload and schedule (default: random, recorded in test.json).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Results directory; runs go to DIR/<name>/<timestamp>/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Test name (default: kvnode-<engine>-<workload>).
    #[arg(long)]
    pub name: Option<String>,
    /// Client-side deadline of one op, milliseconds (past it the op is `info`).
    #[arg(long, default_value_t = 2000)]
    pub op_timeout_ms: u64,
    /// Time budget of the linearizability check, seconds (past it the verdict is unknown).
    #[arg(long, default_value_t = 60.0)]
    pub check_timeout: f64,
    /// Skip rendering the HTML report.
    #[arg(long)]
    pub no_report: bool,
}

/// A fully resolved test: what `test.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestPlan {
    /// Test name (the results subdirectory).
    pub name: String,
    /// System under test (always `kvnode` for now).
    pub system: String,
    /// kvnode engine.
    pub engine: String,
    /// Node ids, `n1`..`nN`.
    pub nodes: Vec<String>,
    /// Workload.
    pub workload: Workload,
    /// Fault kinds scheduled (clock removed when libfaketime is missing and `all` was asked).
    pub nemesis: Vec<FaultKind>,
    /// Partition shapes.
    pub partition_shapes: Vec<PartitionShape>,
    /// Mean seconds between fault changes.
    pub nemesis_interval: f64,
    /// Main phase length, seconds.
    pub time_limit: f64,
    /// Client workers.
    pub concurrency: usize,
    /// Target total ops/s (0 = unlimited).
    pub rate: f64,
    /// The seed.
    pub seed: u64,
    /// kvnode binary; `kvnode_subcommand` says whether to insert `kvnode` as argv[1].
    pub kvnode: PathBuf,
    /// True when `kvnode` is the faultline binary itself (run as `faultline kvnode ...`).
    pub kvnode_subcommand: bool,
    /// Extra kvnode arguments.
    pub kvnode_args: Vec<String>,
    /// libfaketime, when clock faults are scheduled.
    pub faketime: Option<PathBuf>,
    /// Client op deadline, ms.
    pub op_timeout_ms: u64,
    /// Checker budget, seconds.
    pub check_timeout: f64,
    /// Render the HTML report.
    pub report: bool,
    /// The run directory.
    pub run_dir: PathBuf,
    /// The results root (`results/`), where `latest` points into.
    pub results_dir: PathBuf,
    /// Things the user should know (e.g. clock faults skipped).
    pub notes: Vec<String>,
    /// The command line, for the record.
    pub argv: Vec<String>,
}

impl Flags {
    /// Validates the flags and builds the plan; creates the run directory last.
    pub fn resolve(&self) -> Result<TestPlan> {
        if self.nodes < 1 {
            bail!("--nodes must be at least 1 (got {})", self.nodes);
        }
        if self.concurrency < 1 {
            bail!(
                "--concurrency must be at least 1 (got {})",
                self.concurrency
            );
        }
        if !(self.time_limit > 0.0 && self.time_limit.is_finite()) {
            bail!(
                "--time-limit must be a positive number of seconds (got {})",
                self.time_limit
            );
        }
        if !(self.nemesis_interval > 0.0 && self.nemesis_interval.is_finite()) {
            bail!(
                "--nemesis-interval must be positive (got {})",
                self.nemesis_interval
            );
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            bail!("--rate must be >= 0 (got {})", self.rate);
        }
        if !["raft", "multipaxos", "nwr"].contains(&self.engine.as_str()) {
            bail!(
                "unknown --engine {:?} (expected raft, multipaxos or nwr)",
                self.engine
            );
        }
        let workload: Workload = self.workload.parse()?;
        let mut kinds = nemesis::parse_kinds(&self.nemesis)?;
        let shapes = nemesis::partition::parse_shapes(&self.partition_shapes)?;
        if shapes.is_empty() && kinds.contains(&FaultKind::Partition) {
            bail!("--partition-shapes is empty but partitions are scheduled");
        }
        let mut notes = Vec::new();
        let mut faketime = None;
        if kinds.contains(&FaultKind::Clock) {
            match find_faketime() {
                Some(p) => faketime = Some(p),
                None => {
                    let explicit = self.nemesis.split(',').any(|p| p.trim() == "clock");
                    if explicit {
                        bail!(
                            "--nemesis clock needs libfaketime, which is not installed \
                             (install the Debian package `faketime`: apt-get install -y faketime)"
                        );
                    }
                    kinds.retain(|k| *k != FaultKind::Clock);
                    notes.push(
                        "clock faults skipped: libfaketime is not installed \
                         (apt-get install -y faketime)"
                            .to_string(),
                    );
                }
            }
        }
        let (kvnode, kvnode_subcommand) = match &self.kvnode {
            Some(p) => {
                if !p.is_file() {
                    bail!("--kvnode {}: no such file", p.display());
                }
                (p.clone(), false)
            }
            None => (
                std::env::current_exe().context("cannot locate the faultline executable")?,
                true,
            ),
        };
        let kvnode_args: Vec<String> = self
            .kvnode_args
            .split_whitespace()
            .map(String::from)
            .collect();
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("kvnode-{}-{}", self.engine, workload));
        if name.is_empty() || name.contains('/') || name == "latest" || name.starts_with('.') {
            bail!("--name {name:?} is not a usable directory name");
        }
        let seed = self.seed.unwrap_or_else(rand::random);
        let run_dir = create_run_dir(&self.results, &name)?;
        Ok(TestPlan {
            name,
            system: "kvnode".into(),
            engine: self.engine.clone(),
            nodes: (1..=self.nodes).map(|i| format!("n{i}")).collect(),
            workload,
            nemesis: kinds,
            partition_shapes: shapes,
            nemesis_interval: self.nemesis_interval,
            time_limit: self.time_limit,
            concurrency: self.concurrency,
            rate: self.rate,
            seed,
            kvnode,
            kvnode_subcommand,
            kvnode_args,
            faketime,
            op_timeout_ms: self.op_timeout_ms,
            check_timeout: self.check_timeout,
            report: !self.no_report,
            run_dir,
            results_dir: self.results.clone(),
            notes,
            argv: std::env::args().collect(),
        })
    }
}

/// Creates `results/<name>/<timestamp>/` (with a numeric suffix if it exists already).
fn create_run_dir(results: &Path, name: &str) -> Result<PathBuf> {
    let base = results.join(name);
    std::fs::create_dir_all(&base)
        .with_context(|| format!("results directory {} is not writable", base.display()))?;
    let stamp = crate::results::timestamp(std::time::SystemTime::now());
    for i in 0..1000 {
        let dir = if i == 0 {
            base.join(&stamp)
        } else {
            base.join(format!("{stamp}-{i}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("results directory {} is not writable", base.display())
                })
            }
        }
    }
    bail!("could not create a run directory under {}", base.display())
}
