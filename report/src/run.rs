//! A run as the renderers see it: the checkers' typed [`Analysis`] (`results.json`) and the
//! history paired once by the checkers ([`Observed`]), plus `test.json` shown as a config table.
//!
//! The report draws and never judges: the verdict, counts, latency, availability, faults,
//! cluster timeline and counterexamples all come from the analysis; the history is read with
//! the checkers' own reader and paired with their pairing, only to draw every operation.

use std::path::{Path, PathBuf};

use checkers::analysis::{Analysis, Observed, Verdict};
use checkers::history::Operation;
use checkers::layout::{self, RunDir};
use serde_json::Value;

use crate::ReportError;

/// Everything the renderers need from one run directory.
#[derive(Debug)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// `test.json`, if present: shown as a table, never interpreted beyond its `name`.
    pub test: Option<Value>,
    /// `results.json`, if present (`None`: the run was never checked).
    pub analysis: Option<Analysis>,
    /// The history, paired by the checkers.
    pub observed: Observed,
    /// Function names in a fixed order (read, write, cas, then the rest by name), so a
    /// function keeps its colour and marker from run to run.
    pub fs: Vec<String>,
    /// The history's last line was cut off mid-write (a crashed harness) and was ignored.
    pub truncated: Option<usize>,
}

/// The fixed drawing order of function names.
pub fn f_order(ops: &[Operation]) -> Vec<String> {
    const KNOWN: [&str; 7] = ["read", "get", "write", "put", "cas", "append", "r"];
    let mut fs: Vec<String> = ops.iter().map(|o| o.f.clone()).collect();
    fs.sort_by_key(|f| {
        (
            KNOWN.iter().position(|k| k == f).unwrap_or(KNOWN.len()),
            f.clone(),
        )
    });
    fs.dedup();
    fs
}

fn read_test(dir: &Path) -> Result<Option<Value>, ReportError> {
    let path = dir.join(layout::TEST);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ReportError::Json { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReportError::io(&path, e)),
    }
}

/// A run directory's `results.json`, `None` when it has none.
pub fn read_analysis(rd: &RunDir) -> Result<Option<Analysis>, ReportError> {
    match std::fs::read_to_string(rd.results()) {
        Ok(text) => Analysis::from_json(&text)
            .map(Some)
            .map_err(|source| ReportError::Json {
                path: rd.results(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReportError::io(rd.results(), e)),
    }
}

impl Run {
    /// Loads a run directory: `history.jsonl` (required), `test.json` and `results.json`
    /// (optional).
    pub fn load(dir: &Path) -> Result<Run, ReportError> {
        let rd = RunDir::new(dir);
        let history_path = rd.history();
        let file = match std::fs::File::open(&history_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReportError::NoHistory(dir.to_owned()))
            }
            Err(e) => return Err(ReportError::io(&history_path, e)),
        };
        let (history, truncated) =
            checkers::analysis::read_jsonl(std::io::BufReader::with_capacity(1 << 16, file))
                .map_err(|e| ReportError::history(&history_path, e))?;
        let observed =
            Observed::from_history(&history).map_err(|e| ReportError::history(&history_path, e))?;
        let analysis = read_analysis(&rd)?;
        let mut run = Run::new(dir, read_test(dir)?, analysis, observed);
        run.truncated = truncated.map(|t| t.line());
        Ok(run)
    }

    /// A run from an analysis and a paired history already in memory (`faultline test` and
    /// `analyze` render what they just computed); `test.json` is read from `dir` if there.
    pub fn from_parts(
        dir: &Path,
        analysis: Analysis,
        observed: Observed,
    ) -> Result<Run, ReportError> {
        Ok(Run::new(dir, read_test(dir)?, Some(analysis), observed))
    }

    /// A run from its parts.
    pub fn new(
        dir: &Path,
        test: Option<Value>,
        analysis: Option<Analysis>,
        observed: Observed,
    ) -> Run {
        Run {
            dir: dir.to_owned(),
            test,
            fs: f_order(&observed.ops),
            analysis,
            observed,
            truncated: None,
        }
    }

    /// The verdict, `None` when the run was not checked.
    pub fn verdict(&self) -> Option<Verdict> {
        self.analysis.as_ref().map(|a| a.verdict)
    }

    /// The end of the test in ns (at least 1 ns so axes are never empty).
    pub fn end_time(&self) -> u64 {
        self.observed.end.max(1)
    }

    /// Index of an op's function in [`Run::fs`].
    pub fn f_index(&self, f: &str) -> usize {
        self.fs.iter().position(|x| x == f).unwrap_or(0)
    }
}

/// A verdict word for banners and listings; `None` = not checked.
pub fn verdict_label(v: Option<Verdict>) -> &'static str {
    v.map_or("not checked", Verdict::name)
}

/// The CSS class of a verdict.
pub fn verdict_css(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Valid) => "valid",
        Some(Verdict::Invalid) => "invalid",
        Some(Verdict::Unknown) => "unknown",
        None => "none",
    }
}
