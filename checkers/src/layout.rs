//! The run directory: the one place that names the files of a run.
//!
//! `results/<test>/<timestamp>/` holds what the harness recorded (`test.json`,
//! `history.jsonl`, `cluster.json`, node logs), what the checkers concluded (`results.json`,
//! an [`crate::analysis::Analysis`]) and what the report drew (`index.html`, plots, pages).
//! Writers and readers in every crate take the names from here, so a rename is one edit and a
//! page never links to a file nobody writes. Only names and paths: no I/O happens here.

use std::path::{Path, PathBuf};

/// The resolved test plan, enough to repeat the run.
pub const TEST: &str = "test.json";
/// The history, one event per line.
pub const HISTORY: &str = "history.jsonl";
/// The checkers' typed analysis ([`crate::analysis::Analysis`]).
pub const RESULTS: &str = "results.json";
/// Node ids, addresses and pids of the cluster the run started.
pub const CLUSTER: &str = "cluster.json";
/// The run's overview page.
pub const INDEX: &str = "index.html";
/// Every operation on its process's row over time.
pub const TIMELINE: &str = "timeline.html";
/// The counterexample page, written when the history is not linearizable.
pub const COUNTEREXAMPLE: &str = "linearizability.html";
/// Latency of every operation.
pub const LATENCY_RAW: &str = "latency-raw.png";
/// Latency quantiles over time.
pub const LATENCY_QUANTILES: &str = "latency-quantiles.png";
/// Throughput over time.
pub const RATE: &str = "rate.png";
/// Measured staleness against the PBS prediction (quorum runs).
pub const NWR_STALENESS: &str = "nwr-staleness.png";
/// Key figures the report stores so listings need not read every history.
pub const REPORT_SUMMARY: &str = "report-summary.json";
/// The results directory's link to the newest run.
pub const LATEST: &str = "latest";

/// A run directory, with one accessor per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir(PathBuf);

impl RunDir {
    /// The run directory at `path` (nothing is checked or created).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir(path.into())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A file of this run by its name (one of this module's constants).
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `test.json`.
    pub fn test(&self) -> PathBuf {
        self.file(TEST)
    }

    /// `history.jsonl`.
    pub fn history(&self) -> PathBuf {
        self.file(HISTORY)
    }

    /// `results.json`.
    pub fn results(&self) -> PathBuf {
        self.file(RESULTS)
    }

    /// `cluster.json`.
    pub fn cluster(&self) -> PathBuf {
        self.file(CLUSTER)
    }

    /// `index.html`.
    pub fn index(&self) -> PathBuf {
        self.file(INDEX)
    }
}

impl AsRef<Path> for RunDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}
