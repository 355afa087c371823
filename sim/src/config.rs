//! What a simulated run is: the cluster (engine and kvnode flags, nodes), the workload and
//! its clients, the nemesis, and the environment model (network, clocks, disks). A
//! [`SimConfig`] plus a seed and a fault plan ([`Faults`]) determine a run completely.

use crate::clock::ClockModel;
use crate::net::NetModel;
use nemesis::{FaultKind, PartitionShape, Step};
use serde::{Deserialize, Serialize};
use workloads::{Mix, Workload};

/// How simulated disks behave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskModel {
    /// Shortest fsync, µs.
    pub min_fsync_us: u64,
    /// Longest fsync, µs (uniform in between).
    pub max_fsync_us: u64,
    /// Probability that a crash keeps part of the unsynced writes (a prefix of them, so
    /// possibly a torn last write) instead of none.
    pub torn_write: f64,
}

impl Default for DiskModel {
    fn default() -> Self {
        DiskModel {
            min_fsync_us: 200,
            max_fsync_us: 2_000,
            torn_write: 0.5,
        }
    }
}

/// How long a killed node takes to be serving again once restarted, ms (uniform range):
/// the process start, the log replay, binding its ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartModel {
    /// Shortest restart, ms.
    pub min_ms: u64,
    /// Longest restart, ms.
    pub max_ms: u64,
}

impl Default for RestartModel {
    fn default() -> Self {
        RestartModel {
            min_ms: 20,
            max_ms: 200,
        }
    }
}

/// The environment model: everything about the simulated machines that is not a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Environment {
    /// The peer network.
    #[serde(default)]
    pub net: NetModel,
    /// Clocks.
    #[serde(default)]
    pub clocks: ClockModel,
    /// Disks.
    #[serde(default)]
    pub disk: DiskModel,
    /// Restarts after a kill.
    #[serde(default)]
    pub restart: RestartModel,
}

/// One simulated test, like `faultline test`'s plan: everything but the seed and the faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// kvnode engine: raft, multipaxos or nwr.
    pub engine: String,
    /// Further kvnode flags, parsed by kvnode's own parser (e.g. `--read unsafe-local`).
    pub kvnode_args: Vec<String>,
    /// Number of nodes, named `n1`..`nN`.
    pub nodes: usize,
    /// Workload.
    pub workload: Workload,
    /// Operation mix.
    pub mix: Mix,
    /// Client workers.
    pub concurrency: usize,
    /// Target total ops/s (0 = as fast as the clients can go).
    pub rate: f64,
    /// Length of the main phase (workload and faults), ms of simulated time.
    pub time_limit_ms: u64,
    /// Client-side deadline of one HTTP request, ms.
    pub op_timeout_ms: u64,
    /// Stop issuing after this many ops in total (shrinking uses it).
    #[serde(default)]
    pub max_ops: Option<u64>,
    /// Fault kinds a generated schedule cycles through.
    pub nemesis: Vec<FaultKind>,
    /// Partition shapes a generated schedule draws from.
    pub partition_shapes: Vec<PartitionShape>,
    /// Mean time between fault changes of a generated schedule, ms.
    pub nemesis_interval_ms: u64,
    /// Network, clocks, disks, restarts.
    #[serde(default)]
    pub environment: Environment,
}

impl SimConfig {
    /// The defaults of `faultline test` for `engine`: 5 nodes, register workload, 10
    /// clients at 100 ops/s, every fault kind every ~5 s, 30 s.
    pub fn new(engine: &str) -> SimConfig {
        SimConfig {
            engine: engine.to_string(),
            kvnode_args: Vec::new(),
            nodes: 5,
            workload: Workload::Register,
            mix: if engine == "nwr" {
                Mix { cas_percent: 0 }
            } else {
                Mix::default()
            },
            concurrency: 10,
            rate: 100.0,
            time_limit_ms: 30_000,
            op_timeout_ms: 2_000,
            max_ops: None,
            nemesis: FaultKind::ALL.to_vec(),
            partition_shapes: PartitionShape::ALL.to_vec(),
            nemesis_interval_ms: 5_000,
            environment: Environment::default(),
        }
    }

    /// Node ids `n1`..`nN`.
    pub fn node_ids(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("n{i}")).collect()
    }
}

/// Where a run's faults come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Faults {
    /// The seeded [`nemesis::Schedule`] of the config (the same generator `faultline test`
    /// uses), with symbolic targets resolved when a fault starts.
    Generated,
    /// Exactly these steps (a replay file, a shrunk counterexample, a real run's faults).
    Script(Vec<Step>),
}

/// Everything one run needs: the config, the seed, the faults.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The test.
    pub config: SimConfig,
    /// Seeds the workload, the schedule, the engines and the environment.
    pub seed: u64,
    /// The faults.
    pub faults: Faults,
}
