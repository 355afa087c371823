//! Turns a finished run into plots, HTML pages and comparisons; it renders the checkers'
//! analysis, never re-checks, re-pairs or recounts.
//!
//! The entry point is [`render_run`]: given a run directory (DESIGN.md, "Reports"; file names
//! in `checkers::layout`) holding `history.jsonl`, and usually `test.json` and `results.json`
//! (a typed `checkers::analysis::Analysis`), it writes `latency-raw.png`,
//! `latency-quantiles.png`, `rate.png`, `timeline.html`, `linearizability.html` (when a key
//! is not linearizable), `nwr-staleness.png` (quorum runs) and `index.html`. The history is
//! read with the checkers' reader and paired with their pairing (`Observed`), only to draw
//! every operation; verdicts, figures, faults, the cluster timeline and the counterexamples are
//! fields of the analysis.
//!
//! Key design decision: everything is drawn by this crate, without gnuplot, system fonts or
//! JavaScript libraries. Plots use plotters' bitmap backend with an embedded DejaVu Sans font;
//! pages are self-contained HTML, and the timeline draws 100,000 operations on a canvas from
//! compact embedded data instead of one DOM element per operation.
//!
//! # Layout
//! - `run`: a run as the renderers see it (analysis, paired history, config).
//! - `plots`: the three PNG plots with the cluster-state strip.
//! - `timeline`, `counterexample`, `index`, `listing`, `compare`: the HTML pages.
//! - `txn`, `cycle`: the transactions section and the drawing of an Elle anomaly's cycle.
//! - `summary`: key figures of a run, stored for the listing and comparisons.
//! - `suite`, `suite_page`, `trends`: what `suite.json` holds, the suite's comparison page,
//!   and suites across stored runs (listing section, trends page).

mod compare;
mod counterexample;
pub mod cycle;
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
pub mod suite;
mod suite_page;
mod summary;
mod timeline;
mod trends;
mod txn;

use std::path::{Path, PathBuf};

use checkers::layout;

pub use compare::render_compare;
pub use counterexample::{render_check_page, render_counterexample_html};
pub use error::ReportError;
pub use listing::{find_runs, render_listing};
pub use run::{verdict_label, Run};
pub use suite_page::render_suite;
pub use summary::RunSummary;
pub use timeline::key_anchor;
pub use trends::{find_suites, render_trends, suites_section};

/// What [`render_run`] wrote.
#[derive(Debug, Clone)]
pub struct RenderSummary {
    /// The verdict of the analysis; `None` when the run was not checked.
    pub verdict: Option<checkers::analysis::Verdict>,
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
            .find(|p| p.file_name().is_some_and(|n| n == layout::INDEX))
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
/// verdict is "not checked"). Plots are drawn in parallel.
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
        .analysis
        .as_ref()
        .filter(|a| !a.counterexamples.is_empty());
    let (plots, pages) = std::thread::scope(|s| {
        let raw = s.spawn(|| {
            let p = dir.join(layout::LATENCY_RAW);
            plots::latency_raw(run, &p).map(|axis| (p, axis))
        });
        let quant = s.spawn(|| {
            let p = dir.join(layout::LATENCY_QUANTILES);
            plots::latency_quantiles(run, &p).map(|axis| (p, axis))
        });
        let pages = (|| -> Result<(Vec<PathBuf>, plots::Axis), ReportError> {
            let mut files = Vec::new();
            files.push(write(
                dir.join(layout::TIMELINE),
                timeline::render(run, &title),
            )?);
            if let Some(a) = cx {
                files.push(write(
                    dir.join(layout::COUNTEREXAMPLE),
                    render_counterexample_html(a, &run.observed, &title),
                )?);
            }
            let p = dir.join(layout::RATE);
            let axis = plots::rate(run, &p)?;
            files.push(p);
            if let Some(n) = run.analysis.as_ref().and_then(|a| a.nwr.as_ref()) {
                let p = dir.join(layout::NWR_STALENESS);
                nwr::render_nwr_staleness(&n.analysis, None, &p)?;
                files.push(p);
            }
            Ok((files, axis))
        })();
        let join =
            |h: std::thread::ScopedJoinHandle<'_, Result<(PathBuf, plots::Axis), ReportError>>| {
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
        files.push(p?.0);
    }
    let (pages, axis) = pages?;
    files.extend(pages);
    let artifacts = index::Artifacts {
        counterexample: cx.is_some(),
        axis: Some(axis),
    };
    files.push(write(
        dir.join(layout::REPORT_SUMMARY),
        serde_json::to_vec_pretty(&summary).unwrap_or_default(),
    )?);
    files.push(write(
        dir.join(layout::INDEX),
        index::render(run, &summary, &artifacts),
    )?);
    Ok(RenderSummary {
        verdict: run.verdict(),
        files,
        summary,
    })
}
