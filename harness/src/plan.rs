//! Two-stage parsing of `faultline test`, after ripgrep's lowargs/hiargs split.
//!
//! [`Flags`] is what the user typed (clap); [`Flags::resolve`] validates it and builds a
//! [`TestPlan`]: every default filled in, the seed drawn, the kvnode binary and libfaketime
//! located, the run directory created. Nothing is started before `resolve` succeeds, so bad
//! input never leaves a process or a half-made run behind. The plan is stored as `test.json`,
//! which is enough to repeat a run exactly.

use crate::numeric;
use anyhow::{bail, Context, Result};
use nemesis::{FaultKind, PartitionShape};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use workloads::{Mix, Workload};

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
#[command(
    after_help = concat!(
        "NWR engine: --engine nwr [--nwr N,W,R] [--clock hybrid|wall] [--read-repair].\n",
        "Defaults: N = --nodes, W = R = a majority of N, hybrid clock, no read repair, no cas.\n",
        "Partial quorum, stale reads expected:\n",
        "  faultline test --engine nwr --nwr 3,1,1 --nodes 3 --nemesis partition --workload kv\n",
        "Last-writer-wins on skewed wall clocks loses writes (needs libfaketime):\n",
        "  faultline test --engine nwr --clock wall --nodes 3 --nemesis clock --workload kv\n",
        "results.json gets an `nwr` staleness section; an invalid verdict names its anomaly."
    )
)]
pub struct Flags {
    /// Where the nodes run: `local` (processes on 127.0.0.1 behind userspace link proxies; no
    /// root), `netns` (one network namespace per node on a bridge; root; partitions with
    /// iptables, packet faults with tc netem, clock faults with libfaketime because the
    /// namespaces share this machine's kernel clock) or `ssh` (hosts from --hosts or
    /// --vagrant).
    #[arg(long = "env", default_value = "local", value_name = "local|netns|ssh")]
    pub env: crate::env::EnvKind,
    /// System under test: `kvnode` (the bundled store) or `etcd` (the installed etcd server,
    /// Debian's `etcd-server`; `FAULTLINE_ETCD=PATH` picks another binary).
    #[arg(long, default_value = "kvnode", value_name = "kvnode|etcd")]
    pub system: System,
    /// --system etcd: serializable reads (served by the member asked, from its own state)
    /// instead of linearizable ones; etcd documents that these may be stale.
    #[arg(long)]
    pub etcd_serializable_reads: bool,
    /// Replication engine of the bundled kvnode (raft, multipaxos, nwr; default raft).
    #[arg(long)]
    pub engine: Option<String>,
    /// Extra arguments passed verbatim to every kvnode, e.g. "--read unsafe-local" (NWR's
    /// N/W/R, clock and read repair go through --nwr, --clock and --read-repair instead).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub kvnode_args: String,
    /// NWR engine: replicas per key, write quorum, read quorum, as "N,W,R" (or just "N": W and
    /// R a majority of N). Default: N = --nodes, W = R = a majority. W+R<=N is a partial
    /// quorum (stale reads expected). Recorded in test.json and used by the staleness analysis.
    #[arg(long, value_name = "N,W,R")]
    pub nwr: Option<String>,
    /// NWR engine: last-writer-wins timestamps from the coordinator's wall clock (clock skew
    /// reorders writes; combine with --nemesis clock) or a hybrid logical clock.
    #[arg(long, value_name = "hybrid|wall")]
    pub clock: Option<String>,
    /// NWR engine: push the newest version to stale replicas that answered a read.
    #[arg(long)]
    pub read_repair: bool,
    /// NWR engine: ABD-style linearizable quorums (writes read the highest timestamp from a
    /// quorum first; reads write the newest version back before answering).
    #[arg(long)]
    pub read_writeback: bool,
    /// Percent of ops that are compare-and-set, 0..=50 (reads stay 50%, writes take the rest).
    /// Default: 20, or 0 for --engine nwr (which offers no cas).
    #[arg(long, value_name = "PERCENT", value_parser = numeric::count::<u32>(0, 50))]
    pub cas_percent: Option<u32>,
    /// The kvnode binary (default: this executable, run as `faultline kvnode`).
    #[arg(long)]
    pub kvnode: Option<PathBuf>,
    /// Number of nodes (default 5; with --env ssh, the number of hosts).
    #[arg(long, value_parser = numeric::count::<usize>(1, 64))]
    pub nodes: Option<usize>,
    /// --env ssh: the hosts file (addresses, login, sudo, clock mode; see docs/environments.md).
    #[arg(long, value_name = "FILE", conflicts_with = "vagrant")]
    pub hosts: Option<PathBuf>,
    /// --env ssh: the machines of the Vagrantfile in DIR (default: this directory), from
    /// `vagrant ssh-config`.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    pub vagrant: Option<PathBuf>,
    /// --env ssh: add unknown host keys to known_hosts instead of refusing to connect.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Workload: register (one key) or kv (many keys), checked for linearizability; or the
    /// transactional ones (kvnode's POST /txn): list-append (Elle: isolation cycles), bank
    /// (transfers; every read shows the same total), set (adds; lost/unexpected elements),
    /// counter (increments; reads within bounds).
    #[arg(long, default_value = "register")]
    pub workload: String,
    /// --workload list-append: the isolation level Elle checks the run against:
    /// strict-serializable (the default: what Raft and Multi-Paxos promise), serializable,
    /// snapshot-isolation or read-committed (or a strong-session / strong variant, as for
    /// `faultline check --isolation`). Recorded in test.json; the verdict names it.
    #[arg(long, value_name = "MODEL")]
    pub isolation: Option<checkers::elle::ConsistencyModel>,
    /// Faults: comma-separated partition, kill, pause, clock, packet, member; or all (every
    /// kind but member); or none. member (Raft, --env local, 3-5 nodes): membership changes.
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Mean seconds between fault changes (each kind waits ~this long, then holds ~this long).
    #[arg(long, default_value_t = 5.0, value_name = "SECS",
          value_parser = numeric::secs(0.01, numeric::MAX_INTERVAL_S))]
    pub nemesis_interval: f64,
    /// Partition shapes to draw from: halves, one, ring, bridge, leader; or all.
    #[arg(long, default_value = "all")]
    pub partition_shapes: String,
    /// Seconds of workload + faults (the main phase).
    #[arg(long, default_value_t = 30.0, value_name = "SECS",
          value_parser = numeric::secs(0.1, numeric::MAX_TIME_LIMIT_S))]
    pub time_limit: f64,
    /// Concurrent client workers.
    #[arg(long, default_value_t = 10, value_parser = numeric::count::<usize>(1, numeric::MAX_CONCURRENCY))]
    pub concurrency: usize,
    /// Target total ops/s across all workers (0 = as fast as possible).
    #[arg(long, default_value_t = 100.0, value_name = "OPS_PER_S", value_parser = numeric::rate)]
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
    #[arg(long, default_value_t = 2000, value_name = "MS",
          value_parser = numeric::count::<u64>(numeric::MIN_OP_TIMEOUT_MS, numeric::MAX_OP_TIMEOUT_MS))]
    pub op_timeout_ms: u64,
    /// Time budget of the linearizability check, seconds (past it the verdict is unknown).
    #[arg(long, default_value_t = 60.0, value_name = "SECS",
          value_parser = numeric::secs(0.001, numeric::MAX_BUDGET_S))]
    pub check_timeout: f64,
    /// Skip rendering the HTML report.
    #[arg(long)]
    pub no_report: bool,
    /// Run again exactly as the run in RUN_DIR was run (its flags and seed, from its
    /// test.json); takes no other flags.
    #[arg(long, value_name = "RUN_DIR")]
    pub repeat: Option<PathBuf>,
    /// Resolve the flags and print the plan (what test.json would hold) without starting
    /// anything or creating a run directory.
    #[arg(long)]
    pub dry_run: bool,
}

