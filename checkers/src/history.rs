//! The history: the contract between every part of faultline (DESIGN.md, "History").
//!
//! One [`Event`] per line of `history.jsonl`. Workers append an `invoke` before calling the
//! system and a completion (`ok` | `fail` | `info`) after; the nemesis appends `info` events
//! under the process `"nemesis"`. Checkers pair events into operations; this module only
//! defines the data, so that writers (the harness) and readers (checkers, report) agree.

use serde::{Deserialize, Serialize};

pub mod exact;

/// Who issued an event: a client process (a number) or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    /// A client process. A process that got `info` never issues another op.
    Client(u64),
    /// The fault injector; serialized as the string `"nemesis"`.
    #[serde(with = "nemesis_str")]
    Nemesis,
}

mod nemesis_str {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("nemesis")
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        let s = String::deserialize(d)?;
        if s == "nemesis" {
            Ok(())
        } else {
            Err(D::Error::custom(format!(
                "process must be an integer or \"nemesis\", got {s:?}"
            )))
        }
    }
}

/// The kind of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The call began.
    Invoke,
    /// The call completed and took effect.
    Ok,
    /// The call definitely did not take effect.
    Fail,
    /// Unknown outcome: it may take effect at any later time (or never).
    Info,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, 0-based and dense.
    pub index: u64,
    /// Nanoseconds since the test started, on the harness's monotonic clock.
    pub time: u64,
    /// Client process number, or the nemesis.
    pub process: Process,
    /// invoke | ok | fail | info.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The function: `read`, `write`, `cas`, `get`, `put`, `append`, or a nemesis action.
    pub f: String,
    /// The key, for multi-key workloads; absent for single-register histories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Integers for registers, `[expected, new]` for cas, null for a read's invoke.
    #[serde(default)]
    pub value: serde_json::Value,
    /// The node that served the op, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why an op failed or is indeterminate, in words (`timeout`, `not-leader`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Reading, writing and pairing. Everything below only adds to the contract above.

use std::io::{BufRead, Write};

