//! The kv model: one string register per key with get, put and append (Porcupine's kv model).
//!
//! The checker partitions by key, so one model instance holds one key's value; the
//! unpartitioned view is a [`crate::model::Product`] of these. Strings are interned to ids and
//! each (state, append) transition is computed once, so the search compares integers.

use crate::history::Operation;
use crate::model::{Model, ModelError, Prepare, Prepared};
use serde_json::Value;
use std::collections::HashMap;

/// A kv op on one key, strings as interned ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOp {
    /// A get that returned this string.
    Get(u32),
    /// A put of this string.
    Put(u32),
    /// An append of this string.
    Append(u32),
}

/// One key's string value. The state is the interned id of the current string.
#[derive(Debug, Default)]
pub struct KvModel {
    ids: HashMap<Box<str>, u32>,
    strings: Vec<Box<str>>,
    appended: HashMap<(u32, u32), u32>,
    init: u32,
}

impl KvModel {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.ids.insert(s.into(), id);
        self.strings.push(s.into());
        id
    }

    /// The string behind an id.
    pub fn string(&self, id: u32) -> &str {
        &self.strings[id as usize]
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

impl Prepare for KvModel {
    fn prepare(ops: &[&Operation], init: &Value) -> Result<Prepared<Self>, ModelError> {
        let mut m = KvModel::default();
        m.init = match init {
            Value::Null => m.intern(""),
            Value::String(s) => m.intern(s),
            other => m.intern(&other.to_string()),
        };
        let mut conv: Vec<(usize, KvOp, bool)> = Vec::with_capacity(ops.len());
        let mut reads: Vec<u32> = Vec::new();
        for op in ops {
            let indeterminate = op.is_indeterminate();
            let kop = match op.f.as_str() {
                "get" | "read" => {
                    if indeterminate {
                        continue; // an unknown get constrains nothing
                    }
                    let v = match op.output.as_ref() {
                        None | Some(Value::Null) => m.init,
                        Some(v) => {
                            let s = as_string(op, v, "a get's result")?;
                            m.intern(&s)
                        }
                    };
                    reads.push(v);
                    KvOp::Get(v)
                }
                "put" | "write" => KvOp::Put(m.intern(&as_string(op, &op.input, "a put's value")?)),
                "append" => KvOp::Append(m.intern(&as_string(op, &op.input, "an append's value")?)),
                other => {
                    return Err(ModelError::new(
                        op,
                        format!("unknown function {other:?} for kv (get, put, append)"),
                    ))
                }
            };
            conv.push((op.id, kop, indeterminate));
        }
        let mut p = Prepared {
            ops: Vec::with_capacity(conv.len()),
            ids: Vec::with_capacity(conv.len()),
            dropped: Vec::new(),
            violation: None,
            model: m,
        };
        for (id, kop, indeterminate) in conv {
            // An indeterminate put/append whose string occurs in no get's result can be
            // dropped: wherever it took effect, every get before the next put would contain that
            // string, and there is none; dropping it changes no observed value.
            if indeterminate {
                let s = match kop {
                    KvOp::Put(s) | KvOp::Append(s) => p.model.string(s),
                    KvOp::Get(_) => unreachable!("indeterminate gets are skipped"),
                };
                let unobserved = matches!(kop, KvOp::Append(_)) && s.is_empty()
                    || (!s.is_empty() && !reads.iter().any(|&r| p.model.string(r).contains(s)));
                if unobserved {
                    p.dropped.push(id);
                    continue;
                }
            }
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
            KvOp::Append(a) => {
                if let Some(&next) = self.appended.get(&(*state, a)) {
                    return Some(next);
                }
                let s = format!("{}{}", self.string(*state), self.string(a));
                let next = self.intern(&s);
                self.appended.insert((*state, a), next);
                Some(next)
            }
        }
    }
    fn describe_op(&self, op: &KvOp) -> String {
        match *op {
            KvOp::Get(v) => format!("get() -> {:?}", self.string(v)),
            KvOp::Put(v) => format!("put({:?})", self.string(v)),
            KvOp::Append(v) => format!("append({:?})", self.string(v)),
        }
    }
    fn state_json(&self, state: &u32) -> Value {
        Value::String(self.string(*state).to_string())
    }
    fn can_reach(
        &mut self,
        state: &u32,
        target: &KvOp,
        mut window: &mut dyn Iterator<Item = &KvOp>,
    ) -> bool {
        // Appends only extend the string: unless a put may come first, a later get can only
        // return a string that starts with the current one.
        match *target {
            KvOp::Get(v) if v == *state => true,
            KvOp::Get(v) => {
                // From a proper prefix, the next append placed must continue it exactly.
                let (want, have) = (self.string(v), self.string(*state));
                let rest = want.strip_prefix(have);
                Iterator::any(&mut window, |o| match *o {
                    KvOp::Put(_) => true,
                    KvOp::Append(a) => rest.is_some_and(|r| {
                        let a = self.string(a);
                        !a.is_empty() && r.starts_with(a)
                    }),
                    KvOp::Get(_) => false,
                })
            }
            _ => true,
        }
    }
}