/// A fully resolved test: what `test.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestPlan {
    /// Test name (the results subdirectory).
    pub name: String,
    /// Where the nodes run.
    #[serde(default = "local_env")]
    pub env: crate::env::EnvKind,
    /// The SSH hosts (--env ssh), resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<crate::env::hosts::Hosts>,
    /// System under test.
    pub system: System,
    /// Its version (`etcd --version`; faultline's own for kvnode); cluster.json has the one
    /// the hosts reported.
    #[serde(default)]
    pub system_version: String,
    /// etcd settings, for `--system etcd` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdSettings>,
    /// kvnode engine (`raft` for etcd, whose replication is Raft).
    pub engine: String,
    /// Node ids, `n1`..`nN`.
    pub nodes: Vec<String>,
    /// With `--nemesis member`: how many of `nodes` form the cluster at the start; the
    /// others are fresh ids (empty data dirs) for membership changes to add, each used once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    /// Workload.
    pub workload: Workload,
    /// Operation mix of the workload (the cas share).
    #[serde(default)]
    pub mix: Mix,
    /// list-append: the isolation level checked (absent in runs recorded before
    /// `--isolation`, which were checked against strict serializability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<checkers::elle::ConsistencyModel>,
    /// Quorum settings, for the NWR engine only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nwr: Option<NwrSettings>,
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

