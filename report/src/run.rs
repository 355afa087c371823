//! Loading a run directory into what the renderers draw: operations, fault windows, config.
//!
//! The report draws what happened, it never judges it: invoke/complete events are paired per
//! process here only to get each operation's interval and outcome (the checker's own pairing
//! decides linearizability). `test.json` and `results.json` are kept as JSON values and shown
//! generically, so the report keeps working while their schemas grow.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use checkers::history::{Event, EventType, Process};
use serde_json::Value;

use crate::ReportError;

/// How an operation ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
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
    /// All outcomes, in drawing order (the rare, interesting ones last, on top).
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Fail, Outcome::Info];

    /// The history's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

/// One client operation: an invoke paired with its completion.
#[derive(Debug, Clone)]
pub struct Op {
    /// Index of the invoke event in the history.
    pub index: u64,
    /// The client process that issued it.
    pub process: u64,
    /// Index into [`Run::fs`].
    pub f: usize,
    /// The key, for multi-key workloads.
    pub key: Option<String>,
    /// Invoke time, ns since test start.
    pub invoke: u64,
    /// Completion time, ns; `None` when the history ended before it completed.
    pub complete: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// The invoke's value (what was asked).
    pub value: Value,
    /// The completion's value (what came back), `Null` when there was none.
    pub result: Value,
    /// The node that served it, when known.
    pub node: Option<String>,
    /// The error, in words, for fail/info.
    pub error: Option<String>,
}

impl Op {
    /// Latency in nanoseconds, when the op completed.
    pub fn latency(&self) -> Option<u64> {
        self.complete.map(|c| c.saturating_sub(self.invoke))
    }
}

/// A fault the nemesis applied, from its start event to its stop event.
#[derive(Debug, Clone)]
pub struct FaultWindow {
    /// The fault kind: `partition`, `kill`, `pause`, `clock`, ... (the `f` without `-start`).
    pub kind: String,
    /// When it started, ns.
    pub start: u64,
    /// When it was stopped, ns; `None` if the history ended first (teardown healed it).
    pub stop: Option<u64>,
    /// The start event's details (e.g. the partition grudge).
    pub detail: Value,
}

/// Everything the renderers need from one run directory.
#[derive(Debug)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// `test.json`, if present.
    pub test: Option<Value>,
    /// `results.json`, if present.
    pub results: Option<Value>,
    /// Operation names (`read`, `write`, ...) in order of first appearance.
    pub fs: Vec<String>,
    /// Client operations ordered by invoke time.
    pub ops: Vec<Op>,
    /// Nemesis fault windows ordered by start time.
    pub faults: Vec<FaultWindow>,
    /// Nemesis events that are not a start or stop of a fault window (kept for the tables).
    pub nemesis_other: Vec<(u64, String, Value)>,
    /// Time of the last event, ns.
    pub end: u64,
}

/// Splits a nemesis `f` into (kind, is_start) for both `partition-start` and `start-partition`.
fn fault_edge(f: &str) -> Option<(&str, bool)> {
    for (suffix, start) in [("-start", true), ("-stop", false)] {
        if let Some(kind) = f.strip_suffix(suffix) {
            return Some((kind, start));
        }
    }
    for (prefix, start) in [("start-", true), ("stop-", false)] {
        if let Some(kind) = f.strip_prefix(prefix) {
            return Some((kind, start));
        }
    }
    None
}

fn read_json(path: &Path) -> Result<Option<Value>, ReportError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ReportError::Json {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReportError::io(path, e)),
    }
}

