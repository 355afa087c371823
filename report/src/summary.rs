//! Key figures of one run, taken from its analysis and stored as `report-summary.json`, so
//! `serve` and `compare` list many runs without reading every history or results file.

use std::path::Path;

use checkers::analysis::{Analysis, Verdict};
use checkers::layout;
use serde::{Deserialize, Serialize};

use crate::run::Run;

/// Key figures of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunSummary {
    /// Test name (`test.json` `name`, else the parent directory's name).
    pub name: String,
    /// The run's directory name, normally its start timestamp.
    pub timestamp: String,
    /// The verdict; `None` when the run was not checked.
    pub verdict: Option<Verdict>,
    /// Why, in one paragraph (the analysis's summary).
    #[serde(default)]
    pub why: String,
    /// Client operations invoked.
    pub ops: u64,
    /// Operations that completed ok.
    pub ok: u64,
    /// Operations that definitely failed.
    pub fail: u64,
    /// Operations with unknown outcome (including never completed).
    pub info: u64,
    /// Duration of the history, ns.
    pub duration_ns: u64,
    /// Ok operations per second over the whole run.
    pub ok_per_s: f64,
    /// Median latency of ok operations, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of ok operations, ms.
    pub p99_ms: Option<f64>,
    /// Maximum latency of ok operations, ms.
    pub max_ms: Option<f64>,
    /// Faults applied (failed attempts not counted).
    pub faults: usize,
    /// Fraction of operations completed ok while some fault was active.
    pub availability_during_faults: Option<f64>,
    /// Fraction of operations completed ok outside fault windows.
    pub availability_outside_faults: Option<f64>,
}

impl RunSummary {
    /// The figures of a loaded run (all from its analysis; a run never checked has none).
    pub fn of(run: &Run) -> RunSummary {
        let name = run
            .test
            .as_ref()
            .and_then(|t| t.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_owned);
        RunSummary::from_analysis(&run.dir, name, run.analysis.as_ref())
    }

    /// The figures of an analysis, named after the run directory.
    pub fn from_analysis(dir: &Path, name: Option<String>, a: Option<&Analysis>) -> RunSummary {
        let name = name
            .or_else(|| {
                dir.parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "run".into());
        let timestamp = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(a) = a else {
            return RunSummary {
                name,
                timestamp,
                ..RunSummary::default()
            };
        };
        let t = &a.stats.total;
        let lat = (a.latency.count > 0).then_some(&a.latency);
        RunSummary {
            name,
            timestamp,
            verdict: Some(a.verdict),
            why: a.summary.clone(),
            ops: t.invoked,
            ok: t.ok,
            fail: t.fail,
            info: t.info,
            duration_ns: a.duration_ns,
            ok_per_s: t.ok as f64 / (a.duration_ns.max(1) as f64 / 1e9),
            p50_ms: lat.map(|l| l.p50_ms),
            p99_ms: lat.map(|l| l.p99_ms),
            max_ms: lat.map(|l| l.max_ms),
            faults: a.faults.iter().filter(|f| f.failed.is_none()).count(),
            availability_during_faults: a.availability.during_faults.ratio,
            availability_outside_faults: a.availability.outside_faults.ratio,
        }
    }

    /// Reads the stored summary of a run directory, if it was rendered by this version.
    pub fn load(dir: &Path) -> Option<RunSummary> {
        let bytes = std::fs::read(dir.join(layout::REPORT_SUMMARY)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
