//! A suite run as data: what `suite.json` holds (one [`RunRecord`] per entry × seed, with the
//! figures a comparison needs), and the figures of one run taken from its typed analysis.
//!
//! `faultline suite` (the harness) runs the matrix and writes [`SuiteResult`]; this crate owns
//! the shape because the comparison page ([`crate::render_suite`]) and the trends page read
//! it back. Every figure comes from a run's `results.json` ([`Analysis`]); nothing here
//! re-checks a history.

use checkers::analysis::{Analysis, Check, Verdict};
use serde::{Deserialize, Serialize};

/// Version of the `suite.json` shape.
pub const SUITE_SCHEMA: u32 = 1;
/// The suite's typed results, in the suite directory.
pub const SUITE_JSON: &str = "suite.json";
/// The suite's JUnit report, in the suite directory.
pub const JUNIT_XML: &str = "junit.xml";

/// What an entry expects of every seed's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Every seed must pass (a safe variant: an invalid verdict is a false alarm).
    Valid,
    /// Every seed must find an anomaly (an unsafe variant: a valid verdict is a miss).
    Invalid,
    /// No expectation: the run is measured for comparison only.
    Report,
}

impl Expect {
    /// `valid`, `invalid`, `report`.
    pub fn name(self) -> &'static str {
        match self {
            Expect::Valid => "valid",
            Expect::Invalid => "invalid",
            Expect::Report => "report",
        }
    }
}

/// How a run's verdict compares with its entry's expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The verdict is the one expected.
    Held,
    /// The verdict contradicts the expectation (a miss or a false alarm).
    NotHeld,
    /// The checker could not decide, so the expectation could not be tested.
    Unknown,
    /// The run did not produce a verdict (the harness failed: see the run's log).
    Error,
    /// An entry with `expect = "report"` that produced a verdict.
    Reported,
}

impl Outcome {
    /// The outcome of `verdict` under `expect` (`None`: no verdict, the run failed).
    pub fn of(expect: Expect, verdict: Option<Verdict>) -> Outcome {
        match (expect, verdict) {
            (_, None) => Outcome::Error,
            (_, Some(Verdict::Unknown)) => Outcome::Unknown,
            (Expect::Report, Some(_)) => Outcome::Reported,
            (Expect::Valid, Some(Verdict::Valid)) | (Expect::Invalid, Some(Verdict::Invalid)) => {
                Outcome::Held
            }
            _ => Outcome::NotHeld,
        }
    }
}

/// Staleness figures of a quorum (NWR) run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Staleness {
    /// Stale reads / attributed reads.
    pub stale_fraction: f64,
    /// Largest number of versions a read was behind.
    pub max_k: u64,
    /// Smallest time after a write at which reads are fresh with probability ≥ 0.99, ms.
    pub t99_fresh_ms: Option<f64>,
    /// Acknowledged writes that final reads never returned.
    pub lost_writes: u64,
}

/// The figures of one checked run, all read from its [`Analysis`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    /// The verdict.
    pub verdict: Option<Verdict>,
    /// The kind of anomaly behind an invalid verdict (`stale read`, `not linearizable`, ...).
    pub anomaly: Option<String>,
    /// Seconds from the start of the history to the call of the first op that cannot be
    /// placed (the earliest culprit over every key's counterexample).
    pub first_anomaly_s: Option<f64>,
    /// The analysis's one-paragraph summary (for an invalid run, the counterexample's sentence).
    pub summary: String,
    /// Fraction of ops invoked during faults that completed ok.
    pub availability_during_faults: Option<f64>,
    /// Fraction of ops invoked outside faults that completed ok.
    pub availability_outside_faults: Option<f64>,
    /// Median latency of ok ops, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of ok ops, ms.
    pub p99_ms: Option<f64>,
    /// Ok ops per second over the history.
    pub ok_per_s: f64,
    /// Staleness, for quorum runs.
    pub staleness: Option<Staleness>,
}

