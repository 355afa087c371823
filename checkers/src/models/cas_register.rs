//! The cas-register model: a register with compare-and-set (Knossos's `cas-register`,
//! Porcupine's etcd model). It is the register model of `register.rs` with cas enabled; this
//! file only gives it its own type so the checker can pick it by name.
//!
//! Initial value: nil by default (`--init`). Porcupine's etcd model starts at a sentinel that
//! means nil (`-1000000` in `porcupine_test.go`, not 0), and the shared etcd verdicts in
//! `expected.tsv` all come out right with nil; `--init 0` is there for Knossos histories.

use super::register::{RegisterModel, RegisterOp};
use crate::history::Operation;
use crate::model::{Model, ModelError, ModelOptions, Prepare, Prepared};
use serde_json::Value;

/// A register with read, write and cas.
#[derive(Debug)]
pub struct CasRegisterModel(pub RegisterModel);

impl Model for CasRegisterModel {
    type State = u32;
    type Op = RegisterOp;
    fn init(&self) -> u32 {
        self.0.init()
    }
    fn step(&mut self, state: &u32, op: &RegisterOp) -> Option<u32> {
        self.0.step(state, op)
    }
    fn describe_op(&self, op: &RegisterOp) -> String {
        self.0.describe_op(op)
    }
    fn state_json(&self, state: &u32) -> Value {
        self.0.state_json(state)
    }
    fn representative(&mut self, state: &u32) -> u32 {
        self.0.representative(state)
    }
    fn is_observer(&self, op: &RegisterOp) -> bool {
        self.0.is_observer(op)
    }
    fn memory_bytes(&self) -> usize {
        self.0.memory_bytes()
    }
    fn can_reach(
        &mut self,
        state: &u32,
        target: &RegisterOp,
        window: &mut dyn Iterator<Item = &RegisterOp>,
    ) -> bool {
        self.0.can_reach(state, target, window)
    }
}

impl Prepare for CasRegisterModel {
    fn prepare(ops: &[&Operation], opts: &ModelOptions<'_>) -> Result<Prepared<Self>, ModelError> {
        let p = RegisterModel::build(ops, opts, true)?;
        Ok(Prepared {
            model: CasRegisterModel(p.model),
            ops: p.ops,
            ids: p.ids,
            dropped: p.dropped,
            violation: p.violation,
        })
    }
}
