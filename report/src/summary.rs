//! Key figures of one run (counts, latency, throughput, verdict), computed once from the
//! history and stored as `report-summary.json`, so `serve` and `compare` list many runs
//! without re-reading every history.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::run::{Outcome, Run, Verdict};

/// Key figures of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunSummary {
    /// Test name (`test.json` `name`, else the parent directory's name).
    pub name: String,
    /// The run's directory name, normally its start timestamp.
    pub timestamp: String,
    /// `valid`, `invalid`, `unknown` or `not checked`.
    pub verdict: String,
    /// Client operations invoked.
    pub ops: usize,
    /// Operations that completed ok.
    pub ok: usize,
    /// Operations that definitely failed.
    pub fail: usize,
    /// Operations with unknown outcome (including never completed).
    pub info: usize,
    /// Duration of the history, ns.
    pub duration_ns: u64,
    /// Ok operations per second over the whole run.
    pub ok_per_s: f64,
    /// Median latency of ok operations, ns.
    pub p50_ns: Option<u64>,
    /// 99th percentile latency of ok operations, ns.
    pub p99_ns: Option<u64>,
    /// Maximum latency of ok operations, ns.
    pub max_ns: Option<u64>,
    /// Fault windows applied.
    pub faults: usize,
    /// Fraction of operations completed ok while some fault was active (`None` without faults).
    pub availability_during_faults: Option<f64>,
    /// Fraction of operations completed ok outside fault windows.
    pub availability_outside_faults: Option<f64>,
}

/// File name of the stored summary inside a run directory.
pub const SUMMARY_FILE: &str = "report-summary.json";

impl RunSummary {
    /// Computes the summary of a loaded run.
    pub fn of(run: &Run) -> RunSummary {
        let name = run
            .test
            .as_ref()
            .and_then(|t| t.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_owned)
            .or_else(|| {
                run.dir
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "run".into());
        let timestamp = run
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let count = |o| run.ops.iter().filter(|op| op.outcome == o).count();
        let mut lats: Vec<u64> = run
            .ops
            .iter()
            .filter(|op| op.outcome == Outcome::Ok)
            .filter_map(|op| op.latency())
            .collect();
        lats.sort_unstable();
        let q = |q: f64| {
            (!lats.is_empty()).then(|| lats[((lats.len() - 1) as f64 * q).round() as usize])
        };
        let ok = count(Outcome::Ok);
        let in_fault = |t: u64| {
            run.faults
                .iter()
                .any(|w| w.start <= t && t <= w.stop.unwrap_or(u64::MAX))
        };
        let (mut inside, mut inside_ok, mut outside, mut outside_ok) = (0usize, 0, 0usize, 0);
        if !run.faults.is_empty() {
            for op in &run.ops {
                let okd = (op.outcome == Outcome::Ok) as usize;
                if in_fault(op.invoke) {
                    inside += 1;
                    inside_ok += okd;
                } else {
                    outside += 1;
                    outside_ok += okd;
                }
            }
        }
        let frac = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
        RunSummary {
            name,
            timestamp,
            verdict: Verdict::from_results(run.results.as_ref())
                .label()
                .to_owned(),
            ops: run.ops.len(),
            ok,
            fail: count(Outcome::Fail),
            info: count(Outcome::Info),
            duration_ns: run.end,
            ok_per_s: ok as f64 / (run.end_time() as f64 / 1e9),
            p50_ns: q(0.5),
            p99_ns: q(0.99),
            max_ns: q(1.0),
            faults: run.faults.len(),
            availability_during_faults: frac(inside_ok, inside),
            availability_outside_faults: frac(outside_ok, outside),
        }
    }

    /// Reads the stored summary of a run directory, if it was rendered.
    pub fn load(dir: &Path) -> Option<RunSummary> {
        let bytes = std::fs::read(dir.join(SUMMARY_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The verdict as an enum.
    pub fn verdict(&self) -> Verdict {
        match self.verdict.as_str() {
            "valid" => Verdict::Valid,
            "invalid" => Verdict::Invalid,
            "unknown" => Verdict::Unknown,
            _ => Verdict::NotChecked,
        }
    }
}
