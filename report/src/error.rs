//! The report's error type: what can go wrong turning a run directory into pages and plots.
//!
//! Rendering problems are reported with the file they concern, so that `faultline report`
//! can print one sentence a person can act on. A malformed history line names its line.

use std::path::PathBuf;

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file of the run directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A line of `history.jsonl` is not a valid event, or the history cannot be paired.
    #[error("{path}:{line}: {message}")]
    History {
        /// The history file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        message: String,
    },
    /// `test.json` or `results.json` is not valid JSON or not the expected shape.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// The run directory has no history to draw.
    #[error("{0}: no history.jsonl in this run directory")]
    NoHistory(PathBuf),
    /// Drawing a plot failed (the plotting backend's message).
    #[error("{path}: drawing the plot failed: {message}")]
    Plot {
        /// The image being drawn.
        path: PathBuf,
        /// The backend's message.
        message: String,
    },
}

impl ReportError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }

    /// A history problem, with the line the checkers' reader named.
    pub(crate) fn history(path: &std::path::Path, e: checkers::history::HistoryError) -> Self {
        let line = e.line();
        let message = e.to_string();
        let message = match message.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") => rest.to_string(),
            _ => message,
        };
        ReportError::History {
            path: path.to_owned(),
            line,
            message,
        }
    }
}
