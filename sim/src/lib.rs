//! Deterministic simulation of a whole kvnode cluster: `faultline sim`.
//!
//! The principal type is [`Simulator`]: a checked [`SimConfig`] that runs any seed in one
//! thread, on simulated time, and judges the history with the same checkers as a real run.
//! The key design decision is that nothing is re-implemented for the simulation that the
//! real system has: each node is kvnode's own driver loop ([`cluster::driver::NodeCore`])
//! around kvnode's own engines, built from kvnode's own flag parser
//! ([`cluster::EngineSpec`]); the clients issue the harness's workload ops with the
//! harness's client semantics; the faults are [`nemesis`]'s vocabulary and seeded schedule.
//! Only the environment is simulated: network, clocks, disks, process crashes and pauses,
//! and the HTTP exchange between a client and a node. FoundationDB's simulator and
//! TigerBeetle's VOPR take the same approach.
//!
//! Same inputs, same history, byte for byte: all randomness comes from the seed (per link,
//! per node, per worker streams, so shrinking a case perturbs little), there is no wall
//! clock, no thread and no hash-map iteration in the simulation.
//!
//! # Layout
//! - [`config`]: what a run is ([`SimConfig`], [`Case`], [`Faults`], the environment model).
//! - [`world`]: one run: nodes, network, clients, nemesis, phases ([`world::Outcome`]).
//! - [`queue`], [`clock`], [`net`]: simulated time, clocks and network.
//! - [`client`]: the harness client's protocol and outcome classification.
//! - [`script`]: the readable, replayable text form of a case and its fault steps.
//! - [`shrink`]: minimising a failing case.
//! - [`hunt`]: many seeds in parallel (rayon), stopping at the first failure.
//! - [`from_run`]: a real run's fault steps, from its history.

pub mod client;
pub mod clock;
pub mod config;
pub mod from_run;
pub mod hunt;
pub mod net;
pub mod queue;
pub mod script;
pub mod shrink;
pub mod world;

pub use config::{Case, Environment, Faults, SimConfig};

use checkers::analysis::{Analysis, AnalysisOptions, Check, NwrConfig, Verdict};
use checkers::history::History;
use checkers::linearizable::CheckOptions;
use checkers::model::ModelKind;
use checkers::nwr::{Anomaly, AnomalyKind};
use cluster::engine::multipaxos::MultiPaxos;
use cluster::engine::nwr::{ClockMode, Nwr};
use cluster::engine::raft::Raft;
use cluster::{EngineKind, EngineSpec};
use std::time::Duration;
use world::{NodeParams, Outcome, World};

/// Why a configuration cannot be simulated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The kvnode flags do not make a valid node.
    #[error("--kvnode-args: {0}")]
    KvnodeArgs(#[from] cluster::EngineFlagsError),
    /// A setting out of range.
    #[error("{0}")]
    Invalid(String),
}

/// The largest cluster a simulation runs (as `faultline test --nodes`).
pub const MAX_NODES: usize = 64;

/// A checked configuration, ready to run seeds.
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimConfig,
    spec: EngineSpec,
    /// The user fixed the engines' seed with `--seed` in the kvnode flags.
    fixed_engine_seed: bool,
}

/// A run and what the checkers make of it.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The run.
    pub outcome: Outcome,
    /// The checkers' verdict on its history.
    pub analysis: Analysis,
    /// For the leaderless engine (NWR), what decides: the first anomaly a quorum store
    /// promises not to show (see [`quorum_anomaly`]); `None` otherwise or when there is none.
    pub quorum_anomaly: Option<Anomaly>,
    /// True for the leaderless engine without read write-back, judged by
    /// [`Judged::quorum_anomaly`].
    pub leaderless: bool,
}

/// The anomalies that make an NWR run fail: a stale read (a read older than a write
/// acknowledged before it began), a lost write, a read-your-writes violation, an unexplained
/// read. With `W + R > N` and a causally consistent clock the engine promises none of them;
/// `W + R <= N` or last-writer-wins on skewed wall clocks produce them. New-old inversions and
/// monotonic-read violations are not among them: they need only a write in flight, and no
/// Dynamo-style quorum without a synchronous write-back avoids them (`checkers::nwr`), so
/// NWR histories are expected not to be linearizable and linearizability does not decide
/// (unless the run writes back on reads, `--read-writeback`: then it does, as for Raft).
pub const QUORUM_ANOMALIES: [AnomalyKind; 4] = [
    AnomalyKind::LostWrite,
    AnomalyKind::StaleRead,
    AnomalyKind::ReadYourWrites,
    AnomalyKind::UnexplainedRead,
];