impl RunFigures {
    /// The figures of an analysis.
    pub fn of(a: &Analysis) -> RunFigures {
        let anomaly = (a.verdict == Verdict::Invalid).then(|| {
            if let Some(v) = a.nwr.as_ref().and_then(|n| n.verdict_anomaly.as_ref()) {
                return v.name.clone();
            }
            match a.decided_by {
                Some(Check::Ghosts) => "ghost write".to_string(),
                Some(Check::CheckerError) => "checker error".to_string(),
                _ => "not linearizable".to_string(),
            }
        });
        let first = a
            .counterexamples
            .iter()
            .filter_map(|k| match k.culprit.and_then(|i| k.ops.get(i)) {
                Some(op) => Some(op.call),
                None => k.ops.iter().map(|o| o.call).min(),
            })
            .min();
        let lat = (a.latency.count > 0).then_some(&a.latency);
        let total = &a.stats.total;
        RunFigures {
            verdict: Some(a.verdict),
            anomaly,
            first_anomaly_s: first.map(|ns| ns as f64 / 1e9),
            summary: a.summary.clone(),
            availability_during_faults: a.availability.during_faults.ratio,
            availability_outside_faults: a.availability.outside_faults.ratio,
            p50_ms: lat.map(|l| l.p50_ms),
            p99_ms: lat.map(|l| l.p99_ms),
            ok_per_s: total.ok as f64 / (a.duration_ns.max(1) as f64 / 1e9),
            staleness: a.nwr.as_ref().map(|n| Staleness {
                stale_fraction: n.analysis.stale_fraction,
                max_k: n.analysis.max_k,
                t99_fresh_ms: n.analysis.t99_fresh_ms,
                lost_writes: n.analysis.lost_writes,
            }),
        }
    }
}

/// One entry of the suite as it was run (the row of the comparison page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryInfo {
    /// The entry's name, unique in the suite (the variant it measures).
    pub name: String,
    /// What the entry is for, in words.
    #[serde(default)]
    pub description: String,
    /// The `faultline test` flags of every seed (the suite's shared ones, then the entry's).
    pub args: Vec<String>,
    /// The expectation.
    pub expect: Expect,
    /// Seeds run.
    pub seeds: Vec<u64>,
}

/// One entry × seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The entry's name.
    pub entry: String,
    /// The seed.
    pub seed: u64,
    /// The entry's expectation.
    pub expect: Expect,
    /// The verdict against the expectation.
    pub outcome: Outcome,
    /// Figures from the run's analysis (verdict `None` when the run produced none).
    #[serde(flatten)]
    pub figures: RunFigures,
    /// The run directory, relative to the suite directory (`None` if none was created).
    pub run_dir: Option<String>,
    /// The run's output (stdout and stderr of `faultline test`), relative to the suite directory.
    pub log: String,
    /// Exit code of `faultline test` (`None`: killed by a signal or past its deadline).
    pub exit_code: Option<i32>,
    /// Wall-clock seconds the run took, start to results.
    pub wall_s: f64,
    /// The command that repeats this run.
    pub reproduce: String,
    /// Why there is no verdict, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The contents of `suite.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteResult {
    /// [`SUITE_SCHEMA`].
    pub schema: u32,
    /// The suite's name (its results subdirectory).
    pub name: String,
    /// The suite file it was read from.
    pub file: String,
    /// When it started (`YYYYMMDDTHHMMSSZ`, the suite directory's name).
    pub started: String,
    /// Wall-clock seconds, start to last result.
    pub wall_s: f64,
    /// Runs at a time.
    pub jobs: usize,
    /// The entries, in file order.
    pub entries: Vec<EntryInfo>,
    /// Every run, entry by entry, seeds in order.
    pub runs: Vec<RunRecord>,
    /// The exit code of `faultline suite` (0 held, 1 not held, 2 unknown, 255 harness failure).
    pub exit_code: u8,
}

