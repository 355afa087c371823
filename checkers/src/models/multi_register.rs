//! The multi-register model: atomic transactions of reads and writes over several registers
//! (Knossos's `multi-register`). A transaction is one op, `f: "txn"`, whose value is a list of
//! micro-ops `["read", k, v]` / `["write", k, v]` (Jepsen's EDN `[:read :x 1]` imports to
//! exactly this; `"r"`/`"w"` are accepted as well). The invoke carries nil for reads; the
//! `ok` completion carries what each read returned. All micro-ops of a transaction happen at
//! one point: a read sees the transaction's own earlier writes.
//!
//! Keys are interned to dense indices and values to ids; the state is one value id per key.
//! Initial values: `--init` null (every key nil), a scalar (every key that value), or an
//! object `{"x": 0, "y": 0}` (those keys; others nil). A transaction spans keys, so a
//! multi-register history is checked as one object (it carries no per-event `key`).
//!
//! An indeterminate transaction's reads are unknown and constrain nothing; its writes may
//! take effect. With [`NilReads::Unknown`] a read that returned nil matches any value.

use super::Interner;
use crate::history::Operation;
use crate::model::{Model, ModelError, ModelOptions, NilReads, Prepare, Prepared};
use serde_json::Value;
use std::collections::HashMap;

/// One micro-op, key and value interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MicroOp {
    /// A read that returned this value id.
    Read(u32, u32),
    /// A write of this value id.
    Write(u32, u32),
}

/// A transaction's micro-ops, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOp(pub Vec<MicroOp>);

/// Registers by key; the state is the value id of every key.
#[derive(Debug)]
pub struct MultiRegisterModel {
    keys: Vec<Value>,
    values: Interner,
    init: Vec<u32>,
}

impl MultiRegisterModel {
    fn parse(
        op: &Operation,
        nil_reads: NilReads,
        keys: &mut HashMap<String, u32>,
        key_values: &mut Vec<Value>,
        values: &mut Interner,
    ) -> Result<TxnOp, ModelError> {
        if op.f != "txn" {
            return Err(ModelError::new(
                op,
                format!("unknown function {:?} for multi-register (txn)", op.f),
            ));
        }
        // Reads come from the completion when the txn completed; otherwise from the invoke
        // (their values are unknown then and ignored).
        let complete = op.output.as_ref().filter(|_| !op.is_indeterminate());
        let source = complete.unwrap_or(&op.input);
        let Value::Array(mops) = source else {
            return Err(ModelError::new(
                op,
                "a txn's value must be a list of [f, key, value]",
            ));
        };
        let mut out = Vec::with_capacity(mops.len());
        for m in mops {
            let (f, k, v) = match m {
                Value::Array(t) if t.len() == 3 => (t[0].as_str(), &t[1], &t[2]),
                _ => {
                    return Err(ModelError::new(
                        op,
                        format!("micro-op {m} is not [f, key, value]"),
                    ))
                }
            };
            let kt = k.to_string();
            let key = match keys.get(&kt) {
                Some(i) => *i,
                None => {
                    let i = key_values.len() as u32;
                    keys.insert(kt, i);
                    key_values.push(k.clone());
                    i
                }
            };
            match f {
                Some("read" | "r") => {
                    let unknown =
                        complete.is_none() || (v.is_null() && nil_reads == NilReads::Unknown);
                    if !unknown {
                        out.push(MicroOp::Read(key, values.id(v)));
                    }
                }
                Some("write" | "w") => out.push(MicroOp::Write(key, values.id(v))),
                _ => {
                    return Err(ModelError::new(
                        op,
                        format!("micro-op {m}: expected read or write"),
                    ))
                }
            }
        }
        Ok(TxnOp(out))
    }

    fn show(&self, key: u32, v: u32) -> String {
        format!("{} {}", self.keys[key as usize], self.values.value(v))
    }
}

impl Model for MultiRegisterModel {
    type State = Vec<u32>;
    type Op = TxnOp;

    fn init(&self) -> Vec<u32> {
        self.init.clone()
    }

    fn step(&mut self, state: &Vec<u32>, op: &TxnOp) -> Option<Vec<u32>> {
        let mut s = state.clone();
        for m in &op.0 {
            match *m {
                MicroOp::Read(k, v) => {
                    if s[k as usize] != v {
                        return None;
                    }
                }
                MicroOp::Write(k, v) => s[k as usize] = v,
            }
        }
        Some(s)
    }

    fn describe_op(&self, op: &TxnOp) -> String {
        let parts: Vec<String> =
            op.0.iter()
                .map(|m| match *m {
                    MicroOp::Read(k, v) => format!("read {}", self.show(k, v)),
                    MicroOp::Write(k, v) => format!("write {}", self.show(k, v)),
                })
                .collect();
        format!("txn[{}]", parts.join(", "))
    }

    fn state_json(&self, state: &Vec<u32>) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in state.iter().enumerate() {
            let key = match &self.keys[k] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            m.insert(key, self.values.value(*v).clone());
        }
        Value::Object(m)
    }

    fn is_observer(&self, op: &TxnOp) -> bool {
        op.0.iter().all(|m| matches!(m, MicroOp::Read(..)))
    }

    fn memory_bytes(&self) -> usize {
        self.values.bytes() + self.keys.len() * 64
    }

    fn state_heap_bytes(&self, state: &Vec<u32>) -> usize {
        state.capacity() * 4
    }
}

impl Prepare for MultiRegisterModel {
    fn prepare(ops: &[&Operation], opts: &ModelOptions<'_>) -> Result<Prepared<Self>, ModelError> {
        let mut keys = HashMap::new();
        let mut key_values = Vec::new();
        let mut values = Interner::default();
        let nil = values.id(&Value::Null);
        let mut conv = Vec::with_capacity(ops.len());
        let mut ids = Vec::with_capacity(ops.len());
        for op in ops {
            let t = Self::parse(op, opts.nil_reads, &mut keys, &mut key_values, &mut values)?;
            // A transaction that only reads and never returned constrains nothing.
            if op.is_indeterminate() && t.0.is_empty() {
                continue;
            }
            conv.push(t);
            ids.push(op.id);
        }
        let mut init = vec![nil; key_values.len()];
        match opts.init {
            Value::Object(m) => {
                for (k, v) in m {
                    let id = values.id(v);
                    for (i, key) in key_values.iter().enumerate() {
                        let name = match key {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        if &name == k {
                            init[i] = id;
                        }
                    }
                }
            }
            Value::Null => {}
            scalar => {
                let id = values.id(scalar);
                init.iter_mut().for_each(|v| *v = id);
            }
        }
        Ok(Prepared {
            model: MultiRegisterModel {
                keys: key_values,
                values,
                init,
            },
            ops: conv,
            ids,
            dropped: Vec::new(),
            violation: None,
        })
    }
}
