//! Turns a finished run into plots, HTML pages and comparisons; it renders verdicts, never re-checks.
//!
//! The entry point is [`render_run`]: given a run directory (DESIGN.md, "Reports") holding
//! `history.jsonl`, and usually `test.json` and `results.json`, it writes
//! `latency-raw.png`, `latency-quantiles.png`, `rate.png`, `timeline.html`,
//! `linearizability.html` (when the checker found the history illegal), `nwr-staleness.png`
//! (when results.json holds an NWR staleness analysis) and `index.html`.
//!
//! Key design decision: everything is drawn by this crate, without gnuplot, system fonts or
//! JavaScript libraries. Plots use plotters' bitmap backend with an embedded DejaVu Sans font;
//! pages are self-contained HTML, and the timeline draws 100,000 operations on a canvas from
//! compact embedded data instead of one DOM element per operation.
//!
//! # Layout
//! - `run`: loads a run directory (pairs invoke/complete only to draw intervals).
//! - `plots`: the three PNG plots, fault windows shaded.
//! - `timeline`, `counterexample`, `index`, `listing`, `compare`: the HTML pages.
//! - `summary`: key figures of a run, stored for the listing and comparisons.

mod compare;
mod counterexample;
mod error;
mod ghost;
mod html;
mod index;
pub mod inspect;
mod listing;
pub mod nwr;
mod plots;
mod run;
pub mod sample;
mod style;
mod summary;
mod timeline;

use std::path::{Path, PathBuf};

pub use compare::render_compare;
pub use counterexample::{
    counterexample_from_json, explain, render_check_html, render_check_html_with_events,
    render_check_page, render_counterexample_html, Counterexample, CxOp,
};
pub use error::ReportError;
pub use listing::{find_runs, render_listing};
pub use run::{FaultWindow, Op, Outcome, Run, Verdict};
pub use summary::{RunSummary, SUMMARY_FILE};

/// What [`render_run`] wrote.
#[derive(Debug, Clone)]
pub struct RenderSummary {
    /// The verdict read from `results.json`.
    pub verdict: Verdict,
    /// Every file written, in the run directory.
    pub files: Vec<PathBuf>,
    /// Key figures of the run (also stored as `report-summary.json`).
    pub summary: RunSummary,
}

impl RenderSummary {
    /// The run's `index.html`.
    pub fn index(&self) -> Option<&Path> {
        self.files
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == "index.html"))
            .map(PathBuf::as_path)
    }
}

fn write(path: PathBuf, contents: impl AsRef<[u8]>) -> Result<PathBuf, ReportError> {
    std::fs::write(&path, contents).map_err(|e| ReportError::io(&path, e))?;
    Ok(path)
}

/// Renders every artifact of a run directory and returns what was written.
///
/// Needs `history.jsonl`; `test.json` and `results.json` are optional (without results the
/// verdict is "not checked"). The counterexample page is written when `results.json` holds an
/// illegal linearizability result with a counterexample. Plots are drawn in parallel.
pub fn render_run(run_dir: &Path) -> Result<RenderSummary, ReportError> {
    let run = Run::load(run_dir)?;
    render_loaded(&run)
}

/// Renders every artifact of a run that is already loaded (see [`render_run`]).
pub fn render_loaded(run: &Run) -> Result<RenderSummary, ReportError> {
    let dir = &run.dir;
    let summary = RunSummary::of(run);
    let title = format!("{} {}", summary.name, summary.timestamp);
    let cx = run
        .results
        .as_ref()
        .and_then(|r| counterexample::counterexample_from_json(r, Some(run)));
    let (plots, pages) = std::thread::scope(|s| {
        let raw = s.spawn(|| {
            let p = dir.join("latency-raw.png");
            plots::latency_raw(run, &p).map(|_| p)
        });
        let quant = s.spawn(|| {
            let p = dir.join("latency-quantiles.png");
            plots::latency_quantiles(run, &p).map(|_| p)
        });
        let pages = (|| -> Result<Vec<PathBuf>, ReportError> {
            let mut files = Vec::new();
            files.push(write(
                dir.join("timeline.html"),
                timeline::render(run, &title),
            )?);
            if let Some(cx) = &cx {
                files.push(write(
                    dir.join("linearizability.html"),
                    render_counterexample_html(cx, &title),
                )?);
            }
            let p = dir.join("rate.png");
            plots::rate(run, &p)?;
            files.push(p);
            // Quorum runs: the staleness analysis stored under `nwr` in results.json.
            let nwr = run
                .results
                .as_ref()
                .and_then(|r| r.get("nwr"))
                .and_then(|v| serde_json::from_value::<checkers::nwr::NwrAnalysis>(v.clone()).ok());
            if let Some(a) = nwr {
                let p = dir.join("nwr-staleness.png");
                nwr::render_nwr_staleness(&a, None, &p)?;
                files.push(p);
            }
            Ok(files)
        })();
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<PathBuf, ReportError>>| {
            h.join().unwrap_or_else(|_| {
                Err(ReportError::Plot {
                    path: dir.clone(),
                    message: "the plotting thread panicked".into(),
                })
            })
        };
        (vec![join(raw), join(quant)], pages)
    });
    let mut files = Vec::new();
    for p in plots {
        files.push(p?);
    }
    files.extend(pages?);
    let artifacts = index::Artifacts {
        counterexample: cx.is_some(),
    };
    files.push(write(
        dir.join(SUMMARY_FILE),
        serde_json::to_vec_pretty(&summary).unwrap_or_default(),
    )?);
    files.push(write(
        dir.join("index.html"),
        index::render(run, &summary, &artifacts),
    )?);
    Ok(RenderSummary {
        verdict: Verdict::from_results(run.results.as_ref()),
        files,
        summary,
    })
}