impl SuiteResult {
    /// The runs of one entry.
    pub fn runs_of<'a>(&'a self, entry: &'a str) -> impl Iterator<Item = &'a RunRecord> + 'a {
        self.runs.iter().filter(move |r| r.entry == entry)
    }

    /// The suite's exit code from its runs: 255 if any run failed, else 1 if any expectation
    /// was contradicted, else 2 if any verdict was unknown, else 0.
    pub fn exit_code_of(runs: &[RunRecord]) -> u8 {
        let any = |o: Outcome| runs.iter().any(|r| r.outcome == o);
        if any(Outcome::Error) {
            255
        } else if any(Outcome::NotHeld) {
            1
        } else if any(Outcome::Unknown) {
            2
        } else {
            0
        }
    }

    /// Reads a `suite.json`.
    pub fn from_json(text: &str) -> Result<SuiteResult, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// Per-entry aggregates shown in one row of the comparison page and the trends page.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryStats {
    /// Runs with a verdict.
    pub runs: usize,
    /// Runs found invalid.
    pub invalid: usize,
    /// Seeds whose verdict contradicted the expectation.
    pub missed: Vec<u64>,
    /// Seeds with an unknown verdict or no verdict.
    pub undecided: Vec<u64>,
    /// Median seconds to the first anomaly, over invalid runs.
    pub first_anomaly_s: Option<f64>,
    /// Median availability during faults.
    pub availability_during_faults: Option<f64>,
    /// Median p50, ms.
    pub p50_ms: Option<f64>,
    /// Median p99, ms.
    pub p99_ms: Option<f64>,
    /// Median ok ops/s.
    pub ok_per_s: Option<f64>,
    /// Median stale-read fraction (quorum runs).
    pub stale_fraction: Option<f64>,
}

impl EntryStats {
    /// Aggregates the runs of one entry.
    pub fn of<'a>(runs: impl Iterator<Item = &'a RunRecord>) -> EntryStats {
        let runs: Vec<&RunRecord> = runs.collect();
        let with = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
            median(runs.iter().filter_map(|r| f(r)).collect())
        };
        EntryStats {
            runs: runs.iter().filter(|r| r.figures.verdict.is_some()).count(),
            invalid: runs
                .iter()
                .filter(|r| r.figures.verdict == Some(Verdict::Invalid))
                .count(),
            missed: runs
                .iter()
                .filter(|r| r.outcome == Outcome::NotHeld)
                .map(|r| r.seed)
                .collect(),
            undecided: runs
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Unknown | Outcome::Error))
                .map(|r| r.seed)
                .collect(),
            first_anomaly_s: with(&|r| r.figures.first_anomaly_s),
            availability_during_faults: with(&|r| r.figures.availability_during_faults),
            p50_ms: with(&|r| r.figures.p50_ms),
            p99_ms: with(&|r| r.figures.p99_ms),
            ok_per_s: with(&|r| (r.figures.verdict.is_some()).then_some(r.figures.ok_per_s)),
            stale_fraction: with(&|r| r.figures.staleness.as_ref().map(|s| s.stale_fraction)),
        }
    }

    /// Invalid runs / runs with a verdict (`None` without any).
    pub fn detection_rate(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.invalid as f64 / self.runs as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        use Verdict::*;
        assert_eq!(Outcome::of(Expect::Valid, Some(Valid)), Outcome::Held);
        assert_eq!(Outcome::of(Expect::Valid, Some(Invalid)), Outcome::NotHeld);
        assert_eq!(Outcome::of(Expect::Invalid, Some(Valid)), Outcome::NotHeld);
        assert_eq!(
            Outcome::of(Expect::Invalid, Some(Unknown)),
            Outcome::Unknown
        );
        assert_eq!(
            Outcome::of(Expect::Report, Some(Invalid)),
            Outcome::Reported
        );
        assert_eq!(Outcome::of(Expect::Report, None), Outcome::Error);
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN, 1.0]), Some(1.0));
    }
}
