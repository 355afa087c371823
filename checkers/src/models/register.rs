//! The register model (read/write), shared with cas-register (which adds cas).
//!
//! Values are arbitrary JSON (integers in our histories), interned to ids; nil (JSON null) is
//! a value like any other and is the default initial state (`--init`).
//!
//! A cas is `[expected, new]`. Its completion: `ok` = it swapped; `ok` with value `false` = it
//! ran and found a different value (Porcupine's etcd semantics, which the Porcupine log
//! importer produces for `:fail :cas`); `fail` = it did not happen (removed when pairing).

use super::Interner;
use crate::history::Operation;
use crate::model::{Model, ModelError, ModelOptions, NilReads, Prepare, Prepared};
use serde_json::Value;
use std::collections::HashSet;

/// A register op with its outcome, values as interned ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOp {
    /// A read that returned this value.
    Read(u32),
    /// A write of this value.
    Write(u32),
    /// A cas that swapped `from` → `to` (or, if indeterminate, may have).
    Cas {
        /// Expected value.
        from: u32,
        /// New value.
        to: u32,
    },
    /// A cas that ran and found a value other than `from`.
    CasMismatch {
        /// Expected value (not what the register held).
        from: u32,
    },
}

/// One register. The state is the interned id of its value.
#[derive(Debug)]
pub struct RegisterModel {
    values: Interner,
    init: u32,
    /// `seen[v]`: some read returned v or some cas expected v. Values nobody looks at behave
    /// alike (no read or cas succeeds on them, a mismatching cas always does, a write replaces
    /// them), so the search memoizes them as one class, [`UNSEEN`].
    seen: Vec<bool>,
}

/// The class of every value no read returned and no cas expected (a memo key only).
const UNSEEN: u32 = u32::MAX;

impl RegisterModel {
    fn show(&self, id: u32) -> String {
        self.values.value(id).to_string()
    }

    /// Builds the model and ops; `allow_cas` distinguishes cas-register from register.
    pub fn build(
        ops: &[&Operation],
        opts: &ModelOptions<'_>,
        allow_cas: bool,
    ) -> Result<Prepared<Self>, ModelError> {
        let init = opts.init;
        let mut values = Interner::default();
        let init_id = values.id(init);
        let mut conv: Vec<(usize, RegisterOp, bool)> = Vec::with_capacity(ops.len());
        for op in ops {
            let indeterminate = op.is_indeterminate();
            let rop = match op.f.as_str() {
                "read" => {
                    let nil = matches!(op.output, None | Some(Value::Null));
                    if indeterminate || (nil && opts.nil_reads == NilReads::Unknown) {
                        continue; // an unknown read constrains nothing
                    }
                    RegisterOp::Read(values.id(op.output.as_ref().unwrap_or(&Value::Null)))
                }
                "write" => RegisterOp::Write(values.id(&op.input)),
                "cas" if allow_cas => {
                    let (from, to) = match &op.input {
                        Value::Array(a) if a.len() == 2 => (values.id(&a[0]), values.id(&a[1])),
                        _ => return Err(ModelError::new(op, "cas needs [expected, new]")),
                    };
                    if op.output == Some(Value::Bool(false)) {
                        RegisterOp::CasMismatch { from }
                    } else {
                        RegisterOp::Cas { from, to }
                    }
                }
                "cas" => {
                    return Err(ModelError::new(
                        op,
                        "the register model has no cas; use --model cas-register",
                    ))
                }
                other => {
                    return Err(ModelError::new(
                        op,
                        format!(
                            "unknown function {other:?} for a register (read, write{})",
                            if allow_cas { ", cas" } else { "" }
                        ),
                    ))
                }
            };
            conv.push((op.id, rop, indeterminate));
        }
        // Which values could a reader have seen? Reads, and every cas's expected value.
        let mut observed: HashSet<u32> = HashSet::new();
        let mut written: HashSet<u32> = HashSet::from([init_id]);
        let mut any_mismatch = false;
        let mut seen = Vec::new();
        let mut see = |v: u32| {
            if seen.len() <= v as usize {
                seen.resize(v as usize + 1, false);
            }
            seen[v as usize] = true;
        };
        for (_, rop, _) in &conv {
            match *rop {
                RegisterOp::Read(v) => {
                    observed.insert(v);
                    see(v);
                }
                RegisterOp::Write(v) => {
                    written.insert(v);
                }
                RegisterOp::Cas { from, to } => {
                    observed.insert(from);
                    see(from);
                    written.insert(to);
                }
                RegisterOp::CasMismatch { from } => {
                    any_mismatch = true;
                    see(from);
                }
            }
        }
        let mut violation = None;
        for (id, rop, _) in &conv {
            if let RegisterOp::Read(v) = rop {
                if !written.contains(v) {
                    violation = Some((
                        *id,
                        format!(
                            "read returned {} but no operation ever wrote that value (initial value {})",
                            values.value(*v),
                            init
                        ),
                    ));
                    break;
                }
            }
        }
        let mut prepared = Prepared {
            model: RegisterModel {
                values,
                init: init_id,
                seen,
            },
            ops: Vec::with_capacity(conv.len()),
            ids: Vec::with_capacity(conv.len()),
            dropped: Vec::new(),
            violation,
        };
        for (id, rop, indeterminate) in conv {
            // An indeterminate write whose value nobody observed may be dropped: in any
            // linearization where it takes effect, no read or successful cas follows it before
            // the next write, so removing it changes no observed result. A cas that found a
            // mismatch observes "not v", which this argument does not cover: keep everything then.
            let new_value = match rop {
                RegisterOp::Write(v) | RegisterOp::Cas { to: v, .. } => Some(v),
                _ => None,
            };
            if indeterminate && !any_mismatch && new_value.is_some_and(|v| !observed.contains(&v)) {
                prepared.dropped.push(id);
                continue;
            }
            prepared.ops.push(rop);
            prepared.ids.push(id);
        }
        Ok(prepared)
    }
}