/// N/W/R, clock and read repair of an NWR run: passed to every kvnode and read back from
/// `test.json` by the staleness analysis (which needs N/W/R for its PBS prediction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NwrSettings {
    /// Replicas per key.
    pub n: u32,
    /// Replica acks a write waits for.
    pub w: u32,
    /// Replica replies a read waits for.
    pub r: u32,
    /// Last-writer-wins timestamp source: `hybrid` or `wall`.
    pub clock: String,
    /// Read repair on.
    pub read_repair: bool,
    /// ABD write-back reads and timestamp-querying writes.
    #[serde(default)]
    pub read_writeback: bool,
}

impl NwrSettings {
    /// Parses `--nwr` ("N,W,R" or "N") and `--clock` against a cluster of `nodes`.
    pub fn resolve(
        spec: Option<&str>,
        clock: Option<&str>,
        read_repair: bool,
        read_writeback: bool,
        nodes: usize,
    ) -> Result<NwrSettings> {
        let nums: Vec<u32> = match spec {
            None => vec![],
            Some(s) => s
                .split(',')
                .map(|p| p.trim().parse::<u32>())
                .collect::<std::result::Result<_, _>>()
                .with_context(|| format!("--nwr {s:?}: expected N,W,R (e.g. 3,2,2) or N"))?,
        };
        let n = match nums.as_slice() {
            [] => nodes as u32,
            [n] | [n, _, _] => *n,
            _ => bail!(
                "--nwr {:?}: expected N,W,R (e.g. 3,2,2) or N",
                spec.unwrap_or_default()
            ),
        };
        if n < 1 || n as usize > nodes {
            bail!("--nwr: N = {n} must be between 1 and --nodes ({nodes})");
        }
        let majority = n / 2 + 1;
        let (w, r) = match nums.as_slice() {
            [_, w, r] => (*w, *r),
            _ => (majority, majority),
        };
        if w < 1 || w > n {
            bail!("--nwr: W = {w} must be between 1 and N = {n}");
        }
        if r < 1 || r > n {
            bail!("--nwr: R = {r} must be between 1 and N = {n}");
        }
        let clock = clock.unwrap_or("hybrid").to_string();
        if !["hybrid", "wall"].contains(&clock.as_str()) {
            bail!("--clock {clock:?}: expected hybrid or wall");
        }
        Ok(NwrSettings {
            n,
            w,
            r,
            clock,
            read_repair,
            read_writeback,
        })
    }

