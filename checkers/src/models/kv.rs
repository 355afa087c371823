//! The kv model: one string register per key with get, put and append (Porcupine's kv model).
//!
//! The checker partitions by key, so one model instance holds one key's value; the
//! unpartitioned view is a [`crate::model::Product`] of these.
//!
//! States are ids of nodes, never copied strings, and what a node is follows from one
//! observation: only gets look at the value, so a value matters only while it is a prefix of
//! some get's result. The distinct results are kept sorted, so the results starting with any
//! string form one contiguous run `results[lo..hi]`.
//! - A *live* value is a prefix of some result: the first `len` bytes of `results[lo]`. The pair
//!   `(lo, len)` names it uniquely, so equal live values get the same id and a get is legal iff
//!   the state id equals the id of its result. Appending text to a live value narrows its run
//!   by binary search (no string is built).
//! - A *dead* value is a prefix of no result. No get is legal in it, an append keeps it dead
//!   (a longer string cannot become a prefix when it was not one), and a put replaces it, so
//!   all dead values behave alike: [`Model::representative`] maps them to one class and the
//!   search explores each configuration once for all of them. They are kept as nodes
//!   (a put's text, or a dead value plus an appended text) only to print counterexamples.
//!
//! Without that class, a 50-client history explores every order of the appends no get ever
//! observed (each order is a different string): millions of states where one suffices.

use super::FxMap;
use crate::history::Operation;
use crate::model::{Model, ModelError, ModelOptions, Prepare, Prepared};
use serde_json::Value;

/// A kv op on one key, its values as ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp {
    /// A get; the id of the state its result names.
    Get(u32),
    /// A put; the id of the state it sets.
    Put(u32),
    /// An append of this text (an index into the model's texts).
    Append(u32),
}

/// What a state id stands for.
#[derive(Debug, Clone, Copy)]
enum Node {
    /// The class of every dead value (a memo key only, never a state of the search).
    DeadClass,
    /// The first `len` bytes of `results[lo]`; `results[lo..hi]` are the results starting so.
    Live { lo: u32, hi: u32, len: u32 },
    /// A dead value given whole: a put's text or the initial value.
    Text(u32),
    /// A dead value: `base` followed by text `text`.
    Concat { base: u32, text: u32 },
}

/// The id of [`Node::DeadClass`].
const DEAD_CLASS: u32 = 0;

/// One key's string value. The state is a node id (see the module doc).
#[derive(Debug)]
pub struct KvModel {
    /// Every get's result, distinct and sorted.
    results: Vec<Box<str>>,
    /// The texts of puts and appends, and the initial value.
    texts: Vec<Box<str>>,
    nodes: Vec<Node>,
    /// (lo, len) → id of the live node.
    live: FxMap<(u32, u32), u32>,
    /// (state, text) → the state after appending text: each transition is computed once.
    appended: FxMap<(u32, u32), u32>,
    init: u32,
}

impl KvModel {
    fn new(results: Vec<Box<str>>) -> Self {
        KvModel {
            results,
            texts: Vec::new(),
            nodes: vec![Node::DeadClass],
            live: FxMap::default(),
            appended: FxMap::default(),
            init: DEAD_CLASS,
        }
    }