impl Model for RegisterModel {
    type State = u32;
    type Op = RegisterOp;
    fn init(&self) -> u32 {
        self.init
    }
    fn step(&mut self, state: &u32, op: &RegisterOp) -> Option<u32> {
        match *op {
            RegisterOp::Read(v) => (v == *state).then_some(*state),
            RegisterOp::Write(v) => Some(v),
            RegisterOp::Cas { from, to } => (from == *state).then_some(to),
            RegisterOp::CasMismatch { from } => (from != *state).then_some(*state),
        }
    }
    fn describe_op(&self, op: &RegisterOp) -> String {
        match *op {
            RegisterOp::Read(v) => format!("read() -> {}", self.show(v)),
            RegisterOp::Write(v) => format!("write({})", self.show(v)),
            RegisterOp::Cas { from, to } => format!("cas({}, {})", self.show(from), self.show(to)),
            RegisterOp::CasMismatch { from } => format!("cas({}, _) -> mismatch", self.show(from)),
        }
    }
    fn state_json(&self, state: &u32) -> Value {
        self.values.value(*state).clone()
    }
    fn representative(&mut self, state: &u32) -> u32 {
        if self.seen.get(*state as usize).copied().unwrap_or(false) {
            *state
        } else {
            UNSEEN
        }
    }
    fn is_observer(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_) | RegisterOp::CasMismatch { .. })
    }
    fn memory_bytes(&self) -> usize {
        self.values.bytes()
    }
    fn can_reach(
        &mut self,
        state: &u32,
        target: &RegisterOp,
        mut window: &mut dyn Iterator<Item = &RegisterOp>,
    ) -> bool {
        // Only writes and successful cas change the value; without one in the window the
        // target must be legal in the current state.
        self.step(state, target).is_some()
            || Iterator::any(&mut window, |o| {
                matches!(o, RegisterOp::Write(_) | RegisterOp::Cas { .. })
            })
    }
}

impl Prepare for RegisterModel {
    fn prepare(ops: &[&Operation], opts: &ModelOptions<'_>) -> Result<Prepared<Self>, ModelError> {
        RegisterModel::build(ops, opts, false)
    }
}