/// What was wrong with a history, always naming the line (1-based) it was found on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The line is not valid JSON / EDN / log syntax, or lacks a required field.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong, in words.
        message: String,
    },
    /// The last line ends without a newline and does not parse: the writer was cut off.
    #[error("line {line}: truncated last line (no newline and not a complete event): {message}")]
    Truncated {
        /// 1-based line number.
        line: usize,
        /// The parser's complaint.
        message: String,
    },
    /// A completion (`ok`/`fail`/`info`) for a process with no pending invoke.
    #[error("line {line}: {kind} completion for process {process} without a pending invoke")]
    CompletionWithoutInvoke {
        /// 1-based line number.
        line: usize,
        /// The process, as written.
        process: String,
        /// ok | fail | info.
        kind: String,
    },
    /// An invoke while the same process still has an op pending (a process is sequential).
    #[error("line {line}: process {process} invoked {f} while its op from line {pending_line} is still pending")]
    DoubleInvoke {
        /// 1-based line number of the second invoke.
        line: usize,
        /// 1-based line number of the pending invoke.
        pending_line: usize,
        /// The process.
        process: String,
        /// The function of the second invoke.
        f: String,
    },
    /// A completion whose `f` differs from its invoke's.
    #[error("line {line}: completion f {got:?} does not match invoke f {expected:?} (line {invoke_line})")]
    Mismatch {
        /// 1-based line number of the completion.
        line: usize,
        /// 1-based line of the invoke.
        invoke_line: usize,
        /// The invoke's f.
        expected: String,
        /// The completion's f.
        got: String,
    },
    /// A completion whose time is earlier than its invoke's: the clock or the file is wrong.
    #[error("line {line}: {kind} completion at time {time} is earlier than its invoke at time {invoke_time} (line {invoke_line})")]
    CompletionBeforeInvoke {
        /// 1-based line number of the completion.
        line: usize,
        /// 1-based line of the invoke.
        invoke_line: usize,
        /// ok | fail | info.
        kind: String,
        /// The completion's time.
        time: u64,
        /// The invoke's time.
        invoke_time: u64,
    },
    /// The underlying reader failed.
    #[error("line {line}: read error: {source}")]
    Io {
        /// 1-based line number being read.
        line: usize,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl HistoryError {
    /// The 1-based line the problem was found on.
    pub fn line(&self) -> usize {
        match self {
            HistoryError::Syntax { line, .. }
            | HistoryError::Truncated { line, .. }
            | HistoryError::CompletionWithoutInvoke { line, .. }
            | HistoryError::DoubleInvoke { line, .. }
            | HistoryError::Mismatch { line, .. }
            | HistoryError::CompletionBeforeInvoke { line, .. }
            | HistoryError::Io { line, .. } => *line,
        }
    }
}

/// Streams [`Event`]s from `history.jsonl`, one per line; blank lines are skipped.
///
/// Each item is the event with its 1-based line number, or an error naming the line. A last
/// line without a trailing newline that fails to parse is reported as [`HistoryError::Truncated`]
/// (a harness killed mid-write), any other bad line as [`HistoryError::Syntax`].
pub struct JsonlReader<R> {
    input: R,
    line: usize,
    buf: String,
    done: bool,
}

impl<R: BufRead> JsonlReader<R> {
    /// Wraps a buffered reader.
    pub fn new(input: R) -> Self {
        JsonlReader {
            input,
            line: 0,
            buf: String::new(),
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<(usize, Event), HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            self.line += 1;
            let n = match self.input.read_line(&mut self.buf) {
                Ok(n) => n,
                Err(source) => {
                    self.done = true;
                    return Some(Err(HistoryError::Io {
                        line: self.line,
                        source,
                    }));
                }
            };
            if n == 0 {
                self.done = true;
                return None;
            }
            let complete = self.buf.ends_with('\n');
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            return Some(match serde_json::from_str::<Event>(text) {
                Ok(ev) => match exact_value(text, &ev.value) {
                    Ok(()) => Ok((self.line, ev)),
                    Err(message) => Err(HistoryError::Syntax {
                        line: self.line,
                        message,
                    }),
                },
                Err(e) if !complete => {
                    self.done = true;
                    Err(HistoryError::Truncated {
                        line: self.line,
                        message: json_message(&e),
                    })
                }
                Err(e) => Err(HistoryError::Syntax {
                    line: self.line,
                    message: json_message(&e),
                }),
            });
        }
    }
}

/// `Err` when the event's `value` held a number that parsing changed (see [`exact`]). Only
/// a float can be such a number, so values without one cost nothing more.
fn exact_value(line: &str, value: &serde_json::Value) -> Result<(), String> {
    if !exact::has_float(value) {
        return Ok(());
    }
    // An escaped spelling of the key is not found: then every number on the line must pass.
    let raw = exact::member(line, "value").unwrap_or(line);
    exact::check_json_numbers(raw).map_err(|m| format!("value: {m}"))
}

/// serde_json's message without its own "at line 1 column N" (every event is one line).
fn json_message(e: &serde_json::Error) -> String {
    let m = e.to_string();
    match m.rfind(" at line ") {
        Some(at) => format!("{} (column {})", &m[..at], e.column()),
        None => m,
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// Parses a whole JSONL history held in memory; stops at the first bad line.
pub fn parse_jsonl(text: &str) -> Result<History, HistoryError> {
    let mut h = History::default();
    for item in JsonlReader::new(text.as_bytes()) {
        let (line, ev) = item?;
        h.push(line, ev);
    }
    Ok(h)
}

/// Appends events to `history.jsonl` as they happen, flushing after each one so that a
/// crashed harness still leaves a checkable history (DESIGN.md, "History").
pub struct HistoryWriter<W: Write> {
    out: W,
}

impl<W: Write> HistoryWriter<W> {
    /// Wraps any writer (a file, a `Vec<u8>` in tests).
    pub fn new(out: W) -> Self {
        HistoryWriter { out }
    }

    /// Writes one event as one line and flushes.
    pub fn write(&mut self, event: &Event) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A parsed history: events in file order, each with the line it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The events, in file order.
    pub events: Vec<Event>,
    /// `lines[i]` is the 1-based source line of `events[i]` (for error messages).
    pub lines: Vec<usize>,
}

impl History {
    /// Appends an event read from `line`.
    pub fn push(&mut self, line: usize, event: Event) {
        self.events.push(event);
        self.lines.push(line);
    }

    /// Builds a history from events alone; line numbers become event positions + 1.
    pub fn from_events(events: Vec<Event>) -> Self {
        let lines = (1..=events.len()).collect();
        History { events, lines }
    }

    /// Pairs invokes with completions into [`Operation`]s; see [`pair`].
    pub fn operations(&self) -> Result<Vec<Operation>, HistoryError> {
        pair(&self.events, &self.lines)
    }
}

/// One client call: an invoke paired with its completion.
///
/// `fail` ops are removed by [`pair`] (they did not happen). An `info` op (outcome unknown) and
/// an invoke that never completed have `ret: None`: a call that never returns, so it may take
/// effect at any time after `call`, or never.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Dense position in the operation list (0-based).
    pub id: usize,
    /// The process that issued it.
    pub process: Process,
    /// The function (`read`, `write`, `cas`, `get`, `put`, `append`, ...).
    pub f: String,
    /// The key, for multi-key workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The invoke's value (the argument).
    pub input: serde_json::Value,
    /// The completion's value for `ok` ops (the result); `None` when the outcome is unknown.
    /// A read of nil is `Some(null)`, also after a round trip through JSON.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub output: Option<serde_json::Value>,
    /// Invoke time (ns).
    pub call: u64,
    /// Completion time (ns); `None` = never returned (+infinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<u64>,
    /// `index` of the invoke event.
    pub invoke_index: u64,
    /// `index` of the completion event, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_index: Option<u64>,
    /// 1-based source line of the invoke event, so messages can name it (0 = unknown).
    #[serde(default)]
    pub line: usize,
    /// Time of the completion event of any kind (ns): `ret` for ok ops, and also when a `fail`
    /// or `info` came back (the client gave up then; an `info` op may still take effect later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
    /// The op definitely did not happen (`fail`). Only [`pair_all`] keeps such ops.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// The node that served it (the completion's `node`, else the invoke's), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why it failed or is indeterminate, in words, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A field that is present deserializes to `Some`, even when it is JSON null (a read of nil);
/// an absent one is `None` through `#[serde(default)]`.
pub fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

impl Operation {
    /// True when the outcome is unknown (`info`, or never completed).
    pub fn is_indeterminate(&self) -> bool {
        self.ret.is_none() && !self.failed
    }

    /// How the call ended.
    pub fn outcome(&self) -> Outcome {
        if self.failed {
            Outcome::Fail
        } else if self.ret.is_some() {
            Outcome::Ok
        } else {
            Outcome::Info
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Completed and took effect.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Unknown: timed out, connection lost, or never completed before the history ended.
    Info,
}

impl Outcome {
    /// The history's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

fn process_name(p: &Process) -> String {
    match p {
        Process::Client(n) => n.to_string(),
        Process::Nemesis => "nemesis".to_string(),
    }
}

/// Pairs invoke and completion events per process into operations, in invoke order.
///
/// Nemesis events are skipped. `fail` completions drop the op. `info` completions, and invokes
/// still pending at the end of the history, become ops with `ret: None`. After `info` a process
/// may (against Jepsen convention) invoke again; the indeterminate op simply stays open.
/// A completion timed before its invoke is refused. `lines[i]` names the source line of
/// `events[i]` in errors and in [`Operation::line`] (without lines: position + 1).
pub fn pair(events: &[Event], lines: &[usize]) -> Result<Vec<Operation>, HistoryError> {
    pair_with(events, lines, false)
}

/// Like [`pair`], but keeps `fail` ops (with [`Operation::failed`] set and `ret: None`), for
/// whoever draws or counts what happened. Never hand its output to a checker unfiltered: a
/// failed op did not happen.
pub fn pair_all(events: &[Event], lines: &[usize]) -> Result<Vec<Operation>, HistoryError> {
    pair_with(events, lines, true)
}

fn pair_with(
    events: &[Event],
    lines: &[usize],
    keep_fails: bool,
) -> Result<Vec<Operation>, HistoryError> {
    use std::collections::HashMap;
    let line_of = |i: usize| lines.get(i).copied().unwrap_or(i + 1);
    // process -> (event position, slot in `slots`)
    let mut pending: HashMap<Process, (usize, usize)> = HashMap::new();
    let mut slots: Vec<Option<Operation>> = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        if ev.process == Process::Nemesis {
            continue;
        }
        match ev.kind {
            EventType::Invoke => {
                if let Some(&(p, _)) = pending.get(&ev.process) {
                    return Err(HistoryError::DoubleInvoke {
                        line: line_of(i),
                        pending_line: line_of(p),
                        process: process_name(&ev.process),
                        f: ev.f.clone(),
                    });
                }
                pending.insert(ev.process, (i, slots.len()));
                slots.push(Some(Operation {
                    id: 0,
                    process: ev.process,
                    f: ev.f.clone(),
                    key: ev.key.clone(),
                    input: ev.value.clone(),
                    output: None,
                    call: ev.time,
                    ret: None,
                    invoke_index: ev.index,
                    complete_index: None,
                    line: line_of(i),
                    end: None,
                    failed: false,
                    node: ev.node.clone(),
                    error: None,
                }));
            }
            kind => {
                let Some((p, slot)) = pending.remove(&ev.process) else {
                    return Err(HistoryError::CompletionWithoutInvoke {
                        line: line_of(i),
                        process: process_name(&ev.process),
                        kind: format!("{kind:?}").to_lowercase(),
                    });
                };
                let op = slots[slot].as_mut().expect("pending slot is filled");
                if op.f != ev.f {
                    return Err(HistoryError::Mismatch {
                        line: line_of(i),
                        invoke_line: line_of(p),
                        expected: op.f.clone(),
                        got: ev.f.clone(),
                    });
                }
                if ev.time < op.call {
                    return Err(HistoryError::CompletionBeforeInvoke {
                        line: line_of(i),
                        invoke_line: line_of(p),
                        kind: format!("{kind:?}").to_lowercase(),
                        time: ev.time,
                        invoke_time: op.call,
                    });
                }
                if op.key.is_none() {
                    op.key = ev.key.clone();
                }
                op.end = Some(ev.time.max(op.call));
                if ev.node.is_some() {
                    op.node = ev.node.clone();
                }
                op.error = ev.error.clone();
                match kind {
                    EventType::Ok => {
                        op.ret = Some(ev.time);
                        op.output = Some(ev.value.clone());
                        op.complete_index = Some(ev.index);
                    }
                    EventType::Fail if keep_fails => {
                        op.failed = true;
                        op.complete_index = Some(ev.index);
                    }
                    EventType::Fail => slots[slot] = None,
                    _ => op.complete_index = Some(ev.index),
                }
            }
        }
    }
    let mut ops: Vec<Operation> = slots.into_iter().flatten().collect();
    for (id, op) in ops.iter_mut().enumerate() {
        op.id = id;
    }
    Ok(ops)
}