    fn push(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    fn live_node(&mut self, lo: usize, hi: usize, len: usize) -> u32 {
        let key = (lo as u32, len as u32);
        if let Some(&id) = self.live.get(&key) {
            return id;
        }
        let id = self.push(Node::Live {
            lo: lo as u32,
            hi: hi as u32,
            len: len as u32,
        });
        self.live.insert(key, id);
        id
    }

    /// Within `results[lo..hi]`, which all share their first `len` bytes, the run whose
    /// bytes from `len` on start with `more`.
    fn narrow(&self, lo: usize, hi: usize, len: usize, more: &str) -> Option<(usize, usize)> {
        fn tail(r: &str, len: usize) -> &[u8] {
            &r.as_bytes()[len..]
        }
        let run = &self.results[lo..hi];
        let start = run.partition_point(|r| tail(r, len) < more.as_bytes());
        let rest = &run[start..];
        let end = rest.partition_point(|r| tail(r, len).starts_with(more.as_bytes()));
        (end > 0).then_some((lo + start, lo + start + end))
    }

    /// The state whose value is text `t` (a put's value, the initial value, a get's result).
    fn state_of_text(&mut self, t: u32) -> u32 {
        let text = &self.texts[t as usize];
        let len = text.len();
        match self.narrow(0, self.results.len(), 0, text) {
            Some((lo, hi)) => self.live_node(lo, hi, len),
            None => self.push(Node::Text(t)),
        }
    }

    fn append(&mut self, state: u32, t: u32) -> u32 {
        if self.texts[t as usize].is_empty() {
            return state;
        }
        if let Some(&next) = self.appended.get(&(state, t)) {
            return next;
        }
        let next = match self.nodes[state as usize] {
            Node::Live { lo, hi, len } => {
                let text = &self.texts[t as usize];
                let (lo, hi, len) = (lo as usize, hi as usize, len as usize);
                match self.narrow(lo, hi, len, text) {
                    Some((lo, hi)) => {
                        let len = len + text.len();
                        self.live_node(lo, hi, len)
                    }
                    None => self.push(Node::Concat {
                        base: state,
                        text: t,
                    }),
                }
            }
            Node::DeadClass => DEAD_CLASS,
            Node::Text(_) | Node::Concat { .. } => self.push(Node::Concat {
                base: state,
                text: t,
            }),
        };
        self.appended.insert((state, t), next);
        next
    }

    /// The value of a state, spelled out.
    pub fn string(&self, state: u32) -> String {
        let mut tail: Vec<&str> = Vec::new();
        let mut at = state;
        let head: &str = loop {
            match self.nodes[at as usize] {
                Node::DeadClass => break "(any value no get returned)",
                Node::Live { lo, len, .. } => break &self.results[lo as usize][..len as usize],
                Node::Text(t) => break &self.texts[t as usize],
                Node::Concat { base, text } => {
                    tail.push(&self.texts[text as usize]);
                    at = base;
                }
            }
        };
        let mut out =
            String::with_capacity(head.len() + tail.iter().map(|t| t.len()).sum::<usize>());
        out.push_str(head);
        for t in tail.iter().rev() {
            out.push_str(t);
        }
        out
    }

    /// True when the value of `prefix` is a prefix of the value of live state `of`.
    fn is_prefix(&self, prefix: u32, of: u32) -> bool {
        match (self.nodes[prefix as usize], self.nodes[of as usize]) {
            (
                Node::Live { lo, hi, len },
                Node::Live {
                    lo: v, len: vlen, ..
                },
            ) => (lo..hi).contains(&v) && len <= vlen,
            _ => false,
        }
    }
}

fn as_string(op: &Operation, v: &Value, what: &str) -> Result<String, ModelError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(ModelError::new(op, format!("{what} must be a string"))),
    }
}

/// An op as read from the history, before the model exists.
enum Raw {
    Get(String),
    Put(String),
    Append(String),
}

