//! Why a key cannot be linearized, in one sentence a person can check, built from a minimal
//! counterexample ([`crate::minimize`]).
//!
//! # Sentences are made of claims
//! A [`Sentence`] is glue text interleaved with references to [`Claim`]s: typed facts about the
//! history ("this invoke event and its completion say read → 603 by p80 via n3",
//! "p80's read began 12 ms after p66's cas was acknowledged", "the only operations that wrote
//! 603 are these", "n3 could not reach n1 then"). Every value, process, node and time in the
//! text comes from a claim; the glue carries only words. [`verify_sentence`] checks each claim
//! against the raw events of the history — independently of how the claims were found — and
//! that the text is exactly the rendering of its parts, so a test can hold every sentence the
//! product prints to the history it talks about.
//!
//! # Which op is blamed
//! In a 1-minimal set every op is needed, but a write can always be placed somewhere in a
//! register; what cannot be right is an *observation*. The culprit is the observation (read,
//! cas) of the set invoked last: the one that contradicts what the others established. The
//! sentence says why, using the first pattern that applies:
//! - the value was never written (and is not the initial value);
//! - it was only written after the read completed;
//! - an op acknowledged before the read began had replaced it, and no write of it could take
//!   effect in between (a *stale read*, or a *lost update* for a cas);
//! - a read that completed before it began had already returned a newer value (a *new-old
//!   inversion*);
//! - a cas found a different value although the register provably held the one it expected;
//! - otherwise, generically: one real-time-respecting order of the other ops, the state it
//!   leaves, and that the culprit is not legal there (the checker proved every order fails).
//!
//! The fault active at that moment (and who was cut off from whom, and who claimed to lead,
//! when the history records `cluster-status` events) is appended.

use crate::analysis::Observed;
use crate::history::{Event, EventType, Operation, Process};
use crate::linearizable::{CheckOptions, CheckResult, Counterexample, Verdict};
use crate::minimize;
use crate::model::{ModelKind, ModelOptions, NilReads, Prepare};
use crate::models::{
    cas_register::CasRegisterModel, kv::KvModel, multi_register::MultiRegisterModel,
    register::RegisterModel,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Claims and sentences

/// An operation as the history records it; the op is named by its invoke event's `index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpClaim {
    /// `index` of the invoke event.
    pub invoke: u64,
    /// The client process.
    pub process: u64,
    /// The function.
    pub f: String,
    /// The key, for multi-key histories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The invoke's value.
    pub input: Value,
    /// The completion's value, for ok ops.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::history::present"
    )]
    pub output: Option<Value>,
    /// `ok`, `fail`, `info`, or `None` when the history ended before it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<EventType>,
    /// The node that served it, as recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Invoke time, ns.
    pub call: u64,
    /// Completion time, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
}

/// A fact about the history, checkable against its events ([`verify`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "claim", rename_all = "kebab-case")]
pub enum Claim {
    /// An operation: what was invoked and what came back.
    Op(OpClaim),
    /// `later` was invoked `ns` after `earlier`'s completion event (ok, fail or info) came back.
    Gap {
        /// Invoke index of the op that completed first.
        earlier: u64,
        /// Invoke index of the op invoked later.
        later: u64,
        /// `later`'s invoke time minus `earlier`'s completion time.
        ns: u64,
    },
    /// On `key`, the operations that wrote `value` and did not fail are exactly `writers`
    /// (a write / put of it, or a cas to it, whatever their outcome otherwise); `init` is the
    /// initial value the model was given (an option of the check, not in the history).
    Writers {
        /// The key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// The value.
        value: Value,
        /// Invoke indices.
        writers: Vec<u64>,
        /// The model's initial value (nil = JSON null).
        init: Value,
    },
    /// Every operation on `key` other than `except` that writes anything (and did not fail)
    /// either completed before `from` or began after `to`: nothing else could take effect in
    /// `[from, to]`.
    Quiet {
        /// The key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// From, ns.
        from: u64,
        /// To, ns.
        to: u64,
        /// Writes allowed in between (invoke indices).
        except: Vec<u64>,
    },
    /// A fault was active at `at`: its start event at `start` says `description`, and no stop
    /// of its kind came in between.
    Fault {
        /// The kind (`partition`).
        kind: String,
        /// Start event time, ns.
        start: u64,
        /// The moment, ns.
        at: u64,
        /// The fault in words (`partition n1 n2 | n3`).
        description: String,
    },
    /// At `at`, `node` could not exchange messages with any of `from` (active partitions).
    CutOff {
        /// The node.
        node: String,
        /// The nodes it could not reach.
        from: Vec<String>,
        /// The moment, ns.
        at: u64,
    },
    /// The last `cluster-status` event at or before `at` has `node` reporting itself leader
    /// of `term`.
    Leader {
        /// The node.
        node: String,
        /// Its term.
        term: u64,
        /// The moment, ns.
        at: u64,
    },
    /// Replaying `order` (invoke indices) from the initial value on `model` is legal and
    /// leaves `state`.
    State {
        /// The model.
        model: ModelKind,
        /// Its initial value.
        init: Value,
        /// The ops, in order.
        order: Vec<u64>,
        /// The state after them.
        state: Value,
    },
    /// `piece` does not occur in `value` (a kv value built by appends).
    Lacks {
        /// The appended string.
        piece: String,
        /// The value a get returned.
        value: String,
    },
    /// `value` does not start with `prefix`.
    NotPrefix {
        /// What an earlier get returned.
        prefix: String,
        /// What a later get returned.
        value: String,
    },
    /// Every put (or write) on `key` that did not fail either completed before `from` or began
    /// after `to`: nothing could replace the value in between.
    NoReset {
        /// The key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// From, ns.
        from: u64,
        /// To, ns.
        to: u64,
    },
    /// On `key`, the ok writes acknowledged before `read` began that were invoked after the
    /// write of the value it returned was acknowledged (all acknowledged writes, when it
    /// returned nil) are exactly `writes`: the read is that many acknowledged versions behind.
    Behind {
        /// The key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// The read's invoke index.
        read: u64,
        /// The newer acknowledged writes.
        writes: Vec<u64>,
    },
    /// On `key`, every write finished by `after` (acknowledged, or invoked if its outcome is
    /// unknown); the ok reads that began after it, returning a value some write had begun
    /// before the read completed (or nil), are exactly `reads`; and each returned nil or a value
    /// whose writes were all acknowledged before `write` began: none saw `write`.
    Lost {
        /// The key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// The lost write's invoke index.
        write: u64,
        /// When every write had finished, ns.
        after: u64,
        /// The final reads.
        reads: Vec<u64>,
    },
    /// `op` is not legal on `model` in `state`.
    Illegal {
        /// The model.
        model: ModelKind,
        /// The op's invoke index.
        op: u64,
        /// The state.
        state: Value,
    },
}

/// Which rendering of a claim a sentence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    /// An op in words: `read → 603 by p80 via n3`.
    Phrase,
    /// An op's invoke time: `1.216 s`.
    Call,
    /// An op's completion time.
    End,
    /// A gap: `12 ms`.
    Gap,
    /// A value (`603`), a state, or a list of nodes.
    Value,
    /// A fault in words.
    Description,
    /// A fault's start time.
    Start,
    /// A node.
    Node,
    /// A term.
    Term,
    /// An op's key: `key 3`.
    Key,
}

/// A piece of a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Part {
    /// A claim, rendered: `claim` indexes [`Sentence::claims`].
    Ref {
        /// Which claim.
        claim: usize,
        /// Which rendering.
        field: Field,
        /// The rendering.
        text: String,
    },
    /// Words only (no value, process, node or time).
    Text(String),
}

/// A sentence for a person, with the claims it makes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sentence {
    /// The sentence.
    pub text: String,
    /// What it claims.
    pub claims: Vec<Claim>,
    /// The text, piece by piece.
    pub parts: Vec<Part>,
    /// Times are event positions (histories imported without clocks), shown as `#n`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub logical_time: bool,
}

