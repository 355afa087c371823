//! Transactions as typed data: the history shape of the `txn` workloads (list-append,
//! rw-register), parsed once into [`Txn`]s, plus the verdict vocabulary shared by the
//! workload checkers ([`crate::elle`], [`crate::bank`], [`crate::set`], [`crate::counter`]).
//!
//! # History shape (the contract with the harness and the workloads)
//!
//! A transaction is an ordinary [`Event`] with `f: "txn"` whose `value` is a JSON list of
//! micro-ops, each a three-element list `[f, key, value]`:
//!
//! ```text
//! {"type":"invoke","f":"txn","value":[["append","x",3],["r","y",null],["w","z",7]], ...}
//! {"type":"ok",    "f":"txn","value":[["append","x",3],["r","y",[1,2,3]],["w","z",7]], ...}
//! ```
//!
//! - `["append", k, v]`: append integer `v` to the list at `k` (list-append). Appended values
//!   are unique per key across the whole history.
//! - `["w", k, v]`: set register `k` to integer `v` (rw-register). Written values are unique
//!   per key.
//! - `["r", k, null]` on invoke; on `ok` the value read: the whole list for list-append
//!   (`null` = the empty list), the integer or `null` (never written) for rw-register.
//! - `ok` = committed, with every read filled in; `fail` = definitely aborted; `info` (or no
//!   completion at all) = unknown, it may or may not have committed. For `fail` and `info`
//!   only the invoke's micro-ops count; their reads are unknown.
//!
//! Keys may be JSON strings or integers; both become a [`Key`] string (`3` and `"3"` are the
//! same key). Jepsen EDN histories (`{:f :txn, :value [[:append 1 2] [:r 1 [1 2]]]}`) import
//! into exactly this shape through [`edn_value`] (called by [`crate::import`]).

use crate::history::{Event, EventType, History, HistoryError, Process};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// A key of a transactional workload: JSON integers are kept as their decimal text.
pub type Key = String;

/// One micro-operation inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum Mop {
    /// `["append", key, value]`: append `value` to the list at `key`.
    Append {
        /// The list.
        key: Key,
        /// The appended element (unique per key).
        value: i64,
    },
    /// `["w", key, value]`: overwrite the register at `key`.
    #[serde(rename = "w")]
    Write {
        /// The register.
        key: Key,
        /// The written value (unique per key).
        value: i64,
    },
    /// `["r", key, value]`: read `key`; `value` is `None` when the result is unknown.
    #[serde(rename = "r")]
    Read {
        /// The key read.
        key: Key,
        /// What the read returned, for committed (`ok`) transactions only. Stored as JSON
        /// with `null` for [`ReadValue::Nil`] and the field left out when unknown, so that a
        /// null read survives a round trip through `results.json`.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present_read"
        )]
        value: Option<ReadValue>,
    },
}

/// A `value` field that is present is a read result, `null` included (the field is absent
/// when the result is unknown).
fn present_read<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ReadValue>, D::Error> {
    ReadValue::deserialize(d).map(Some)
}

/// What a committed read returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReadValue {
    /// JSON `null`: the empty list (list-append) or a never-written register.
    Nil,
    /// A list (list-append).
    List(Vec<i64>),
    /// A single integer (rw-register).
    Int(i64),
}

impl Mop {
    /// The key this micro-op touches.
    pub fn key(&self) -> &str {
        match self {
            Mop::Append { key, .. } | Mop::Write { key, .. } | Mop::Read { key, .. } => key,
        }
    }

    /// The micro-op in the history's JSON shape (`["append", k, v]`); keys that are decimal
    /// integers are written as JSON integers, so parsing and printing round-trip.
    pub fn to_json(&self) -> Value {
        let key = key_json(self.key());
        match self {
            Mop::Append { value, .. } => Value::Array(vec!["append".into(), key, (*value).into()]),
            Mop::Write { value, .. } => Value::Array(vec!["w".into(), key, (*value).into()]),
            Mop::Read { value, .. } => {
                let v = match value {
                    None | Some(ReadValue::Nil) => Value::Null,
                    Some(ReadValue::List(l)) => l.iter().copied().map(Value::from).collect(),
                    Some(ReadValue::Int(i)) => (*i).into(),
                };
                Value::Array(vec!["r".into(), key, v])
            }
        }
    }
}

