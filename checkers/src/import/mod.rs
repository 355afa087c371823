//! Reading histories written by others: Jepsen EDN and Porcupine's etcd logs, next to our own
//! JSONL. Every importer produces a [`History`] of [`crate::history::Event`]s with the line
//! each came from, so errors and pairing can name lines.

pub mod edn;
pub mod porcupine;

use crate::history::{parse_jsonl, History, HistoryError};
use serde::{Deserialize, Serialize};

/// A history file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// faultline's `history.jsonl`.
    Jsonl,
    /// Jepsen EDN: a vector or list of op maps, or one map per line.
    Edn,
    /// Porcupine's Jepsen etcd log (`INFO  jepsen.util - 2 :invoke :cas [3 0]`).
    Porcupine,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "edn" | "jepsen" => Ok(Format::Edn),
            "porcupine" | "etcd" | "log" => Ok(Format::Porcupine),
            _ => Err(format!(
                "unknown format {s:?} (expected jsonl, edn or porcupine)"
            )),
        }
    }
}

/// Guesses the format from the first meaningful line: `{"` → JSONL, `{:`, `[` or `(` → EDN,
/// a `jepsen.util` log line → Porcupine. `None` if nothing matches (or the text is empty).
pub fn detect(text: &str) -> Option<Format> {
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with(';') {
            continue;
        }
        if t.contains("jepsen.util") {
            return Some(Format::Porcupine);
        }
        if let Some(rest) = t.strip_prefix('{') {
            let rest = rest.trim_start();
            if rest.starts_with('"') || rest.starts_with('}') {
                return Some(Format::Jsonl);
            }
            return Some(Format::Edn);
        }
        if t.starts_with('[') || t.starts_with('(') {
            return Some(Format::Edn);
        }
        return None;
    }
    None
}

/// Parses a history in `format`, or the detected one when `format` is `None`.
pub fn parse(text: &str, format: Option<Format>) -> Result<History, HistoryError> {
    let format = match format.or_else(|| detect(text)) {
        Some(f) => f,
        None => {
            let line = text
                .lines()
                .position(|l| !l.trim().is_empty())
                .map_or(1, |p| p + 1);
            return Err(HistoryError::Syntax {
                line,
                message: if text.trim().is_empty() {
                    "empty history".into()
                } else {
                    "cannot detect the format (expected JSONL, Jepsen EDN or a Porcupine log); use --format".into()
                },
            });
        }
    };
    match format {
        Format::Jsonl => parse_jsonl(text),
        Format::Edn => edn::parse(text),
        Format::Porcupine => porcupine::parse(text),
    }
}