/// The first of [`QUORUM_ANOMALIES`] (in that order of severity) the analysis's NWR section
/// found.
pub fn quorum_anomaly(analysis: &Analysis) -> Option<Anomaly> {
    let found = &analysis.nwr.as_ref()?.analysis.anomalies;
    QUORUM_ANOMALIES
        .iter()
        .find_map(|k| found.iter().find(|x| x.kind == *k).cloned())
}

impl Judged {
    /// True when the run found a bug: a node could not restart from its own disk, or the
    /// run did not finish, or the history is invalid (for NWR: shows a quorum anomaly).
    pub fn failed(&self) -> bool {
        if !self.outcome.errors.is_empty() {
            return true;
        }
        if self.leaderless {
            self.quorum_anomaly.is_some()
        } else {
            self.analysis.is_invalid()
        }
    }

    /// True when the checkers could not decide (the linearizability budget was spent);
    /// never for NWR, whose quorum anomalies are always decided.
    pub fn undecided(&self) -> bool {
        !self.leaderless && self.analysis.verdict == Verdict::Unknown
    }

    /// One line on why the run failed (or its verdict when it did not).
    pub fn summary(&self) -> String {
        if let Some(e) = self.outcome.errors.first() {
            return e.clone();
        }
        if self.leaderless {
            return match &self.quorum_anomaly {
                Some(a) => format!("{}: {}", a.kind.name(), a.description),
                None => format!(
                    "no stale read, lost write or session anomaly (linearizability: {})",
                    self.analysis.verdict.name()
                ),
            };
        }
        let a = &self.analysis;
        let verdict = a.verdict.name();
        match (a.decided_by, &a.linearizability, &a.ghosts) {
            (Some(Check::Ghosts), _, Some(g)) => {
                format!("{verdict} because of ghost writes: {}", g.summary())
            }
            (_, Some(l), _) => format!("{verdict}: {}", l.explanation),
            _ => a.summary.clone(),
        }
    }
}

