//! Porcupine's Jepsen etcd logs (`test_data/jepsen/etcd_NNN.log`): one event per line,
//! `INFO  jepsen.util - PROCESS TYPE F VALUE`, fields separated by tabs or spaces.
//!
//! Semantics follow Porcupine's own parser (`parseJepsenLog`) so its expected verdicts hold:
//! `:fail :cas` means the cas ran and found another value (it becomes an `ok` cas completing
//! with `false`, see `models/register.rs`), `:fail :read` (timed out) constrains nothing and
//! is dropped, `:info` leaves the op open forever. Event time is the line number.

use crate::history::exact::check_number;
use crate::history::{Event, EventType, History, HistoryError, Process};
use serde_json::Value;

fn value(tok: &str, line: usize) -> Result<Value, HistoryError> {
    let tok = tok.trim();
    if tok == "nil" {
        return Ok(Value::Null);
    }
    if let Some(k) = tok.strip_prefix(':') {
        return Ok(Value::String(k.to_string()));
    }
    if let Some(inner) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let items: Result<Vec<Value>, _> =
            inner.split_whitespace().map(|t| value(t, line)).collect();
        return Ok(Value::Array(items?));
    }
    let bad = |message: String| HistoryError::Syntax { line, message };
    let digits = tok.strip_prefix('-').unwrap_or(tok);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!(
            "bad value {tok:?} (expected nil, an integer, [a b] or :keyword)"
        )));
    }
    // Exact, or refused naming the line: never rounded through a float.
    check_number(tok).map_err(bad)?;
    match tok.parse::<i64>() {
        Ok(i) => Ok(Value::from(i)),
        Err(_) => tok
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| bad(format!("bad value {tok:?}"))),
    }
}

/// Parses a whole Porcupine etcd log. Blank lines are skipped; any other line that is not a
/// `jepsen.util` event is an error naming it.
pub fn parse(text: &str) -> Result<History, HistoryError> {
    let mut h = History::default();
    let mut index = 0u64;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let bad = |m: &str| HistoryError::Syntax {
            line,
            message: m.to_string(),
        };
        let rest = raw
            .split_once("jepsen.util")
            .map(|(_, r)| r.trim_start())
            .and_then(|r| r.strip_prefix('-'))
            .ok_or_else(|| bad("not a jepsen.util log line"))?;
        let mut toks = rest.split_whitespace();
        let proc_tok = toks.next().ok_or_else(|| bad("missing process"))?;
        let process: u64 = proc_tok
            .parse()
            .map_err(|_| bad(&format!("bad process {proc_tok:?}")))?;
        let kind = match toks.next() {
            Some(":invoke") => EventType::Invoke,
            Some(":ok") => EventType::Ok,
            Some(":fail") => EventType::Fail,
            Some(":info") => EventType::Info,
            Some(t) => return Err(bad(&format!("unknown type {t:?}"))),
            None => return Err(bad("missing type")),
        };
        let f = toks.next().ok_or_else(|| bad("missing function"))?;
        let f = f.strip_prefix(':').unwrap_or(f).to_string();
        let rest: Vec<&str> = toks.collect();
        let mut v = value(&rest.join(" "), line)?;
        let mut kind = kind;
        if kind == EventType::Fail && f == "cas" {
            // Porcupine: a failed cas ran and saw another value.
            kind = EventType::Ok;
            v = Value::Bool(false);
        }
        h.push(
            line,
            Event {
                index,
                time: line as u64,
                process: Process::Client(process),
                kind,
                f,
                key: None,
                value: v,
                node: None,
                error: None,
            },
        );
        index += 1;
    }
    Ok(h)
}