/// A key in JSON: an integer when the text is a canonical decimal integer, else a string.
pub fn key_json(key: &str) -> Value {
    match key.parse::<i64>() {
        Ok(i) if i.to_string() == key => Value::from(i),
        _ => Value::from(key),
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxnStatus {
    /// Committed; reads are known.
    Ok,
    /// Definitely aborted.
    Fail,
    /// Unknown (`info`, or never completed): may or may not have committed.
    Info,
}

/// One transaction: an invoke of `f: "txn"` paired with its completion, parsed into [`Mop`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Txn {
    /// Dense position in the list [`parse`] returned (0-based).
    pub id: usize,
    /// The client process that ran it.
    pub process: u64,
    /// Committed, aborted or unknown.
    pub status: TxnStatus,
    /// The micro-ops: the completion's (reads filled in) when `ok`, else the invoke's with
    /// every read's value `None`.
    pub mops: Vec<Mop>,
    /// `index` of the invoke event.
    pub invoke_index: u64,
    /// `index` of the completion event, if there was one.
    pub complete_index: Option<u64>,
    /// Invoke time, ns.
    pub call: u64,
    /// Completion time for `ok` and `fail`, ns; `None` for unknown outcomes.
    pub ret: Option<u64>,
    /// 1-based source line of the invoke.
    pub invoke_line: usize,
    /// 1-based source line of the completion, if any.
    pub complete_line: Option<usize>,
}

impl Txn {
    /// The history index people use to find this transaction: the completion's when there is
    /// one (it carries the reads), else the invoke's.
    pub fn index(&self) -> u64 {
        self.complete_index.unwrap_or(self.invoke_index)
    }

    /// The source line matching [`Txn::index`].
    pub fn line(&self) -> usize {
        self.complete_line.unwrap_or(self.invoke_line)
    }
}

/// Verdict of the workload checkers (the `verdict` vocabulary of `results.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// Nothing the checked model prohibits was found, and the search was complete.
    Valid,
    /// At least one prohibited anomaly was found.
    Invalid,
    /// Nothing prohibited was found, but the check was incomplete (budget, unusable input).
    Unknown,
}

impl Validity {
    /// `Invalid` if something prohibited was found, else `Unknown` if the check could not be
    /// completed (or had nothing to judge), else `Valid`.
    pub fn of(violated: bool, incomplete: bool) -> Validity {
        if violated {
            Validity::Invalid
        } else if incomplete {
            Validity::Unknown
        } else {
            Validity::Valid
        }
    }

    /// Lower-case name (`valid`, `invalid`, `unknown`).
    pub fn name(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        }
    }
}

fn syntax(line: usize, message: String) -> HistoryError {
    HistoryError::Syntax { line, message }
}

/// Parses every `f: "txn"` operation of a history into [`Txn`]s, in invoke order.
///
/// Other functions and nemesis events are skipped. Errors name the source line: a micro-op
/// that is not `[f, key, value]`, an unknown `f`, a non-integer append/write value, a read
/// that is neither null, a list of integers nor an integer, or an `ok` completion whose
/// micro-ops do not match its invoke's (same length, kinds, keys and written values).
pub fn parse(history: &History) -> Result<Vec<Txn>, HistoryError> {
    let calls = pair_calls(history, |f| f == "txn")?;
    let mut txns = Vec::with_capacity(calls.len());
    for c in calls {
        let inv = &history.events[c.invoke];
        let inv_line = line_at(history, c.invoke);
        let mut mops = parse_mops(&inv.value, inv_line, false)?;
        let (status, ret) = match c.completion.map(|p| &history.events[p]) {
            Some(ev) if ev.kind == EventType::Ok => (TxnStatus::Ok, Some(ev.time.max(inv.time))),
            Some(ev) if ev.kind == EventType::Fail => {
                (TxnStatus::Fail, Some(ev.time.max(inv.time)))
            }
            _ => (TxnStatus::Info, None),
        };
        if status == TxnStatus::Ok {
            let p = c.completion.expect("ok has a completion");
            let line = line_at(history, p);
            let done = parse_mops(&history.events[p].value, line, true)?;
            check_same_txn(&mops, &done, line, inv_line)?;
            mops = done;
        }
        txns.push(Txn {
            id: txns.len(),
            process: c.process,
            status,
            mops,
            invoke_index: inv.index,
            complete_index: c.completion.map(|p| history.events[p].index),
            call: inv.time,
            ret,
            invoke_line: inv_line,
            complete_line: c.completion.map(|p| line_at(history, p)),
        });
    }
    Ok(txns)
}