impl Sentence {
    /// An empty sentence; times as event positions when `logical_time`.
    pub fn new(logical_time: bool) -> Sentence {
        Sentence {
            logical_time,
            ..Sentence::default()
        }
    }

    /// Appends glue words.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        match self.parts.last_mut() {
            Some(Part::Text(t)) => t.push_str(s),
            _ => self.parts.push(Part::Text(s.to_string())),
        }
        self
    }

    /// Adds a claim (or finds the same one) and returns its index.
    pub fn claim(&mut self, c: Claim) -> usize {
        match self.claims.iter().position(|x| *x == c) {
            Some(i) => i,
            None => {
                self.claims.push(c);
                self.claims.len() - 1
            }
        }
    }

    /// Appends a rendering of claim `i`.
    pub fn show(&mut self, i: usize, field: Field) -> &mut Self {
        let text = render(&self.claims[i], field, self.logical_time);
        self.text.push_str(&text);
        self.parts.push(Part::Ref {
            claim: i,
            field,
            text,
        });
        self
    }

    /// Adds `c` and shows it.
    pub fn say(&mut self, c: Claim, field: Field) -> &mut Self {
        let i = self.claim(c);
        self.show(i, field)
    }

    /// Adds `op`'s claim and shows it as a phrase.
    pub fn show_op(&mut self, op: &Operation) -> &mut Self {
        let i = self.claim(op_claim(op));
        self.show(i, Field::Phrase)
    }

    /// The clause most explanations open with, `{later} began {gap} after {earlier}`, where
    /// the gap runs from `earlier`'s completion to `later`'s invoke. Returns the claims of the
    /// two ops.
    pub fn began_after(&mut self, later: &Operation, earlier: &Operation) -> (usize, usize) {
        let li = self.claim(op_claim(later));
        let ei = self.claim(op_claim(earlier));
        let end = earlier.end.or(earlier.ret).unwrap_or(earlier.call);
        let gi = self.claim(Claim::Gap {
            earlier: earlier.invoke_index,
            later: later.invoke_index,
            ns: later.call.saturating_sub(end),
        });
        self.show(li, Field::Phrase)
            .text(" began ")
            .show(gi, Field::Gap)
            .text(" after ")
            .show(ei, Field::Phrase);
        (li, ei)
    }
}

/// The claim describing `op`.
pub fn op_claim(op: &Operation) -> Claim {
    let process = match op.process {
        Process::Client(p) => p,
        Process::Nemesis => u64::MAX,
    };
    Claim::Op(OpClaim {
        invoke: op.invoke_index,
        process,
        f: op.f.clone(),
        key: op.key.clone(),
        input: op.input.clone(),
        output: op.output.clone(),
        completion: match op.outcome() {
            _ if op.complete_index.is_none() => None,
            crate::history::Outcome::Ok => Some(EventType::Ok),
            crate::history::Outcome::Fail => Some(EventType::Fail),
            crate::history::Outcome::Info => Some(EventType::Info),
        },
        node: op.node.clone(),
        call: op.call,
        end: op.end,
    })
}

/// A value for people: integers as is, strings quoted, null as `nil`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        other => other.to_string(),
    }
}

/// A moment since the test started: `1.216 s` (milliseconds are enough for people; gaps
/// carry the fine detail), or `#12` for histories without clocks.
pub fn time_text(ns: u64, logical: bool) -> String {
    if logical {
        format!("#{ns}")
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

/// A duration: `40 ns`, `850 µs`, `4.2 ms`, `12 ms`, `1.35 s` (never a rounded `0 µs`).
pub fn gap_text(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e7 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns < 1e9 {
        format!("{:.0} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// An op in words: `read → 603 by p80 via n3`, `cas 603→662 by p66`, `write 17 by p5 (timed
/// out)`.
fn phrase(c: &OpClaim) -> String {
    let what = match (c.f.as_str(), &c.output) {
        ("read" | "get", Some(v)) => format!("{} → {}", c.f, value_text(v)),
        ("read" | "get", None) => format!("{} (no result)", c.f),
        ("cas", out) => {
            let (from, to) = match &c.input {
                Value::Array(a) if a.len() == 2 => (value_text(&a[0]), value_text(&a[1])),
                other => (value_text(other), "?".into()),
            };
            if out == &Some(Value::Bool(false)) {
                format!("cas {from}→{to} (no match)")
            } else {
                format!("cas {from}→{to}")
            }
        }
        (f, _) => format!("{f} {}", value_text(&c.input)),
    };
    let how = match c.completion {
        Some(EventType::Info) => " (outcome unknown)",
        None => " (never returned)",
        Some(EventType::Fail) => " (failed)",
        _ => "",
    };
    let node = c
        .node
        .as_deref()
        .map(|n| format!(" via {n}"))
        .unwrap_or_default();
    format!("{what} by p{}{node}{how}", c.process)
}

/// The text of one rendering of a claim.
pub fn render(claim: &Claim, field: Field, logical: bool) -> String {
    match (claim, field) {
        (Claim::Op(c), Field::Phrase) => phrase(c),
        (Claim::Op(c), Field::Call) => time_text(c.call, logical),
        (Claim::Op(c), Field::End) => c
            .end
            .map(|e| time_text(e, logical))
            .unwrap_or_else(|| "never".into()),
        (Claim::Op(c), Field::Node) => c.node.clone().unwrap_or_default(),
        (Claim::Op(c), Field::Key) => match &c.key {
            Some(k) => format!("key {k}"),
            None => "the register".into(),
        },
        (Claim::Gap { ns, .. }, _) if logical => format!("{ns} events"),
        (Claim::Gap { ns, .. }, _) => gap_text(*ns),
        (Claim::Writers { value, .. }, _) => value_text(value),
        (Claim::State { state, .. }, _) | (Claim::Illegal { state, .. }, _) => value_text(state),
        (Claim::Fault { start, .. }, Field::Start) => time_text(*start, logical),
        (Claim::Fault { description, .. }, _) => description.clone(),
        (Claim::CutOff { node, .. }, Field::Node) => node.clone(),
        (Claim::CutOff { from, .. }, _) => from.join(", "),
        (Claim::Leader { term, .. }, Field::Term) => term.to_string(),
        (Claim::Leader { node, .. }, _) => node.clone(),
        (Claim::Quiet { from, .. }, _) | (Claim::NoReset { from, .. }, _) => {
            time_text(*from, logical)
        }
        (Claim::Lacks { piece, .. }, _) => format!("{piece:?}"),
        (Claim::Behind { writes, .. }, _) => format!(
            "{} acknowledged version{}",
            writes.len(),
            if writes.len() == 1 { "" } else { "s" }
        ),
        (Claim::Lost { after, .. }, Field::Start) => time_text(*after, logical),
        (Claim::Lost { reads, .. }, _) => format!(
            "{} final read{}",
            reads.len(),
            if reads.len() == 1 { "" } else { "s" }
        ),
        (Claim::NotPrefix { prefix, .. }, _) => format!("{prefix:?}"),
        (Claim::Op(c), _) => phrase(c),
    }
}

// ---------------------------------------------------------------------------------------------
// Verification against the raw events

/// Checks one claim against a history's events (in any order; found by their `index`).
/// Independent of pairing and of how the claim was found: it reads the events themselves.
pub fn verify(claim: &Claim, events: &[Event]) -> Result<(), String> {
    let by_index: HashMap<u64, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.index, i))
        .collect();
    let verify_all = Verifier {
        events,
        by_index: &by_index,
    };
    verify_all.claim(claim)
}

/// Checks every claim of a sentence against the history, that its parts render to its
/// claims, that its text is exactly its parts, and that the glue holds no digits, processes,
/// nodes or times of its own.
pub fn verify_sentence(s: &Sentence, events: &[Event]) -> Result<(), String> {
    let by_index: HashMap<u64, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.index, i))
        .collect();
    let v = Verifier {
        events,
        by_index: &by_index,
    };
    for (i, c) in s.claims.iter().enumerate() {
        v.claim(c)
            .map_err(|e| format!("claim {i} ({c:?}) is false: {e}"))?;
    }
    let mut text = String::new();
    for p in &s.parts {
        match p {
            Part::Text(t) => {
                if let Some(ch) = t.chars().find(|c| c.is_ascii_digit()) {
                    return Err(format!("glue {t:?} carries a digit {ch:?} no claim backs"));
                }
                text.push_str(t);
            }
            Part::Ref {
                claim,
                field,
                text: t,
            } => {
                let c = s
                    .claims
                    .get(*claim)
                    .ok_or_else(|| format!("part refers to missing claim {claim}"))?;
                let want = render(c, *field, s.logical_time);
                if *t != want {
                    return Err(format!("part {t:?} is not the claim's rendering {want:?}"));
                }
                text.push_str(t);
            }
        }
    }
    if text != s.text {
        return Err(format!("text {:?} differs from its parts {text:?}", s.text));
    }
    Ok(())
}

struct Verifier<'a> {
    events: &'a [Event],
    by_index: &'a HashMap<u64, usize>,
}