impl Prepare for KvModel {
    fn prepare(ops: &[&Operation], opts: &ModelOptions<'_>) -> Result<Prepared<Self>, ModelError> {
        let init = opts.init;
        let init = match init {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut conv: Vec<(usize, Raw, bool)> = Vec::with_capacity(ops.len());
        for op in ops {
            let indeterminate = op.is_indeterminate();
            let raw = match op.f.as_str() {
                "get" | "read" => {
                    if indeterminate {
                        continue; // an unknown get constrains nothing
                    }
                    match op.output.as_ref() {
                        None | Some(Value::Null) => Raw::Get(init.clone()),
                        Some(v) => Raw::Get(as_string(op, v, "a get's result")?),
                    }
                }
                "put" | "write" => Raw::Put(as_string(op, &op.input, "a put's value")?),
                "append" => Raw::Append(as_string(op, &op.input, "an append's value")?),
                other => {
                    return Err(ModelError::new(
                        op,
                        format!("unknown function {other:?} for kv (get, put, append)"),
                    ))
                }
            };
            conv.push((op.id, raw, indeterminate));
        }
        let mut results: Vec<Box<str>> = conv
            .iter()
            .filter_map(|(_, r, _)| match r {
                Raw::Get(s) => Some(s.as_str().into()),
                _ => None,
            })
            .collect();
        results.sort_unstable();
        results.dedup();
        let mut m = KvModel::new(results);
        // Each distinct text is stored once, and the state it names is found once.
        let mut text_ids: FxMap<String, u32> = FxMap::default();
        let mut states: Vec<Option<u32>> = Vec::new();
        let mut text = |m: &mut KvModel, s: String| -> u32 {
            let next = m.texts.len() as u32;
            *text_ids.entry(s).or_insert_with_key(|s| {
                m.texts.push(s.as_str().into());
                next
            })
        };
        let mut state = |m: &mut KvModel, t: u32| -> u32 {
            if states.len() <= t as usize {
                states.resize(t as usize + 1, None);
            }
            *states[t as usize].get_or_insert_with(|| m.state_of_text(t))
        };
        let init_text = text(&mut m, init);
        m.init = state(&mut m, init_text);
        let mut p = Prepared {
            ops: Vec::with_capacity(conv.len()),
            ids: Vec::with_capacity(conv.len()),
            dropped: Vec::new(),
            violation: None,
            model: m,
        };
        for (id, raw, indeterminate) in conv {
            // An indeterminate put/append whose string occurs in no get's result can be
            // dropped: wherever it took effect, every get before the next put would contain that
            // string, and there is none; dropping it changes no observed value.
            if indeterminate {
                let (s, is_append) = match &raw {
                    Raw::Put(s) => (s, false),
                    Raw::Append(s) => (s, true),
                    Raw::Get(_) => unreachable!("indeterminate gets are skipped"),
                };
                let results = &p.model.results;
                let unobserved = is_append && s.is_empty()
                    || (!s.is_empty() && !results.iter().any(|r| r.contains(s.as_str())));
                if unobserved {
                    p.dropped.push(id);
                    continue;
                }
            }
            let kop = match raw {
                Raw::Get(s) => {
                    let t = text(&mut p.model, s);
                    KvOp::Get(state(&mut p.model, t))
                }
                Raw::Put(s) => {
                    let t = text(&mut p.model, s);
                    KvOp::Put(state(&mut p.model, t))
                }
                Raw::Append(s) => KvOp::Append(text(&mut p.model, s)),
            };
            p.ops.push(kop);
            p.ids.push(id);
        }
        Ok(p)
    }
}

impl Model for KvModel {
    type State = u32;
    type Op = KvOp;
    fn init(&self) -> u32 {
        self.init
    }
    fn step(&mut self, state: &u32, op: &KvOp) -> Option<u32> {
        match *op {
            KvOp::Get(v) => (v == *state).then_some(*state),
            KvOp::Put(v) => Some(v),
            KvOp::Append(t) => Some(self.append(*state, t)),
        }
    }
    fn describe_op(&self, op: &KvOp) -> String {
        match *op {
            KvOp::Get(v) => format!("get() -> {:?}", self.string(v)),
            KvOp::Put(v) => format!("put({:?})", self.string(v)),
            KvOp::Append(t) => format!("append({:?})", &self.texts[t as usize]),
        }
    }
    fn state_json(&self, state: &u32) -> Value {
        Value::String(self.string(*state))
    }
    fn is_observer(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get(_))
    }
    fn representative(&mut self, state: &u32) -> u32 {
        match self.nodes[*state as usize] {
            Node::Live { .. } => *state,
            _ => DEAD_CLASS,
        }
    }
    fn memory_bytes(&self) -> usize {
        let strings: usize = self
            .results
            .iter()
            .chain(&self.texts)
            .map(|s| s.len() + 16)
            .sum();
        strings
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + (self.live.capacity() + self.appended.capacity()) * 16
    }
    fn can_reach(
        &mut self,
        state: &u32,
        target: &KvOp,
        window: &mut dyn Iterator<Item = &KvOp>,
    ) -> bool {
        // Appends only extend the value, so a get's result is reachable only by appends that
        // continue the current value exactly, or after a put of a prefix of that result.
        let KvOp::Get(want) = *target else {
            return true;
        };
        if want == *state {
            return true;
        }
        let Node::Live {
            lo: v, len: vlen, ..
        } = self.nodes[want as usize]
        else {
            return true; // a get's result is always live; be safe otherwise
        };
        let continued = match self.nodes[*state as usize] {
            Node::Live { lo, hi, len } if (lo..hi).contains(&v) && len < vlen => Some(len as usize),
            _ => None,
        };
        let result = &self.results[v as usize];
        for o in window {
            match *o {
                KvOp::Put(p) if self.is_prefix(p, want) => return true,
                KvOp::Append(t) => {
                    let text = &self.texts[t as usize];
                    if continued.is_some_and(|len| {
                        !text.is_empty() && result.as_bytes()[len..].starts_with(text.as_bytes())
                    }) {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }
}