fn check_same_txn(
    invoked: &[Mop],
    done: &[Mop],
    line: usize,
    inv_line: usize,
) -> Result<(), HistoryError> {
    if invoked.len() != done.len() {
        return Err(syntax(
            line,
            format!(
                "completed txn has {} micro-ops but its invoke (line {inv_line}) has {}",
                done.len(),
                invoked.len()
            ),
        ));
    }
    for (i, (a, b)) in invoked.iter().zip(done).enumerate() {
        let same = match (a, b) {
            (Mop::Read { key: k1, .. }, Mop::Read { key: k2, .. }) => k1 == k2,
            _ => a == b,
        };
        if !same {
            return Err(syntax(
                line,
                format!(
                    "micro-op {i} of the completed txn is {} but the invoke (line {inv_line}) has {}",
                    b.to_json(),
                    a.to_json()
                ),
            ));
        }
    }
    Ok(())
}

fn parse_mops(v: &Value, line: usize, completed: bool) -> Result<Vec<Mop>, HistoryError> {
    let Value::Array(items) = v else {
        return Err(syntax(
            line,
            format!("txn value must be a list of micro-ops [f, key, value], got {v}"),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            parse_mop(m, completed).map_err(|e| syntax(line, format!("micro-op {i}: {e}")))
        })
        .collect()
}

fn parse_mop(m: &Value, completed: bool) -> Result<Mop, String> {
    let parts = match m {
        Value::Array(p) if p.len() == 3 => p,
        other => return Err(format!("expected [f, key, value], got {other}")),
    };
    let key = json_key(&parts[1])?;
    let f = parts[0]
        .as_str()
        .ok_or_else(|| format!("f must be a string, got {}", parts[0]))?;
    match f {
        "append" => Ok(Mop::Append {
            key,
            value: json_int(&parts[2]).map_err(|e| format!("append value {e}"))?,
        }),
        "w" => Ok(Mop::Write {
            key,
            value: json_int(&parts[2]).map_err(|e| format!("write value {e}"))?,
        }),
        "r" => {
            let value = if completed {
                Some(match &parts[2] {
                    Value::Null => ReadValue::Nil,
                    Value::Array(l) => ReadValue::List(
                        l.iter()
                            .map(|e| json_int(e).map_err(|m| format!("read element {m}")))
                            .collect::<Result<_, _>>()?,
                    ),
                    other => {
                        ReadValue::Int(json_int(other).map_err(|e| format!("read value {e}"))?)
                    }
                })
            } else {
                None
            };
            Ok(Mop::Read { key, value })
        }
        other => Err(format!(
            "unknown micro-op {other:?} (expected \"append\", \"r\" or \"w\")"
        )),
    }
}

/// A key from JSON: a string, or an integer kept as its decimal text.
pub(crate) fn json_key(v: &Value) -> Result<Key, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(format!("key must be a string or an integer, got {other}")),
    }
}

/// An integer from JSON, or a message saying what it was instead.
pub(crate) fn json_int(v: &Value) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("must be an integer (64-bit), got {v}"))
}

/// Converts the `:value` of a Jepsen EDN `:txn` op to this module's JSON shape:
/// `[[:append 1 2] [:r :x [1 2]]]` becomes `[["append",1,2],["r","x",[1,2]]]`.
///
/// Only the shape is checked here (a sequence of three-element micro-ops whose function is a
/// keyword, symbol or string); [`parse`] validates the rest, naming the line.
pub fn edn_value(v: &crate::import::edn::Edn) -> Result<Value, String> {
    use crate::import::edn::Edn;
    let mops = match v {
        Edn::Seq(mops) => mops,
        // An info/fail completion may carry no value; only the invoke's micro-ops count then.
        Edn::Nil => return Ok(Value::Null),
        _ => {
            return Err(format!(
                "a :txn value must be a vector of micro-ops, got {}",
                v.to_json()
            ))
        }
    };
    let mut out = Vec::with_capacity(mops.len());
    for (i, m) in mops.iter().enumerate() {
        match m {
            Edn::Seq(p) if p.len() == 3 => match &p[0] {
                Edn::Keyword(f) | Edn::Symbol(f) | Edn::Str(f) => out.push(Value::Array(vec![
                    Value::from(f.as_str()),
                    p[1].to_json(),
                    p[2].to_json(),
                ])),
                other => {
                    return Err(format!(
                        "micro-op {i}: function must be a keyword like :append or :r, got {}",
                        other.to_json()
                    ))
                }
            },
            other => {
                return Err(format!(
                    "micro-op {i}: expected [f key value], got {}",
                    other.to_json()
                ))
            }
        }
    }
    Ok(Value::Array(out))
}