/// Reads `history.jsonl` into events, naming the line of any malformed event.
pub fn read_history(path: &Path) -> Result<Vec<Event>, ReportError> {
    let file = File::open(path).map_err(|e| ReportError::io(path, e))?;
    let mut events = Vec::new();
    for (i, line) in BufReader::with_capacity(1 << 16, file).lines().enumerate() {
        let line = line.map_err(|e| ReportError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(&line).map_err(|e| ReportError::History {
            path: path.to_owned(),
            line: i + 1,
            message: e.to_string(),
        })?;
        events.push(event);
    }
    Ok(events)
}

impl Run {
    /// Loads a run directory: `history.jsonl` (required), `test.json` and `results.json` (optional).
    pub fn load(dir: &Path) -> Result<Run, ReportError> {
        let history = dir.join("history.jsonl");
        if !history.exists() {
            return Err(ReportError::NoHistory(dir.to_owned()));
        }
        let events = read_history(&history)?;
        let mut run = Run::from_events(dir, events);
        run.test = read_json(&dir.join("test.json"))?;
        run.results = read_json(&dir.join("results.json"))?;
        Ok(run)
    }

    /// Builds a run from events already in memory (no config, no results).
    pub fn from_events(dir: &Path, events: Vec<Event>) -> Run {
        let mut fs: Vec<String> = Vec::new();
        let mut f_ids: HashMap<String, usize> = HashMap::new();
        let mut pending: HashMap<u64, Op> = HashMap::new();
        let mut ops = Vec::with_capacity(events.len() / 2 + 1);
        let mut nemesis = Vec::new();
        let mut end = 0;
        for ev in events {
            end = end.max(ev.time);
            let process = match ev.process {
                Process::Client(p) => p,
                Process::Nemesis => {
                    nemesis.push(ev);
                    continue;
                }
            };
            match ev.kind {
                EventType::Invoke => {
                    let f = match f_ids.get(&ev.f) {
                        Some(&id) => id,
                        None => {
                            fs.push(ev.f.clone());
                            f_ids.insert(ev.f, fs.len() - 1);
                            fs.len() - 1
                        }
                    };
                    let op = Op {
                        index: ev.index,
                        process,
                        f,
                        key: ev.key,
                        invoke: ev.time,
                        complete: None,
                        outcome: Outcome::Info,
                        value: ev.value,
                        result: Value::Null,
                        node: ev.node,
                        error: None,
                    };
                    // A second invoke without completion: close the first as unknown.
                    if let Some(prev) = pending.insert(process, op) {
                        ops.push(prev);
                    }
                }
                kind => {
                    // A completion without an invoke is the checker's business to reject;
                    // the report draws what it can.
                    if let Some(mut op) = pending.remove(&process) {
                        op.complete = Some(ev.time);
                        op.outcome = match kind {
                            EventType::Ok => Outcome::Ok,
                            EventType::Fail => Outcome::Fail,
                            _ => Outcome::Info,
                        };
                        op.result = ev.value;
                        if ev.node.is_some() {
                            op.node = ev.node;
                        }
                        op.error = ev.error;
                        ops.push(op);
                    }
                }
            }
        }
        ops.extend(pending.into_values());
        ops.sort_by_key(|o| (o.invoke, o.index));
        let (faults, nemesis_other) = fault_windows(nemesis);
        Run {
            dir: dir.to_owned(),
            test: None,
            results: None,
            fs,
            ops,
            faults,
            nemesis_other,
            end,
        }
    }

    /// The end of the test in ns (last event, at least 1 ns so axes are never empty).
    pub fn end_time(&self) -> u64 {
        self.end.max(1)
    }
}

/// Pairs nemesis start/stop events into windows; a stop closes the oldest open window of its kind.
fn fault_windows(events: Vec<Event>) -> (Vec<FaultWindow>, Vec<(u64, String, Value)>) {
    // Jepsen-style nemeses log an invoke and then an info for each action; ours log only info.
    let has_info = events.iter().any(|e| e.kind == EventType::Info);
    let mut open: HashMap<String, Vec<usize>> = HashMap::new();
    let mut windows: Vec<FaultWindow> = Vec::new();
    let mut other = Vec::new();
    for ev in events {
        if has_info && ev.kind != EventType::Info {
            continue;
        }
        match fault_edge(&ev.f) {
            Some((kind, true)) => {
                open.entry(kind.to_owned()).or_default().push(windows.len());
                windows.push(FaultWindow {
                    kind: kind.to_owned(),
                    start: ev.time,
                    stop: None,
                    detail: ev.value,
                });
            }
            Some((kind, false)) => {
                let slot = open.get_mut(kind).filter(|v| !v.is_empty());
                match slot {
                    Some(v) => {
                        let i = v.remove(0);
                        windows[i].stop = Some(ev.time);
                    }
                    None => other.push((ev.time, ev.f, ev.value)),
                }
            }
            None => other.push((ev.time, ev.f, ev.value)),
        }
    }
    windows.sort_by_key(|w| w.start);
    (windows, other)
}

/// Which way the checker decided, as far as the report can tell from `results.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed.
    Valid,
    /// A check found an anomaly.
    Invalid,
    /// A check could not decide (time budget exhausted).
    Unknown,
    /// No results were stored.
    NotChecked,
}

impl Verdict {
    /// A short word for banners and listings.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::NotChecked => "not checked",
        }
    }

    /// CSS class used by the pages.
    pub fn css(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::NotChecked => "none",
        }
    }

    /// Reads the verdict out of a `results.json` value.
    ///
    /// Accepts `valid: true|false|"unknown"` and `verdict`/`result`/`outcome` strings such as
    /// `linearizable`, `illegal`, `unknown`, `ok`, `invalid`, at the top level or under
    /// `linearizability`/`checker`; the first one found wins.
    pub fn from_results(results: Option<&Value>) -> Verdict {
        let Some(v) = results else {
            return Verdict::NotChecked;
        };
        fn word(s: &str) -> Option<Verdict> {
            match s.to_ascii_lowercase().as_str() {
                "valid" | "ok" | "linearizable" | "pass" | "passed" | "true" => {
                    Some(Verdict::Valid)
                }
                "invalid" | "illegal" | "anomaly" | "fail" | "failed" | "false" => {
                    Some(Verdict::Invalid)
                }
                "unknown" | "timeout" | "indeterminate" => Some(Verdict::Unknown),
                _ => None,
            }
        }
        fn look(v: &Value, depth: usize) -> Option<Verdict> {
            let obj = v.as_object()?;
            for k in ["verdict", "valid", "result", "outcome", "status"] {
                match obj.get(k) {
                    Some(Value::Bool(true)) => return Some(Verdict::Valid),
                    Some(Value::Bool(false)) => return Some(Verdict::Invalid),
                    Some(Value::String(s)) => {
                        if let Some(w) = word(s) {
                            return Some(w);
                        }
                    }
                    Some(o @ Value::Object(_)) if depth < 3 => {
                        if let Some(w) = look(o, depth + 1) {
                            return Some(w);
                        }
                    }
                    _ => {}
                }
            }
            for k in ["linearizability", "linearizable", "checker"] {
                if let Some(o) = obj.get(k) {
                    if depth < 3 {
                        if let Some(w) = look(o, depth + 1) {
                            return Some(w);
                        }
                    }
                }
            }
            None
        }
        look(v, 0).unwrap_or(Verdict::Unknown)
    }
}