    /// The kvnode flags that set these.
    pub fn kvnode_args(&self) -> Vec<String> {
        let mut a = vec![
            "--n".to_string(),
            self.n.to_string(),
            "--w".into(),
            self.w.to_string(),
            "--r".into(),
            self.r.to_string(),
            "--clock".into(),
            self.clock.clone(),
        ];
        if self.read_repair {
            a.push("--read-repair".into());
        }
        if self.read_writeback {
            a.push("--read-writeback".into());
        }
        a
    }
}

/// The systems faultline can test (`--system`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// The bundled replicated store.
    Kvnode,
    /// etcd, installed on the hosts.
    Etcd,
}

impl System {
    /// The `--system` name.
    pub fn name(self) -> &'static str {
        match self {
            System::Kvnode => "kvnode",
            System::Etcd => "etcd",
        }
    }
}

impl std::str::FromStr for System {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "kvnode" => Ok(System::Kvnode),
            "etcd" => Ok(System::Etcd),
            _ => Err(format!("unknown --system {s:?} (expected kvnode or etcd)")),
        }
    }
}

/// How an etcd run runs etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdSettings {
    /// The etcd binary on this machine (none: the SSH hosts' own `etcd`).
    pub binary: Option<PathBuf>,
    /// Serializable instead of linearizable reads.
    pub serializable_reads: bool,
}

fn local_env() -> crate::env::EnvKind {
    crate::env::EnvKind::Local
}

impl TestPlan {
    /// True when the engine has no leader to wait for (NWR: every node coordinates).
    pub fn leaderless(&self) -> bool {
        self.engine == "nwr"
    }
}

impl Flags {
    /// Validates the flags and builds the plan; creates the run directory last.
    pub fn resolve(&self) -> Result<TestPlan> {
        let mut plan = self.resolve_dry()?;
        plan.run_dir = create_run_dir(&self.results, &plan.name)?;
        Ok(plan)
    }

