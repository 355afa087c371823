//! Reading histories written by others: Jepsen EDN and Porcupine's etcd logs, next to our own
//! JSONL. Every importer produces a [`History`] of [`crate::history::Event`]s with the line
//! each came from, so errors and pairing can name lines.

pub mod edn;
pub mod porcupine;

use crate::history::{parse_jsonl, History, HistoryError};
use serde::{Deserialize, Serialize};
use std::io::Read;

/// The longest line faultline reads, bytes: far beyond any op (Porcupine's longest kv lines are
/// a few KiB), small enough that a file with no newline (`/dev/zero`) stops at once.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// Limits on reading a history, so that no input can exhaust memory before the check begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The longest line, bytes.
    pub max_line: usize,
    /// The most bytes in all.
    pub max_bytes: usize,
}

/// Why [`read_text`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A line is longer than the limit: reading stopped there.
    #[error("line {line}: longer than {max} bytes, the longest line faultline reads (is this a history file?)")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// The input is larger than the limit: reading stopped at `line`.
    #[error("line {line}: the history is larger than {}, the most its memory cap lets faultline read", crate::linearizable::show_bytes(*max))]
    TooLarge {
        /// 1-based line reached.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// The input is not UTF-8 text.
    #[error("line {line}: not UTF-8 text")]
    NotUtf8 {
        /// 1-based line of the first bad byte.
        line: usize,
    },
    /// The reader failed.
    #[error("line {line}: read error: {source}")]
    Io {
        /// 1-based line being read.
        line: usize,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ReadError {
    /// The 1-based line reading stopped on.
    pub fn line(&self) -> usize {
        match self {
            ReadError::LineTooLong { line, .. }
            | ReadError::TooLarge { line, .. }
            | ReadError::NotUtf8 { line }
            | ReadError::Io { line, .. } => *line,
        }
    }
}

/// Reads a whole history as text within `limits`, stopping at the first line that is too
/// long or when the total is too large (so `/dev/zero` or a binary file ends in milliseconds).
pub fn read_text(mut input: impl Read, limits: ReadLimits) -> Result<String, ReadError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut line = 1usize;
    let mut line_len = 0usize;
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(ReadError::Io { line, source }),
        };
        for &b in &chunk[..n] {
            if b == b'\n' {
                line += 1;
                line_len = 0;
            } else {
                line_len += 1;
                if line_len > limits.max_line {
                    return Err(ReadError::LineTooLong {
                        line,
                        max: limits.max_line,
                    });
                }
            }
        }
        if buf.len() + n > limits.max_bytes {
            return Err(ReadError::TooLarge {
                line,
                max: limits.max_bytes,
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ReadError::NotUtf8 {
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })
}

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