/// One call of the selected functions, as positions in `History::events`, keeping `fail`s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    /// The client process.
    pub process: u64,
    /// Position of the invoke event.
    pub invoke: usize,
    /// Position of the completion event (`ok`, `fail` or `info`), if any.
    pub completion: Option<usize>,
}

/// What the bank, set and counter checkers say when no read completed.
pub(crate) const NO_READS: &str = "no read completed, so nothing could be checked";

/// `; first: <sentence>` when there is a first example (there is none with `max_examples` 0).
pub(crate) fn first(example: Option<&String>) -> String {
    example.map_or(String::new(), |e| format!("; first: {e}"))
}

/// A syntax error naming the source line of `events[pos]`.
pub(crate) fn syntax_at(h: &History, pos: usize, message: String) -> HistoryError {
    syntax(line_at(h, pos), message)
}

/// 1-based source line of `events[pos]`.
pub(crate) fn line_at(h: &History, pos: usize) -> usize {
    h.lines.get(pos).copied().unwrap_or(pos + 1)
}

/// Pairs invokes with completions per client process for the events whose `f` is selected,
/// in invoke order. Unlike [`crate::history::pair`] this keeps `fail`s (an aborted write that
/// someone read is an anomaly) and positions (for line numbers).
pub(crate) fn pair_calls(
    h: &History,
    select: impl Fn(&str) -> bool,
) -> Result<Vec<Call>, HistoryError> {
    let mut pending: HashMap<u64, usize> = HashMap::new();
    let mut calls: Vec<Call> = Vec::new();
    for (pos, ev) in h.events.iter().enumerate() {
        let Process::Client(p) = ev.process else {
            continue;
        };
        if !select(&ev.f) {
            continue;
        }
        if ev.kind == EventType::Invoke {
            if let Some(&slot) = pending.get(&p) {
                return Err(HistoryError::DoubleInvoke {
                    line: line_at(h, pos),
                    pending_line: line_at(h, calls[slot].invoke),
                    process: p.to_string(),
                    f: ev.f.clone(),
                });
            }
            pending.insert(p, calls.len());
            calls.push(Call {
                process: p,
                invoke: pos,
                completion: None,
            });
        } else {
            let Some(slot) = pending.remove(&p) else {
                return Err(HistoryError::CompletionWithoutInvoke {
                    line: line_at(h, pos),
                    process: p.to_string(),
                    kind: kind_name(ev).to_string(),
                });
            };
            let inv = &h.events[calls[slot].invoke];
            if inv.f != ev.f {
                return Err(HistoryError::Mismatch {
                    line: line_at(h, pos),
                    invoke_line: line_at(h, calls[slot].invoke),
                    expected: inv.f.clone(),
                    got: ev.f.clone(),
                });
            }
            calls[slot].completion = Some(pos);
        }
    }
    Ok(calls)
}

fn kind_name(ev: &Event) -> &'static str {
    match ev.kind {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

/// Renders a list the way the explanations print it: `[1 2 3]`, or `[… 7 8 9]` (n elements)
/// when long, since the tail is what a reader compares.
pub(crate) fn show_list(l: &[i64]) -> String {
    const MAX: usize = 8;
    let tail = |s: &[i64]| s.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
    if l.len() <= MAX {
        format!("[{}]", tail(l))
    } else {
        format!(
            "[… {}] ({} elements)",
            tail(&l[l.len() - MAX + 2..]),
            l.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_read_survives_a_round_trip_and_an_unknown_one_stays_unknown() {
        // `results.json` stores anomalies' micro-ops: an empty-list read must come back as
        // one, not as "result unknown" (serde reads a bare null as `None`).
        for value in [
            Some(ReadValue::Nil),
            None,
            Some(ReadValue::List(vec![1, 2])),
            Some(ReadValue::Int(3)),
        ] {
            let m = Mop::Read {
                key: "x".into(),
                value,
            };
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Mop>(&text).unwrap(), m, "{text}");
        }
    }
}