    /// Validates the flags and builds the plan without touching the disk; `run_dir` is where
    /// the run would go.
    pub fn resolve_dry(&self) -> Result<TestPlan> {
        if self.repeat.is_some() {
            bail!("--repeat must be expanded with Flags::repeated before resolving");
        }
        use crate::env::EnvKind;
        let ssh = match (self.env, &self.hosts, &self.vagrant) {
            (EnvKind::Ssh, Some(f), _) => Some(crate::env::hosts::Hosts::load(
                f,
                self.accept_new_host_keys,
            )?),
            (EnvKind::Ssh, None, Some(d)) => Some(crate::env::hosts::Hosts::vagrant(d)?),
            (EnvKind::Ssh, None, None) => bail!("--env ssh needs --hosts FILE or --vagrant [DIR]"),
            (_, None, None) if !self.accept_new_host_keys => None,
            _ => bail!("--hosts, --vagrant and --accept-new-host-keys only apply to --env ssh"),
        };
        let nodes = match (&ssh, self.nodes) {
            (Some(h), Some(n)) if n != h.hosts.len() => bail!(
                "--nodes {n} but the hosts file lists {} hosts (leave --nodes out with --env ssh)",
                h.hosts.len()
            ),
            (Some(h), _) => h.hosts.len(),
            (None, n) => n.unwrap_or(5),
        };
        let node_ids: Vec<String> = match &ssh {
            Some(h) => h.hosts.iter().map(|h| h.name.clone()).collect(),
            None => (1..=nodes).map(|i| format!("n{i}")).collect(),
        };
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
        let etcd = self.system == System::Etcd;
        if etcd {
            let kvnode_only = [
                ("--engine", self.engine.is_some()),
                ("--kvnode", self.kvnode.is_some()),
                ("--kvnode-args", !self.kvnode_args.trim().is_empty()),
                ("--nwr", self.nwr.is_some()),
                ("--clock", self.clock.is_some()),
                ("--read-repair", self.read_repair),
            ];
            if let Some((flag, _)) = kvnode_only.iter().find(|(_, given)| *given) {
                bail!("{flag} only applies to --system kvnode");
            }
        } else if self.etcd_serializable_reads {
            bail!("--etcd-serializable-reads only applies to --system etcd");
        }
        let engine = self.engine.clone().unwrap_or_else(|| "raft".into());
        if !["raft", "multipaxos", "nwr"].contains(&engine.as_str()) {
            bail!("unknown --engine {engine:?} (expected raft, multipaxos or nwr)");
        }
        let workload: Workload = self.workload.parse()?;
        if workload.is_transactional() {
            if etcd {
                bail!("--workload {workload} runs kvnode's transactions (POST /txn); with --system etcd use register or kv");
            }
            if self.cas_percent.is_some() {
                bail!("--cas-percent applies to the register and kv workloads, not {workload}");
            }
        }
        let isolation = match (self.isolation, workload) {
            (m, Workload::ListAppend) => {
                Some(m.unwrap_or(checkers::elle::ConsistencyModel::StrictSerializable))
            }
            (None, _) => None,
            (Some(m), other) => {
                bail!("--isolation {m} applies to --workload list-append (Elle), not {other}")
            }
        };
        let nwr_engine = engine == "nwr";
        let kvnode_args: Vec<String> = self
            .kvnode_args
            .split_whitespace()
            .map(String::from)
            .collect();
        let nwr = if nwr_engine {
            // One source of truth: flags given twice could disagree with what test.json says.
            if let Some(a) = kvnode_args.iter().find(|a| {
                let name = a.split('=').next().unwrap_or_default();
                [
                    "--n",
                    "--w",
                    "--r",
                    "--clock",
                    "--read-repair",
                    "--read-writeback",
                ]
                .contains(&name)
            }) {
                bail!(
                    "--kvnode-args {a}: set NWR quorums with --nwr N,W,R, the clock with --clock and \
                     read repair with --read-repair (faultline records them in test.json)"
                );
            }
            Some(NwrSettings::resolve(
                self.nwr.as_deref(),
                self.clock.as_deref(),
                self.read_repair,
                self.read_writeback,
                nodes,
            )?)
        } else {
            if self.nwr.is_some() || self.clock.is_some() || self.read_repair || self.read_writeback
            {
                bail!(
                    "--nwr, --clock, --read-repair and --read-writeback only apply to --engine nwr"
                );
            }
            None
        };
        let cas_percent = self.cas_percent.unwrap_or(if nwr_engine {
            0
        } else {
            Mix::DEFAULT_CAS_PERCENT
        });
        if nwr_engine && cas_percent > 0 {
            bail!("--cas-percent {cas_percent}: the nwr engine offers no compare-and-set; use 0");
        }
        let mix = Mix::with_cas_percent(cas_percent).with_context(|| {
            format!(
                "--cas-percent {cas_percent} must be at most {}",
                100 - Mix::READ_PERCENT
            )
        })?;
        let mut kinds = nemesis::parse_kinds(&self.nemesis)?;
        let shapes = nemesis::partition::parse_shapes(&self.partition_shapes)?;
        if shapes.is_empty() && kinds.contains(&FaultKind::Partition) {
            bail!("--partition-shapes is empty but partitions are scheduled");
        }
        let mut notes = Vec::new();
        let explicit_clock = self.nemesis.split(',').any(|p| p.trim() == "clock");
        // Go reads the wall clock through the vDSO, never through libc, so libfaketime cannot
        // move etcd's clock: only hosts whose system clock faultline moves can skew it.
        let system_clocks = ssh.as_ref().is_some_and(|h| {
            h.hosts
                .iter()
                .all(|h| h.clock == crate::env::hosts::ClockMode::System)
        });
        if etcd && kinds.contains(&FaultKind::Clock) && !system_clocks {
            let why = "libfaketime cannot move etcd's clock (Go reads the wall clock through \
                       the vDSO, not libc), and local and netns nodes share this machine's \
                       clock; clock faults reach etcd only on --env ssh hosts with clock = \"system\"";
            if explicit_clock {
                bail!("--nemesis clock with --system etcd: {why}");
            }
            kinds.retain(|k| *k != FaultKind::Clock);
            notes.push(format!("clock faults skipped: {why}"));
        }
        let mut faketime = None;
        // On SSH hosts the clock mechanism is the hosts' (their own clocks, or their
        // libfaketime): nothing to find on this machine.
        if kinds.contains(&FaultKind::Clock) && self.env != crate::env::EnvKind::Ssh {
            match find_faketime() {
                Some(p) => faketime = Some(p),
                None => {
                    if explicit_clock {
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
        let (etcd_settings, system_version) = if etcd {
            // Local processes and namespaces run this machine's binary; SSH hosts may bring
            // their own.
            let binary = crate::db::etcd::find_binary();
            let version = match &binary {
                Some(b) => crate::db::etcd::local_version(b)?,
                None if self.env == crate::env::EnvKind::Ssh => {
                    "(the hosts' etcd; see cluster.json)".into()
                }
                None => bail!(
                    "--system etcd needs the etcd server, which is not installed: {}",
                    crate::db::etcd::INSTALL_HINT
                ),
            };
            let settings = EtcdSettings {
                binary,
                serializable_reads: self.etcd_serializable_reads,
            };
            (Some(settings), version)
        } else {
            (None, env!("CARGO_PKG_VERSION").to_string())
        };
        let name = self.name.clone().unwrap_or_else(|| match &etcd_settings {
            Some(e) if e.serializable_reads => format!("etcd-serializable-{workload}"),
            Some(_) => format!("etcd-{workload}"),
            None => format!("kvnode-{engine}-{workload}"),
        });
        if name.is_empty() || name.contains('/') || name == "latest" || name.starts_with('.') {
            bail!("--name {name:?} is not a usable directory name");
        }
        let mut node_ids = node_ids;
        let members = if kinds.contains(&FaultKind::Member) {
            if etcd || engine != "raft" {
                bail!("--nemesis member needs --system kvnode --engine raft (the engine with membership changes)");
            }
            let sharded = kvnode_args.iter().enumerate().any(|(i, a)| {
                let value = match a.strip_prefix("--shards") {
                    Some("") => kvnode_args.get(i + 1).map(String::as_str),
                    Some(v) => v.strip_prefix('='),
                    None => None,
                };
                value.is_some_and(|v| v != "1")
            });
            if sharded {
                bail!("--nemesis member: membership changes are not supported with --shards (--kvnode-args)");
            }
            if self.env != crate::env::EnvKind::Local {
                bail!("--nemesis member runs on --env local only (it starts fresh nodes on this machine)");
            }
            if !(3..=5).contains(&nodes) {
                bail!("--nemesis member keeps the cluster between 3 and 5 nodes: --nodes {nodes} must be 3, 4 or 5");
            }
            // One membership change every two intervals on average, about half of them
            // adds (failed ones burn their ids too), of up to two fresh ids each (the unsafe
            // variant): enough that adds rarely run out in a test-length run.
            let changes = self.time_limit / (2.0 * self.nemesis_interval);
            let spare = ((changes as usize) + 4).min(24);
            node_ids.extend((nodes + 1..=nodes + spare).map(|i| format!("n{i}")));
            Some(nodes)
        } else {
            None
        };
        let seed = self.seed.unwrap_or_else(rand::random);
        ensure_fd_limit(node_ids.len(), self.concurrency)?;
        let run_dir = self
            .results
            .join(&name)
            .join(crate::rundir::timestamp(std::time::SystemTime::now()));
        if self.env == crate::env::EnvKind::Netns && !crate::env::netns::is_root() {
            bail!("--env netns needs root (network namespaces, iptables, tc netem); run as root or use --env local");
        }
        Ok(TestPlan {
            env: self.env,
            name,
            system: self.system,
            system_version,
            etcd: etcd_settings,
            engine,
            nodes: node_ids,
            members,
            ssh,
            workload,
            mix,
            isolation,
            nwr,
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

/// Open files the harness needs for `nodes` nodes and `concurrency` workers: every directed
/// peer link runs through a proxy (its listener, and two sockets per connection, with a spare
/// connection during reconnects), each worker holds a keep-alive connection or two, plus the
/// history, logs and the runtime's own.
pub fn fds_needed(nodes: usize, concurrency: usize) -> u64 {
    let links = (nodes * nodes.saturating_sub(1)) as u64;
    links * 5 + concurrency as u64 * 2 + nodes as u64 * 4 + 128
}

/// Makes sure the open-file limit covers [`fds_needed`]: raises the soft limit up to the
/// hard limit when that is enough, otherwise says how many are needed and what to raise.
fn ensure_fd_limit(nodes: usize, concurrency: usize) -> Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let need = fds_needed(nodes, concurrency);
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).context("cannot read the open-file limit")?;
    if soft >= need {
        return Ok(());
    }
    if hard >= need && setrlimit(Resource::RLIMIT_NOFILE, need, hard).is_ok() {
        return Ok(());
    }
    bail!(
        "--nodes {nodes} with --concurrency {concurrency} needs about {need} open files \
         ({} directed peer links, each through a proxy of the harness), but the limit is {soft} \
         (hard limit {hard}): raise it (`ulimit -n {need}`, as root or via limits.conf) or use fewer nodes",
        nodes * nodes.saturating_sub(1)
    )
}

/// Creates `results/<name>/<timestamp>/` (with a numeric suffix if it exists already).
pub fn create_run_dir(results: &Path, name: &str) -> Result<PathBuf> {
    let base = results.join(name);
    std::fs::create_dir_all(&base)
        .with_context(|| format!("results directory {} is not writable", base.display()))?;
    let stamp = crate::rundir::timestamp(std::time::SystemTime::now());
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

/// Parses `faultline test` flags from a full argv (`faultline test ...`).
#[derive(clap::Parser)]
#[command(name = "faultline test")]
struct TestArgv {
    #[command(flatten)]
    flags: Flags,
}

impl Flags {
    /// The flags a stored run was started with (its test.json's argv), with its seed, so
    /// the run repeats exactly: same cluster, workload, schedule and op stream.
    pub fn repeated(run_dir: &Path) -> Result<Flags> {
        let path = run_dir.join(checkers::layout::TEST);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("--repeat: cannot read {}", path.display()))?;
        let plan: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("--repeat: {} is not JSON", path.display()))?;
        let argv: Vec<String> = plan
            .get("argv")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .with_context(|| format!("--repeat: {} has no \"argv\" list", path.display()))?;
        let seed = plan
            .get("seed")
            .and_then(serde_json::Value::as_u64)
            .with_context(|| format!("--repeat: {} has no \"seed\"", path.display()))?;
        let mut args = vec!["faultline test".to_string()];
        let mut rest = argv.into_iter().skip(2);
        while let Some(a) = rest.next() {
            // The stored seed is authoritative; a recorded --seed is replaced, not doubled.
            if a == "--seed" {
                rest.next();
            } else if !a.starts_with("--seed=") {
                args.push(a);
            }
        }
        args.extend(["--seed".to_string(), seed.to_string()]);
        let parsed = <TestArgv as clap::Parser>::try_parse_from(&args).map_err(|e| {
            anyhow::anyhow!(
                "--repeat: the flags in {} no longer parse: {e}",
                path.display()
            )
        })?;
        Ok(parsed.flags)
    }
}