impl Simulator {
    /// Checks `config` (engine flags with kvnode's parser, sizes, probabilities).
    pub fn new(config: SimConfig) -> Result<Simulator, SimError> {
        let bad = |m: String| Err(SimError::Invalid(m));
        if !(1..=MAX_NODES).contains(&config.nodes) {
            return bad(format!(
                "--nodes {} must be between 1 and {MAX_NODES}",
                config.nodes
            ));
        }
        if config.concurrency == 0 {
            return bad("--concurrency must be at least 1".into());
        }
        if config.time_limit_ms == 0 {
            return bad("--sim-time must be positive".into());
        }
        if config.op_timeout_ms == 0 {
            return bad("--op-timeout-ms must be positive".into());
        }
        if config.nemesis_interval_ms == 0 {
            return bad("--nemesis-interval must be positive".into());
        }
        if !(config.rate >= 0.0 && config.rate.is_finite()) {
            return bad(format!("--rate must be >= 0 (got {})", config.rate));
        }
        config
            .environment
            .net
            .validate()
            .map_err(SimError::Invalid)?;
        let torn = config.environment.disk.torn_write;
        if !(0.0..=1.0).contains(&torn) {
            return bad(format!("disk.torn_write = {torn} is not a probability"));
        }
        let mut flags = vec!["--engine".to_string(), config.engine.clone()];
        flags.extend(config.kvnode_args.iter().cloned());
        let ids = config.node_ids();
        let spec = EngineSpec::from_flags(&ids[0], &ids, &flags)?;
        if config.workload.is_transactional() {
            return bad(format!(
                "--workload {}: the simulator runs the register and kv workloads only \
                 (transactional workloads: faultline test)",
                config.workload
            ));
        }
        if spec.shards > 1 {
            return bad(format!(
                "--shards {}: the simulator runs one replication group per node \
                 (sharded clusters: faultline test)",
                spec.shards
            ));
        }
        if spec.kind == EngineKind::Nwr && config.mix.cas_percent > 0 {
            return bad(format!(
                "--cas-percent {}: the nwr engine offers no compare-and-set; use 0",
                config.mix.cas_percent
            ));
        }
        let fixed_engine_seed = config
            .kvnode_args
            .iter()
            .any(|a| a == "--seed" || a.starts_with("--seed="));
        Ok(Simulator {
            config,
            spec,
            fixed_engine_seed,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The engine settings every node runs with (node n1's).
    pub fn spec(&self) -> &EngineSpec {
        &self.spec
    }

    /// True for a leaderless engine (NWR), judged against the plain register model.
    pub fn leaderless(&self) -> bool {
        self.spec.kind == EngineKind::Nwr
    }

    /// The NWR settings as the checkers take them, for NWR only.
    pub fn nwr(&self) -> Option<NwrConfig> {
        let q = &self.spec.nwr;
        self.leaderless().then(|| NwrConfig {
            n: q.n as u32,
            w: q.w as u32,
            r: q.r as u32,
            clock: if q.clock == ClockMode::Wall {
                "wall"
            } else {
                "hybrid"
            }
            .into(),
            read_repair: q.read_repair,
            read_writeback: q.read_writeback,
            intersecting: q.w + q.r > q.n,
        })
    }

    /// The case of `seed` with `faults`.
    pub fn case(&self, seed: u64, faults: Faults) -> Case {
        Case {
            config: self.config.clone(),
            seed,
            faults,
        }
    }

    /// Runs one case (its config must be this simulator's, up to clients, ops and time).
    pub fn run(&self, case: &Case) -> Outcome {
        let ids = case.config.node_ids();
        let mut spec = self.spec.clone();
        if !self.fixed_engine_seed {
            spec.config.seed = case.seed;
        }
        let params = NodeParams {
            tick_ns: spec.config.tick_ms.max(1) * 1_000_000,
            request_timeout_ns: spec.request_timeout_ms * 1_000_000,
            fsync: spec.fsync,
            leaderless: spec.kind == EngineKind::Nwr,
        };
        let cfg = |id: &str| spec.node_config(id, &ids);
        match spec.kind {
            EngineKind::Raft => {
                let build = |id: &str, rec| Raft::new(cfg(id), rec).map_err(|e| e.to_string());
                World::new(case, params, &build).run()
            }
            EngineKind::Multipaxos => {
                let build = |id: &str, rec| {
                    MultiPaxos::new(cfg(id), rec, spec.unsafe_no_start_working)
                        .map_err(|e| e.to_string())
                };
                World::new(case, params, &build).run()
            }
            EngineKind::Nwr => {
                let build = |id: &str, rec| {
                    Nwr::new(cfg(id), spec.nwr.clone(), rec).map_err(|e| e.to_string())
                };
                World::new(case, params, &build).run()
            }
        }
    }

    /// The checkers' verdict on a history, with the options `faultline test` uses: the
    /// cas-register model (the plain register for NWR, which has no cas), split per key, the
    /// ghost check, and for NWR the staleness section. Counterexamples are not minimised
    /// (a hunt judges thousands of runs; the run directory of a failure is analysed again).
    pub fn analyze(&self, outcome: &Outcome, check_timeout: Duration) -> Analysis {
        let check = CheckOptions {
            model: Some(if self.leaderless() {
                ModelKind::Register
            } else {
                ModelKind::CasRegister
            }),
            timeout: Some(check_timeout),
            partition: true,
            ..CheckOptions::default()
        };
        let opts = AnalysisOptions {
            check,
            nwr: self.nwr(),
            minimize: Duration::ZERO,
            txn: None,
            ghosts: true,
        };
        Analysis::new(&History::from_events(outcome.history.clone()), &opts)
    }

    /// Runs and judges one case.
    pub fn judge(&self, case: &Case, check_timeout: Duration) -> Judged {
        let outcome = self.run(case);
        let analysis = self.analyze(&outcome, check_timeout);
        // With reads written back (ABD) an NWR history must be linearizable: judged as Raft's.
        let leaderless = self.leaderless() && !self.spec.nwr.read_writeback;
        let quorum_anomaly = leaderless.then(|| quorum_anomaly(&analysis)).flatten();
        Judged {
            outcome,
            analysis,
            quorum_anomaly,
            leaderless,
        }
    }
}

/// Serializes a history exactly as `history.jsonl` holds it.
pub fn history_jsonl(events: &[checkers::history::Event]) -> Vec<u8> {
    let mut w = checkers::history::HistoryWriter::new(Vec::new());
    for e in events {
        // Writing to a Vec cannot fail.
        let _ = w.write(e);
    }
    w.into_inner()
}