impl Verifier<'_> {
    fn event(&self, index: u64) -> Result<&Event, String> {
        self.by_index
            .get(&index)
            .map(|&i| &self.events[i])
            .ok_or_else(|| format!("no event with index {index}"))
    }

    /// The invoke event and its completion: the next event of the same process after it.
    fn op(&self, invoke: u64) -> Result<(&Event, Option<&Event>), String> {
        let inv = self.event(invoke)?;
        if inv.kind != EventType::Invoke {
            return Err(format!("event {invoke} is not an invoke"));
        }
        let pos = self.by_index[&invoke];
        let done = self.events[pos + 1..]
            .iter()
            .find(|e| e.process == inv.process)
            .filter(|e| e.kind != EventType::Invoke);
        Ok((inv, done))
    }

    /// Non-failed ops on `key` and what they write (value), with (call, completion or None).
    fn writes(&self, key: &Option<String>) -> Vec<(u64, Value, u64, Option<u64>)> {
        let mut out = Vec::new();
        for e in self.events.iter().filter(|e| e.kind == EventType::Invoke) {
            if e.key != *key || e.process == Process::Nemesis {
                continue;
            }
            let written = match e.f.as_str() {
                "write" | "put" => Some(e.value.clone()),
                "cas" => e.value.as_array().and_then(|a| a.get(1)).cloned(),
                _ => None,
            };
            let Some(v) = written else { continue };
            let Ok((_, done)) = self.op(e.index) else {
                continue;
            };
            match done {
                Some(d) if d.kind == EventType::Fail => {}
                // A cas that ran and found another value wrote nothing.
                Some(d) if d.kind == EventType::Ok && d.value == Value::Bool(false) => {}
                Some(d) if d.kind == EventType::Ok => out.push((e.index, v, e.time, Some(d.time))),
                _ => out.push((e.index, v, e.time, None)),
            }
        }
        out
    }

    fn claim(&self, claim: &Claim) -> Result<(), String> {
        match claim {
            Claim::Op(c) => {
                let (inv, done) = self.op(c.invoke)?;
                let process = match inv.process {
                    Process::Client(p) => p,
                    Process::Nemesis => u64::MAX,
                };
                if process != c.process || inv.f != c.f || inv.time != c.call {
                    return Err(format!(
                        "invoke {} is p{process} {} at {}",
                        c.invoke, inv.f, inv.time
                    ));
                }
                if inv.key != c.key && done.map(|d| &d.key) != Some(&c.key) {
                    return Err("key differs".into());
                }
                if inv.value != c.input {
                    return Err(format!("input is {}", inv.value));
                }
                if done.map(|d| d.kind) != c.completion || done.map(|d| d.time) != c.end {
                    return Err(format!("completion is {done:?}"));
                }
                if let (Some(out), Some(d)) = (&c.output, done) {
                    if d.value != *out {
                        return Err(format!("result is {}", d.value));
                    }
                }
                let node = done
                    .and_then(|d| d.node.clone())
                    .or_else(|| inv.node.clone());
                if node != c.node {
                    return Err(format!("node is {node:?}"));
                }
                Ok(())
            }
            Claim::Gap { earlier, later, ns } => {
                let end = match self.op(*earlier)? {
                    (_, Some(d)) => d.time,
                    _ => return Err(format!("op {earlier} never completed")),
                };
                let call = self.event(*later)?.time;
                if call <= end || call - end != *ns {
                    return Err(format!(
                        "{later} invoked at {call}, {earlier} ended at {end}"
                    ));
                }
                Ok(())
            }
            Claim::Writers {
                key,
                value,
                writers,
                init,
            } => {
                let mut found: Vec<u64> = self
                    .writes(key)
                    .into_iter()
                    .filter(|w| w.1 == *value)
                    .map(|w| w.0)
                    .collect();
                found.sort_unstable();
                let mut want = writers.clone();
                want.sort_unstable();
                if found != want {
                    return Err(format!(
                        "writers of {value} are {found:?} (initial value {init})"
                    ));
                }
                Ok(())
            }
            Claim::Quiet {
                key,
                from,
                to,
                except,
            } => {
                for (w, _, call, end) in self.writes(key) {
                    let before = end.is_some_and(|e| e < *from);
                    let after = call > *to;
                    if !(before || after || except.contains(&w)) {
                        return Err(format!("write {w} may take effect between {from} and {to}"));
                    }
                }
                Ok(())
            }
            Claim::Fault {
                kind,
                start,
                at,
                description,
            } => {
                let starts = self.events.iter().filter(|e| {
                    e.process == Process::Nemesis
                        && e.time == *start
                        && e.f == format!("{kind}-start")
                });
                let start_ev = starts
                    .into_iter()
                    .find(|e| {
                        crate::cluster_state::FaultValue::deserialize(&e.value)
                            .map(|v| v.describe(kind) == *description)
                            .unwrap_or(false)
                    })
                    .ok_or_else(|| {
                        format!("no {kind}-start at {start} described {description:?}")
                    })?;
                if start_ev.time > *at {
                    return Err("fault started after the moment".into());
                }
                // Stops close the oldest open fault of their kind.
                let mut open: Vec<u64> = Vec::new();
                for e in self.events.iter().filter(|e| e.process == Process::Nemesis) {
                    if e.time > *at {
                        break;
                    }
                    if e.f == format!("{kind}-start") {
                        open.push(e.index);
                    } else if e.f == format!("{kind}-stop") && !open.is_empty() {
                        open.remove(0);
                    }
                }
                if !open.contains(&start_ev.index) {
                    return Err(format!("the {kind} fault had stopped by {at}"));
                }
                Ok(())
            }
            Claim::CutOff { node, from, at } => {
                let mut open: Vec<&Event> = Vec::new();
                for e in self.events.iter().filter(|e| e.process == Process::Nemesis) {
                    if e.time > *at {
                        break;
                    }
                    if e.f == "partition-start" {
                        open.push(e);
                    } else if e.f == "partition-stop" && !open.is_empty() {
                        open.remove(0);
                    }
                }
                for other in from {
                    let cut = open.iter().any(|e| {
                        let g = &e.value["grudge"];
                        let drops = |a: &str, b: &str| {
                            g[a].as_array()
                                .is_some_and(|s| s.iter().any(|x| x.as_str() == Some(b)))
                        };
                        drops(node, other) || drops(other, node)
                    });
                    if !cut {
                        return Err(format!("{node} could reach {other} at {at}"));
                    }
                }
                Ok(())
            }
            Claim::Leader { node, term, at } => {
                let last = self
                    .events
                    .iter()
                    .rfind(|e| {
                        e.process == Process::Nemesis
                            && e.f == crate::cluster_state::CLUSTER_STATUS_F
                            && e.time <= *at
                    })
                    .ok_or("no cluster-status before the moment")?;
                let s = &last.value["nodes"][node.as_str()];
                if s["role"] != "leader" || s["term"].as_u64() != Some(*term) {
                    return Err(format!("{node} reported {s}"));
                }
                Ok(())
            }
            Claim::State {
                model,
                init,
                order,
                state,
            } => {
                let ops = self.ops_of(order)?;
                match replay(*model, init, &ops) {
                    Ok(states) if states.last().unwrap_or(&init.clone()) == state => Ok(()),
                    Ok(states) => Err(format!("replay leaves {:?}", states.last())),
                    Err(i) => Err(format!("op {} is not legal in the replay", order[i])),
                }
            }
            Claim::Behind { key, read, writes } => {
                let (r, done) = self.op(*read)?;
                let Some(done) = done.filter(|d| d.kind == EventType::Ok) else {
                    return Err(format!("read {read} did not complete ok"));
                };
                let all = self.writes(key);
                let since = if done.value.is_null() {
                    None
                } else {
                    let w: Vec<_> = all.iter().filter(|w| w.1 == done.value).collect();
                    match w.as_slice() {
                        [one] => Some(one.3.ok_or("the write read is indeterminate")?),
                        _ => return Err(format!("{} is not written exactly once", done.value)),
                    }
                };
                let mut found: Vec<u64> = all
                    .iter()
                    .filter(|w| w.3.is_some_and(|e| e < r.time))
                    .filter(|w| since.is_none_or(|s| w.2 > s))
                    .map(|w| w.0)
                    .collect();
                found.sort_unstable();
                let mut want = writes.clone();
                want.sort_unstable();
                if found != want {
                    return Err(format!("newer acknowledged writes are {found:?}"));
                }
                Ok(())
            }
            Claim::Lost {
                key,
                write,
                after,
                reads,
            } => {
                let all = self.writes(key);
                if let Some(w) = all.iter().find(|w| w.3.unwrap_or(w.2) > *after) {
                    return Err(format!("write {} had not finished by {after}", w.0));
                }
                let (lost, _) = self.op(*write)?;
                let mut found = Vec::new();
                for e in self.events.iter().filter(|e| {
                    e.kind == EventType::Invoke
                        && e.key == *key
                        && matches!(e.f.as_str(), "read" | "get")
                        && e.time > *after
                }) {
                    let Some(done) = self.op(e.index)?.1.filter(|d| d.kind == EventType::Ok) else {
                        continue;
                    };
                    let writers: Vec<_> = all.iter().filter(|w| w.1 == done.value).collect();
                    let attributed =
                        done.value.is_null() || writers.iter().any(|w| w.2 <= done.time);
                    if !attributed {
                        continue;
                    }
                    let older = done.value.is_null()
                        || writers.iter().all(|w| w.3.is_some_and(|t| t < lost.time));
                    if !older {
                        return Err(format!("final read {} returned {}", e.index, done.value));
                    }
                    found.push(e.index);
                }
                let mut want = reads.clone();
                want.sort_unstable();
                found.sort_unstable();
                if found != want {
                    return Err(format!("final reads are {found:?}"));
                }
                Ok(())
            }
            Claim::Lacks { piece, value } => {
                if value.contains(piece.as_str()) {
                    return Err(format!("{value:?} contains {piece:?}"));
                }
                Ok(())
            }
            Claim::NotPrefix { prefix, value } => {
                if value.starts_with(prefix.as_str()) {
                    return Err(format!("{value:?} starts with {prefix:?}"));
                }
                Ok(())
            }
            Claim::NoReset { key, from, to } => {
                for e in self.events.iter().filter(|e| {
                    e.kind == EventType::Invoke
                        && e.key == *key
                        && matches!(e.f.as_str(), "put" | "write")
                }) {
                    let (_, done) = self.op(e.index)?;
                    match done {
                        Some(d) if d.kind == EventType::Fail => {}
                        Some(d) if d.kind == EventType::Ok && d.time < *from => {}
                        _ if e.time > *to => {}
                        _ => {
                            return Err(format!(
                                "{} {} may take effect between {from} and {to}",
                                e.f, e.index
                            ))
                        }
                    }
                }
                Ok(())
            }
            Claim::Illegal { model, op, state } => {
                let ops = self.ops_of(&[*op])?;
                if legal_in(*model, state, &ops[0]) {
                    return Err(format!("op {op} is legal in {state}"));
                }
                Ok(())
            }
        }
    }

    /// Rebuilds operations from their events (for the model claims).
    fn ops_of(&self, invokes: &[u64]) -> Result<Vec<Operation>, String> {
        invokes
            .iter()
            .enumerate()
            .map(|(id, &i)| {
                let (inv, done) = self.op(i)?;
                let ok = done.filter(|d| d.kind == EventType::Ok);
                Ok(Operation {
                    id,
                    process: inv.process,
                    f: inv.f.clone(),
                    key: inv.key.clone(),
                    input: inv.value.clone(),
                    output: ok.map(|d| d.value.clone()),
                    call: inv.time,
                    ret: ok.map(|d| d.time),
                    invoke_index: inv.index,
                    complete_index: done.map(|d| d.index),
                    end: done.map(|d| d.time),
                    failed: false,
                    node: None,
                    error: None,
                    line: 0,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Model replay (for the generic sentence, the drawing and the claims above)

/// Steps `ops` in order from `init`: the state after each, or the position of the first op
/// that is not legal (or that the model cannot interpret).
pub fn replay(model: ModelKind, init: &Value, ops: &[Operation]) -> Result<Vec<Value>, usize> {
    match model {
        ModelKind::Register => replay_with::<RegisterModel>(init, ops, None),
        ModelKind::CasRegister => replay_with::<CasRegisterModel>(init, ops, None),
        ModelKind::Kv => replay_with::<KvModel>(init, ops, None),
        ModelKind::MultiRegister => replay_with::<MultiRegisterModel>(init, ops, None),
    }
}

/// Is `op` legal in `state`?
pub fn legal_in(model: ModelKind, state: &Value, op: &Operation) -> bool {
    let ops = [op.clone()];
    let r = match model {
        ModelKind::Register => replay_with::<RegisterModel>(state, &ops, None),
        ModelKind::CasRegister => replay_with::<CasRegisterModel>(state, &ops, None),
        ModelKind::Kv => replay_with::<KvModel>(state, &ops, None),
        ModelKind::MultiRegister => replay_with::<MultiRegisterModel>(state, &ops, None),
    };
    r.is_ok()
}

fn replay_with<M: Prepare>(
    init: &Value,
    ops: &[Operation],
    _marker: Option<M>,
) -> Result<Vec<Value>, usize> {
    let mut ops: Vec<Operation> = ops.to_vec();
    for (id, op) in ops.iter_mut().enumerate() {
        op.id = id;
        // Replayed ops take effect: an indeterminate one is stepped as if it did.
        if op.ret.is_none() && !matches!(op.f.as_str(), "read" | "get") {
            op.ret = Some(op.end.unwrap_or(op.call));
        }
    }
    let refs: Vec<&Operation> = ops.iter().collect();
    // Nil is a value here: under `--nil-reads unknown` the explainer never sees nil reads
    // (see `explain_illegal`), exactly as the checker ignored them.
    let model_opts = ModelOptions {
        init,
        nil_reads: NilReads::Value,
    };
    let Ok(mut p) = M::prepare(&refs, &model_opts) else {
        return Err(0);
    };
    let mut state = p.model.init();
    let mut out = Vec::with_capacity(ops.len());
    let mut next = 0;
    for k in 0..ops.len() {
        // Ops the model skipped (reads without a result) constrain nothing.
        if p.ids.get(next) != Some(&k) {
            out.push(p.model.state_json(&state));
            continue;
        }
        state = p.model.step(&state, &p.ops[next]).ok_or(k)?;
        out.push(p.model.state_json(&state));
        next += 1;
    }
    Ok(out)
}

/// A real-time-respecting legal order of `required` plus any of `optional` (ops that may or
/// may not take effect), by depth-first search; indices into the concatenation. For small
/// sets (the minimal counterexample and the writes it depends on).
fn linearize(
    model: ModelKind,
    init: &Value,
    required: &[Operation],
    optional: &[Operation],
) -> Option<Vec<usize>> {
    let all: Vec<&Operation> = required.iter().chain(optional).collect();
    let n = all.len();
    if n > 24 {
        return None;
    }
    let search = Search {
        model,
        rets: (0..n)
            .map(|i| {
                if i < required.len() {
                    all[i].ret.unwrap_or(u64::MAX)
                } else {
                    u64::MAX
                }
            })
            .collect(),
        all,
        must: (1u32 << required.len()) - 1,
    };
    let mut seen: BTreeSet<(u32, String)> = BTreeSet::new();
    let mut order: Vec<usize> = Vec::new();
    search.dfs(0, init, &mut order, &mut seen).then_some(order)
}

/// The depth-first search of [`linearize`].
struct Search<'a> {
    model: ModelKind,
    all: Vec<&'a Operation>,
    /// Return time of each op; `u64::MAX` for optional ones (they bound nothing).
    rets: Vec<u64>,
    /// Bit set of the required ops.
    must: u32,
}

impl Search<'_> {
    fn dfs(
        &self,
        placed: u32,
        state: &Value,
        order: &mut Vec<usize>,
        seen: &mut BTreeSet<(u32, String)>,
    ) -> bool {
        if placed & self.must == self.must {
            return true;
        }
        if !seen.insert((placed, state.to_string())) {
            return false;
        }
        // The earliest return among required ops still unplaced bounds who may go next.
        let bound = (0..self.all.len())
            .filter(|&i| placed & (1 << i) == 0 && self.must & (1 << i) != 0)
            .map(|i| self.rets[i])
            .min()
            .unwrap_or(u64::MAX);
        // Required ops come first in `all`: an optional op (a write that may never take
        // effect) is placed only when the required ones cannot go on without it.
        for i in 0..self.all.len() {
            if placed & (1 << i) != 0 || self.all[i].call > bound {
                continue;
            }
            let Ok(states) = replay(self.model, state, &[self.all[i].clone()]) else {
                continue;
            };
            order.push(i);
            let s = states.last().cloned().unwrap_or(Value::Null);
            if self.dfs(placed | (1 << i), &s, order, seen) {
                return true;
            }
            order.pop();
        }
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Explanations of illegal keys

/// One step of a legal order, for drawing: the op and the state right after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Invoke index of the op.
    pub invoke_index: u64,
    /// Model state after it.
    pub state_after: Value,
}

/// An op the checker could not place next after its longest prefix, and whether it is at least
/// legal in the state there (then it is the orders *after* it that all fail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stuck {
    /// Invoke index.
    pub invoke_index: u64,
    /// Legal in the prefix's final state.
    pub legal_here: bool,
}

/// Why one key is not linearizable: its minimal counterexample and the sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyExplanation {
    /// The key (`None` for a single-register history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The model the key was checked against.
    pub model: ModelKind,
    /// Its initial value.
    pub init: Value,
    /// The minimal counterexample: the ops that must keep their recorded outcomes for the key
    /// to be illegal, by invoke time (empty when shrinking ran out of time).
    pub ops: Vec<Operation>,
    /// Position in `ops` of the op that cannot be placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<usize>,
    /// Relaxing any single op of `ops` was verified to make the key legal.
    pub one_minimal: bool,
    /// Other ops the sentence or the drawing refers to (writers of the values observed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<Operation>,
    /// A legal order of the set without the culprit (and of the context writes it needs),
    /// with the state after each op.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<Step>,
    /// The value where the culprit would go: after the ops of `order` that completed before it
    /// began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit_state: Option<Value>,
    /// The ops the checker's longest-prefix search could not place next, annotated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stuck: Vec<Stuck>,
    /// Why, in one sentence with its claims.
    pub sentence: Sentence,
    /// The anomaly's name (`stale read`, `new-old inversion`, ...), when a pattern matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl KeyExplanation {
    /// The op that cannot be placed.
    pub fn culprit(&self) -> Option<&Operation> {
        self.culprit.and_then(|i| self.ops.get(i))
    }
}

/// Explains every illegal key of `result` (in key order), sharing `budget` for shrinking.
pub fn explain_illegal(
    checked: &[Operation],
    result: &CheckResult,
    opts: &CheckOptions,
    observed: &Observed,
    budget: Duration,
) -> Vec<KeyExplanation> {
    let start = Instant::now();
    let illegal: Vec<_> = result
        .partitions
        .iter()
        .filter(|p| p.verdict == Verdict::Illegal)
        .collect();
    let logical = logical_time(observed);
    let opts = CheckOptions {
        model: Some(result.model),
        ..opts.clone()
    };
    let keys: Vec<Vec<Operation>> = illegal
        .iter()
        .map(|part| {
            let mut ops: Vec<Operation> = checked
                .iter()
                .filter(|o| !result.partitioned || o.key == part.key)
                .filter(|o| !(opts.nil_reads == NilReads::Unknown && is_nil_read(o)))
                .cloned()
                .collect();
            for (id, o) in ops.iter_mut().enumerate() {
                o.id = id;
            }
            ops
        })
        .collect();
    // Near the failure: the latest invoke among the ops the checker could not place.
    let anchor = |n: usize| {
        illegal[n]
            .counterexample
            .as_ref()
            .and_then(|c| c.unplaceable.iter().map(|u| u.op.call).max())
    };
    // Two rounds, so one hard key cannot starve the others: half the budget shared equally,
    // then what is left for the keys that did not finish.
    let n_keys = illegal.len().max(1) as u32;
    let mut found: Vec<Option<minimize::Minimal>> = (0..illegal.len())
        .map(|n| {
            let share = (budget / 2 / n_keys).min(budget.saturating_sub(start.elapsed()));
            (!share.is_zero())
                .then(|| minimize::minimize(&keys[n], &opts, anchor(n), Instant::now() + share))
                .flatten()
        })
        .collect();
    let unfinished: Vec<usize> = (0..found.len())
        .filter(|&n| found[n].as_ref().is_none_or(|m| !m.one_minimal))
        .collect();
    for (i, &n) in unfinished.iter().enumerate() {
        let left = budget.saturating_sub(start.elapsed());
        let share = left / (unfinished.len() - i) as u32;
        if share.is_zero() {
            break;
        }
        if let Some(m) = minimize::minimize(&keys[n], &opts, anchor(n), Instant::now() + share) {
            let better = match &found[n] {
                None => true,
                Some(old) => m.one_minimal || m.kept.len() < old.kept.len(),
            };
            if better {
                found[n] = Some(m);
            }
        }
    }
    let mut out = Vec::new();
    for (n, part) in illegal.iter().enumerate() {
        let ctx = Ctx {
            ops: &keys[n],
            opts: &opts,
            model: result.model,
            init: opts.init.clone(),
            observed,
            logical,
        };
        out.push(ctx.explain(
            part.key.clone(),
            found[n].take(),
            part.counterexample.as_ref(),
        ));
    }
    out
}

/// A read (or get) that returned nil: a value unknown under `--nil-reads unknown`.
fn is_nil_read(o: &Operation) -> bool {
    matches!(o.f.as_str(), "read" | "get") && o.output.as_ref().is_some_and(Value::is_null)
}

/// Histories imported without clocks number their events instead; real histories are in
/// nanoseconds, so times this small can only be positions.
pub fn logical_time(o: &Observed) -> bool {
    !o.ops.is_empty() && o.end <= 4 * o.ops.len() as u64 + 16
}

struct Ctx<'a> {
    /// Every op of the key the checker saw.
    ops: &'a [Operation],
    /// The check the culprit is confirmed with.
    opts: &'a CheckOptions,
    model: ModelKind,
    init: Value,
    observed: &'a Observed,
    logical: bool,
}

/// A kv value as text (`null` is the empty string, as the kv model reads it).
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What an op does to a register.
#[derive(Debug, Clone, PartialEq)]
enum Effect {
    Read(Value),
    Write(Value),
    Cas(Value, Value),
    CasMismatch(Value),
    Other,
}

fn effect(op: &Operation) -> Effect {
    match op.f.as_str() {
        "read" | "get" => match &op.output {
            Some(v) => Effect::Read(v.clone()),
            None => Effect::Other,
        },
        "write" | "put" => Effect::Write(op.input.clone()),
        "cas" => match &op.input {
            Value::Array(a) if a.len() == 2 => {
                if op.output == Some(Value::Bool(false)) {
                    Effect::CasMismatch(a[0].clone())
                } else {
                    Effect::Cas(a[0].clone(), a[1].clone())
                }
            }
            _ => Effect::Other,
        },
        _ => Effect::Other,
    }
}

/// The value an op may leave in the register.
fn writes(op: &Operation) -> Option<Value> {
    match effect(op) {
        Effect::Write(v) | Effect::Cas(_, v) => Some(v),
        _ => None,
    }
}

/// The value an op saw (read result, or the value a successful cas found).
fn observes(op: &Operation) -> Option<Value> {
    match effect(op) {
        Effect::Read(v) => Some(v),
        Effect::Cas(from, _) if op.ret.is_some() => Some(from),
        Effect::CasMismatch(from) if op.ret.is_some() => Some(from),
        _ => None,
    }
}

fn ret(op: &Operation) -> u64 {
    op.ret.unwrap_or(u64::MAX)
}

impl Ctx<'_> {
    /// The ops that can produce a value a read returned: its writers, and for kv the appends
    /// whose strings it contains.
    fn sources_of(&self, v: &Value) -> Vec<&Operation> {
        if self.model != ModelKind::Kv {
            return self.writers_of(v);
        }
        let got = text_of(v);
        self.ops
            .iter()
            .filter(|o| match o.f.as_str() {
                "append" => {
                    let piece = text_of(&o.input);
                    !piece.is_empty() && got.contains(&piece)
                }
                "put" | "write" => text_of(&o.input) == got,
                _ => false,
            })
            .collect()
    }

    fn writers_of(&self, v: &Value) -> Vec<&Operation> {
        self.ops
            .iter()
            .filter(|o| writes(o).as_ref() == Some(v))
            .collect()
    }

    fn explain(
        &self,
        key: Option<String>,
        min: Option<minimize::Minimal>,
        cx: Option<&Counterexample>,
    ) -> KeyExplanation {
        let stuck = cx.map(|c| self.stuck(c)).unwrap_or_default();
        let mut k = KeyExplanation {
            key: key.clone(),
            model: self.model,
            init: self.init.clone(),
            ops: Vec::new(),
            culprit: None,
            one_minimal: false,
            context: Vec::new(),
            order: Vec::new(),
            culprit_state: None,
            stuck,
            sentence: Sentence::new(self.logical),
            kind: None,
        };
        let Some(min) = min else {
            k.sentence
                .text("No legal order exists for this key, but the time budget ran out before the counterexample could be shrunk; the longest legal prefix the checker found is shown instead.");
            return k;
        };
        k.one_minimal = min.one_minimal;
        let mut kept = min.kept.clone();
        let culprit = self.culprit(&mut kept, k.one_minimal);
        k.ops = kept.iter().map(|&i| self.ops[i].clone()).collect();
        k.culprit = culprit.filter(|_| !k.ops.is_empty());
        let Some(mut culprit) = k.culprit else {
            k.sentence.text("No legal order exists for this key, but the time budget ran out before the counterexample could be shrunk to an operation that provably cannot be placed; the longest legal prefix the checker found is shown instead.");
            return k;
        };
        // In a 1-minimal set every observation is one that cannot be placed; blame the last
        // one a pattern explains (a stale read before a cas that pins the value), else the
        // last one.
        if k.one_minimal {
            let pos_of = |inv: u64| k.ops.iter().position(|o| o.invoke_index == inv);
            let explained = (0..k.ops.len()).rev().find(|&i| {
                observes(&k.ops[i]).is_some() && {
                    let mut probe = Sentence::new(self.logical);
                    self.pattern(&mut probe, &k, &k.ops[i]).is_some()
                }
            });
            if let Some(i) = explained.and_then(|i| pos_of(k.ops[i].invoke_index)) {
                culprit = i;
                k.culprit = Some(i);
            }
        }
        let c = k.ops[culprit].clone();
        // The writes of the observed values, for the drawing and the order.
        let mut context: Vec<Operation> = Vec::new();
        for op in &k.ops {
            if let Some(v) = observes(op) {
                for w in self.sources_of(&v) {
                    if !k.ops.iter().any(|o| o.invoke_index == w.invoke_index)
                        && !context.iter().any(|o| o.invoke_index == w.invoke_index)
                        && context.len() < 8
                    {
                        context.push(w.clone());
                    }
                }
            }
        }
        context.sort_by_key(|o| o.call);
        let others: Vec<Operation> = k
            .ops
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != culprit)
            .map(|(_, o)| o.clone())
            .collect();
        // Context writes are relaxed in the counterexample: they may take effect or not.
        let optional: Vec<Operation> = context
            .iter()
            .map(|o| {
                let mut r = o.clone();
                r.ret = None;
                r.output = None;
                r
            })
            .collect();
        if let Some(order) = linearize(self.model, &self.init, &others, &optional) {
            let seq: Vec<Operation> = order
                .iter()
                .map(|&i| {
                    if i < others.len() {
                        others[i].clone()
                    } else {
                        context[i - others.len()].clone()
                    }
                })
                .collect();
            if let Ok(states) = replay(self.model, &self.init, &seq) {
                k.order = seq
                    .iter()
                    .zip(&states)
                    .map(|(o, s)| Step {
                        invoke_index: o.invoke_index,
                        state_after: s.clone(),
                    })
                    .collect();
                // The value where the culprit would go: after the ops of the order that
                // completed before it began.
                let at = seq.iter().rposition(|o| ret(o) < c.call);
                k.culprit_state = Some(at.map_or(self.init.clone(), |i| states[i].clone()));
            }
        }
        k.context = context;
        let (sentence, kind) = self.sentence(&k, &c);
        k.sentence = sentence;
        k.kind = kind;
        k
    }

    /// The position in `kept` (positions into the key's ops, by invoke) of the op that cannot
    /// be placed: the last observation whose removal makes the set legal. In a 1-minimal set
    /// that is the last observation; otherwise each candidate is checked, and one whose
    /// removal leaves the set illegal was not needed and is dropped from it.
    fn culprit(&self, kept: &mut Vec<usize>, one_minimal: bool) -> Option<usize> {
        let last_observation = |kept: &[usize]| {
            (0..kept.len())
                .rev()
                .filter(|&i| observes(&self.ops[kept[i]]).is_some())
                .collect::<Vec<usize>>()
        };
        if one_minimal {
            return last_observation(kept).first().copied();
        }
        let opts = CheckOptions {
            timeout: Some(Duration::from_secs(5)),
            ..self.opts.clone()
        };
        'shrink: loop {
            for i in last_observation(kept) {
                let mut mask = vec![false; self.ops.len()];
                for (j, &k) in kept.iter().enumerate() {
                    mask[k] = j != i;
                }
                let sub = minimize::relaxed(self.ops, &mask);
                match crate::linearizable::check(&sub, &opts).map(|r| r.verdict) {
                    Ok(Verdict::Linearizable) => return Some(i),
                    Ok(Verdict::Illegal) => {
                        kept.remove(i);
                        continue 'shrink;
                    }
                    _ => {}
                }
            }
            return None;
        }
    }

    /// Annotates the checker's longest-prefix candidates with whether each is legal there.
    fn stuck(&self, cx: &Counterexample) -> Vec<Stuck> {
        let prefix: Vec<Operation> = cx.prefix.iter().map(|c| c.op.clone()).collect();
        let state = match replay(self.model, &self.init, &prefix) {
            Ok(s) => s.last().cloned().unwrap_or(self.init.clone()),
            Err(_) => cx.state.clone(),
        };
        cx.unplaceable
            .iter()
            .map(|u| Stuck {
                invoke_index: u.op.invoke_index,
                legal_here: legal_in(self.model, &state, &u.op),
            })
            .collect()
    }

    /// The sentence for the minimal set (see the module doc for the patterns).
    fn sentence(&self, k: &KeyExplanation, c: &Operation) -> (Sentence, Option<String>) {
        let mut s = Sentence::new(self.logical);
        let kind = self.pattern(&mut s, k, c);
        if kind.is_none() {
            s = Sentence::new(self.logical);
            self.generic(&mut s, k, c);
        }
        self.fault_context(&mut s, c);
        (s, kind)
    }

    /// The pattern of the model that explains `c`, if one does.
    fn pattern(&self, s: &mut Sentence, k: &KeyExplanation, c: &Operation) -> Option<String> {
        if matches!(self.model, ModelKind::Kv) {
            self.kv_pattern(s, k, c)
        } else {
            self.register_pattern(s, k, c)
        }
    }

    /// The kv patterns (strings only grow by append, so once a piece or a prefix was seen it
    /// stays until a put replaces the value): a get that lacks a piece appended before it
    /// began, or a get that does not start with what an earlier completed get returned.
    fn kv_pattern(&self, s: &mut Sentence, k: &KeyExplanation, c: &Operation) -> Option<String> {
        let got = match (c.f.as_str(), &c.output) {
            ("get" | "read", Some(v)) => text_of(v),
            _ => return None,
        };
        let no_reset = |from: u64| {
            self.ops.iter().all(|w| {
                !matches!(w.f.as_str(), "put" | "write") || ret(w) < from || w.call > ret(c)
            })
        };
        // A piece appended (and acknowledged) before the get began, missing from it.
        let lost = k.ops.iter().find(|a| {
            a.f == "append"
                && a.ret.is_some_and(|r| r < c.call)
                && !text_of(&a.input).is_empty()
                && !got.contains(&text_of(&a.input))
                && no_reset(a.call)
        });
        if let Some(a) = lost {
            let li = s.claim(Claim::Lacks {
                piece: text_of(&a.input),
                value: got.clone(),
            });
            s.began_after(c, a);
            s.text(" was acknowledged, yet its value lacks ")
                .show(li, Field::Value);
            self.no_reset_tail(s, c, a.call, "get's");
            return Some("stale read".into());
        }
        // A get that completed before this one began and saw a value this one does not extend.
        let before = k.ops.iter().find(|r| {
            r.invoke_index != c.invoke_index
                && matches!(r.f.as_str(), "get" | "read")
                && ret(r) < c.call
                && r.output
                    .as_ref()
                    .is_some_and(|v| !got.starts_with(&text_of(v)))
                && no_reset(r.call)
        });
        if let Some(r) = before {
            let pi = s.claim(Claim::NotPrefix {
                prefix: r.output.as_ref().map(text_of).unwrap_or_default(),
                value: got.clone(),
            });
            s.began_after(c, r);
            s.text(" had completed, yet its value does not start with ")
                .show(pi, Field::Value);
            self.no_reset_tail(s, c, r.call, "second get's");
            return Some("new-old inversion".into());
        }
        None
    }

    /// `: appends only extend the value, and no put could replace it between {from} and the
    /// {whose} completion.`
    fn no_reset_tail(&self, s: &mut Sentence, c: &Operation, from: u64, whose: &str) {
        let qi = s.claim(Claim::NoReset {
            key: c.key.clone(),
            from,
            to: ret(c),
        });
        s.text(": appends only extend the value, and no put could replace it between ")
            .show(qi, Field::Value)
            .text(" and the ")
            .text(whose)
            .text(" completion.");
    }

    /// Tries the register patterns; fills `s` and returns the anomaly's name when one applies.
    fn register_pattern(
        &self,
        s: &mut Sentence,
        k: &KeyExplanation,
        c: &Operation,
    ) -> Option<String> {
        let effect_c = effect(c);
        if let Effect::CasMismatch(from) = &effect_c {
            return self.mismatch_pattern(s, k, c, from);
        }
        let v = observes(c)?;
        let writers = self.writers_of(&v);
        let is_init = v == self.init;
        let what = if matches!(effect_c, Effect::Read(_)) {
            "returned"
        } else {
            "found"
        };
        // Never written.
        if writers.is_empty() && !is_init {
            let ci = s.claim(op_claim(c));
            s.show(ci, Field::Phrase).text(&format!(" {what} "));
            let wi = s.claim(self.writers_claim(c, &v, &[]));
            s.show(wi, Field::Value)
                .text(", a value no operation on this key ever wrote, and not the initial value.");
            return Some("read of a value never written".into());
        }
        // Only written after it completed.
        if !is_init && writers.iter().all(|w| w.call > ret(c)) {
            let first = writers.iter().min_by_key(|w| w.call)?;
            let ci = s.claim(op_claim(c));
            let wi = s.claim(self.writers_claim(c, &v, &writers));
            let fi = s.claim(op_claim(first));
            s.show(ci, Field::Phrase)
                .text(&format!(" {what} "))
                .show(wi, Field::Value)
                .text(" when it completed at ")
                .show(ci, Field::End)
                .text(", before any operation wrote it: the first, ")
                .show(fi, Field::Phrase)
                .text(", began only at ")
                .show(fi, Field::Call)
                .text(".");
            return Some("read from the future".into());
        }
        // Stale: an op acknowledged before c began had replaced the value for good.
        let overwrite = k
            .ops
            .iter()
            .filter(|o| o.invoke_index != c.invoke_index && ret(o) < c.call)
            .filter(|o| match effect(o) {
                Effect::Write(u) => u != v,
                Effect::Cas(_, u) => u != v,
                _ => false,
            })
            .filter(|o| self.no_way_back(o, c, &v))
            .max_by_key(|o| ret(o));
        if let Some(o) = overwrite {
            let wi = s.claim(self.writers_claim(c, &v, &writers));
            s.began_after(c, o);
            s.text(" was acknowledged, yet it ")
                .text(what)
                .text(" ")
                .show(wi, Field::Value);
            let from_v = matches!(effect(o), Effect::Cas(ref f, _) if *f == v);
            if from_v && writers.len() + usize::from(is_init) <= 1 {
                // The cas consumed the only source of v.
                match writers.first() {
                    Some(w) => {
                        let wo = s.claim(op_claim(w));
                        s.text(": that cas had replaced it, and the only write of ")
                            .show(wi, Field::Value)
                            .text(" was ")
                            .show(wo, Field::Phrase);
                    }
                    None => {
                        s.text(", the initial value, which that cas had replaced and no operation wrote back");
                    }
                }
            } else if writers.is_empty() {
                s.text(", the initial value, which no operation wrote back");
            } else {
                if writers.len() == 1 {
                    s.text(": the only write of ")
                        .show(wi, Field::Value)
                        .text(", ");
                } else {
                    s.text(": no write of ")
                        .show(wi, Field::Value)
                        .text(" could take effect after that and before the read (");
                }
                for (n, w) in writers.iter().enumerate() {
                    if n > 0 {
                        s.text("; ");
                    }
                    let wo = s.claim(op_claim(w));
                    s.show(wo, Field::Phrase);
                    if w.call > ret(c) {
                        let g = s.claim(Claim::Gap {
                            earlier: c.invoke_index,
                            later: w.invoke_index,
                            ns: w.call - ret(c),
                        });
                        s.text(", began ")
                            .show(g, Field::Gap)
                            .text(" after the read completed");
                    } else {
                        let g = s.claim(Claim::Gap {
                            earlier: w.invoke_index,
                            later: o.invoke_index,
                            ns: o.call - ret(w),
                        });
                        s.text(", was acknowledged ")
                            .show(g, Field::Gap)
                            .text(" before the overwrite began");
                    }
                }
                if writers.len() > 1 {
                    s.text(")");
                }
                if is_init {
                    s.text("; it was also the initial value");
                }
            }
            s.text(".");
            let name = if matches!(effect(c), Effect::Read(_)) {
                "stale read"
            } else {
                "lost update (cas on a stale value)"
            };
            return Some(name.into());
        }
        // New-old inversion: a read that completed before c began returned a newer value.
        let newer = k.ops.iter().find_map(|r| {
            let Effect::Read(u) = effect(r) else {
                return None;
            };
            if r.invoke_index == c.invoke_index || ret(r) >= c.call || u == v {
                return None;
            }
            let wu = self.writers_of(&u);
            let [wu] = wu.as_slice() else {
                return None;
            };
            let older = writers.iter().all(|w| ret(w) < wu.call || w.call > ret(c));
            (older && !is_init).then(|| (r.clone(), (*wu).clone()))
        });
        if let Some((r, wu)) = newer {
            let wui = s.claim(op_claim(&wu));
            let u = writes(&wu).unwrap_or(Value::Null);
            let uw = s.claim(self.writers_claim(c, &u, &[&wu]));
            let vw = s.claim(self.writers_claim(c, &v, &writers));
            s.began_after(c, &r);
            s.text(" had completed, yet it returned the older ")
                .show(vw, Field::Value)
                .text(": ")
                .show(uw, Field::Value)
                .text(" was written only by ")
                .show(wui, Field::Phrase)
                .text(", which began after every write of ")
                .show(vw, Field::Value)
                .text(" had been acknowledged");
            // Each write of v either was acknowledged before wu began or began after c
            // completed (then it is no write c could have seen).
            for w in &writers {
                if w.call > ret(c) {
                    s.claim(Claim::Gap {
                        earlier: c.invoke_index,
                        later: w.invoke_index,
                        ns: w.call - ret(c),
                    });
                } else {
                    s.claim(Claim::Gap {
                        earlier: w.invoke_index,
                        later: wu.invoke_index,
                        ns: wu.call - ret(w),
                    });
                }
            }
            s.text(", so once ")
                .show(uw, Field::Value)
                .text(" was visible ")
                .show(vw, Field::Value)
                .text(" could not come back.");
            return Some("new-old inversion".into());
        }
        None
    }

    /// Can no write of `v` take effect after `o` and before `c`? (`o` replaced `v`.)
    fn no_way_back(&self, o: &Operation, c: &Operation, v: &Value) -> bool {
        let writers = self.writers_of(v);
        let sources = writers.len() + usize::from(*v == self.init);
        if let Effect::Cas(from, _) = effect(o) {
            if from == *v && sources <= 1 {
                return true;
            }
        }
        writers.iter().all(|w| ret(w) < o.call || w.call > ret(c))
    }

    fn writers_claim(&self, c: &Operation, v: &Value, writers: &[&Operation]) -> Claim {
        Claim::Writers {
            key: c.key.clone(),
            value: v.clone(),
            writers: writers.iter().map(|w| w.invoke_index).collect(),
            init: self.init.clone(),
        }
    }

    /// A cas that found a different value although the register provably held `from`: a write
    /// of `from` was acknowledged before the cas began, and no other write could take effect
    /// from that write's invoke to the cas's completion.
    fn mismatch_pattern(
        &self,
        s: &mut Sentence,
        k: &KeyExplanation,
        c: &Operation,
        from: &Value,
    ) -> Option<String> {
        let o = k
            .ops
            .iter()
            .chain(&k.context)
            .filter(|o| o.ret.is_some() && ret(o) < c.call && writes(o).as_ref() == Some(from))
            .max_by_key(|o| ret(o))?;
        let quiet = self.ops.iter().all(|w| {
            writes(w).is_none()
                || w.invoke_index == o.invoke_index
                || ret(w) < o.call
                || w.call > ret(c)
        });
        if !quiet {
            return None;
        }
        let qi = s.claim(Claim::Quiet {
            key: c.key.clone(),
            from: o.call,
            to: ret(c),
            except: vec![o.invoke_index],
        });
        s.began_after(c, o);
        s.text(
            " was acknowledged, yet it found a value other than the one it expected, and no \
                other write could take effect between ",
        )
        .show(qi, Field::Value)
        .text(" and the cas's completion.");
        Some("cas mismatch on the current value".into())
    }

    /// The generic sentence: one legal order of the others, its state, and the culprit not
    /// legal there.
    fn generic(&self, s: &mut Sentence, k: &KeyExplanation, c: &Operation) {
        let ci = s.claim(op_claim(c));
        s.show(ci, Field::Phrase)
            .text(" (")
            .show(ci, Field::Call)
            .text(" to ")
            .show(ci, Field::End)
            .text(") cannot be placed. ");
        let last = k.order.last().map(|st| st.state_after.clone());
        match (last.as_ref(), k.order.is_empty()) {
            (Some(state), false) => {
                let order: Vec<u64> = k.order.iter().map(|st| st.invoke_index).collect();
                let st = s.claim(Claim::State {
                    model: self.model,
                    init: self.init.clone(),
                    order: order.clone(),
                    state: state.clone(),
                });
                s.text("One order of the others that respects real time, ");
                let all: Vec<&Operation> = k.ops.iter().chain(&k.context).collect();
                for (n, inv) in order.iter().enumerate() {
                    if n > 0 {
                        s.text(if n + 1 == order.len() { " and " } else { ", " });
                    }
                    if let Some(op) = all.iter().find(|o| o.invoke_index == *inv) {
                        let oi = s.claim(op_claim(op));
                        s.show(oi, Field::Phrase);
                    }
                }
                s.text(", leaves ").show(st, Field::Value);
                let il = s.claim(Claim::Illegal {
                    model: self.model,
                    op: c.invoke_index,
                    state: state.clone(),
                });
                let _ = il;
                s.text(", where it is not legal; the checker tried every other order of these operations, and none works either.");
            }
            _ => {
                s.text(
                    "The checker found no order of these operations, letting every other \
                        operation of the key take effect at any time after its invoke or never, \
                        in which it is legal, and without it they have one.",
                );
            }
        }
    }

    /// Appends the faults active when the culprit began, who its node could not reach, and
    /// who claimed to lead.
    fn fault_context(&self, s: &mut Sentence, c: &Operation) {
        let at = c.call;
        let faults: Vec<_> = self
            .observed
            .faults
            .iter()
            .filter(|f| f.active_at(at))
            .collect();
        if faults.is_empty() {
            if !self.observed.faults.is_empty() {
                s.text(" No fault was active when it began.");
            }
            return;
        }
        s.text(" When it began, ");
        for (n, f) in faults.iter().enumerate() {
            if n > 0 {
                s.text(n_sep(n, faults.len()));
            }
            let fi = s.claim(Claim::Fault {
                kind: f.kind.clone(),
                start: f.start,
                at,
                description: f.describe(),
            });
            s.show(fi, Field::Description)
                .text(" had been active since ")
                .show(fi, Field::Start);
        }
        let node = c.node.as_deref();
        let cut = node
            .and_then(|n| self.observed.cluster.at(n, at))
            .map(|sp| sp.cut_off_from.clone());
        if let (Some(n), Some(cut)) = (node, cut.filter(|c| !c.is_empty())) {
            let k = s.claim(Claim::CutOff {
                node: n.to_string(),
                from: cut,
                at,
            });
            s.text("; ")
                .show(k, Field::Node)
                .text(" could not reach ")
                .show(k, Field::Value);
        }
        let leaders = self.observed.cluster.leaders_at(at);
        if !leaders.is_empty() {
            s.text("; ");
            for (n, (leader, term)) in leaders.iter().enumerate() {
                if n > 0 {
                    s.text(" and ");
                }
                let li = s.claim(Claim::Leader {
                    node: leader.clone(),
                    term: *term,
                    at,
                });
                s.show(li, Field::Node)
                    .text(" claimed to lead (term ")
                    .show(li, Field::Term)
                    .text(")");
            }
        }
        s.text(".");
    }
}

fn n_sep(n: usize, len: usize) -> &'static str {
    if n + 1 == len {
        " and "
    } else {
        ", "
    }
}
