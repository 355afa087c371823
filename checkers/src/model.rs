//! The model contract: a sequential specification the linearizability search replays ops on.
//!
//! Mirrors Porcupine's `model.go`: a model is an initial state plus a pure `step` that says
//! whether an op (input and output together) is legal in a state and what state follows. The
//! search (`linearizable.rs`) knows nothing else about registers or key-value stores.
//! Models turn history [`Operation`]s into their own compact op type once ([`Prepare`]), so
//! the hot loop compares integers, not JSON.

use crate::history::Operation;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification.
///
/// `step` must be pure with respect to the model's meaning: the same state and op always give
/// the same answer. It takes `&mut self` only so models can intern values they create (the kv
/// model interns the strings that appends produce).
pub trait Model {
    /// A state; cheap to clone and hash (models intern values into integer ids).
    type State: Clone + Eq + Hash + Debug;
    /// An op with its observed output, in the model's compact form. Equal ops have equal
    /// effects (the search uses this to treat identical indeterminate ops as interchangeable).
    type Op: Debug + PartialEq;
    /// The state before any op.
    fn init(&self) -> Self::State;
    /// `Some(next)` if `op` is legal in `state`, `None` if it is not.
    fn step(&mut self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
    /// A short description of an op, for counterexamples (`write(3)`, `get("0") -> "x 1 0 y"`).
    fn describe_op(&self, op: &Self::Op) -> String;
    /// A state as JSON, for counterexamples.
    fn state_json(&self, state: &Self::State) -> serde_json::Value;

    /// Lookahead pruning: can `target` still become legal from `state` if only ops from
    /// `window` are placed first? Must answer `true` unless that is impossible (`true` is always
    /// sound; the default). The search calls it with the pending op that returns earliest.
    fn can_reach(
        &mut self,
        _state: &Self::State,
        _target: &Self::Op,
        _window: &mut dyn Iterator<Item = &Self::Op>,
    ) -> bool {
        true
    }

    /// True when `op` never changes the state: `step` gives back the same state or `None`
    /// (reads). The search linearizes a legal observer at once instead of branching on it;
    /// `false` is always sound (the default).
    fn is_observer(&self, _op: &Self::Op) -> bool {
        false
    }

    /// The representative of `state`'s class of equivalent states: states from which every
    /// sequence of this instance's ops is legal alike and leads to equivalent states. The
    /// search memoizes configurations by it, so equivalent states are explored once. The
    /// default, the state itself, is always sound.
    fn representative(&mut self, state: &Self::State) -> Self::State {
        state.clone()
    }

    /// Heap bytes the model holds for values it interned, for the check's memory cap.
    fn memory_bytes(&self) -> usize {
        0
    }

    /// Heap bytes a state owns beyond its own size (0 for interned ids), for the memory cap.
    fn state_heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }
}

/// A model built for one partition, with its ops converted.
pub struct Prepared<M: Model> {
    /// The model (holds interned values).
    pub model: M,
    /// Ops the search must place, in the same order as `ids`.
    pub ops: Vec<M::Op>,
    /// `ids[i]` is the [`Operation::id`] of `ops[i]`.
    pub ids: Vec<usize>,
    /// Indeterminate ops dropped because no read could have observed them (sound: an `info`
    /// op may never take effect, and an unobserved one cannot be needed by any read).
    pub dropped: Vec<usize>,
    /// An op that is illegal whatever the order (a read of a value nobody wrote), with why.
    pub violation: Option<(usize, String)>,
}

/// What a read that returned nil means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NilReads {
    /// Nil is a value like any other: the register held nil (faultline's histories, Porcupine).
    #[default]
    Value,
    /// Nil means the value is unknown and matches any state (Knossos's reading of Jepsen
    /// histories, whose clients record nil when a read's result was lost).
    Unknown,
}

/// What every model is prepared with.
#[derive(Debug, Clone, Copy)]
pub struct ModelOptions<'a> {
    /// The initial value (`--init`), JSON null = nil; the multi-register model also takes an
    /// object of per-key initial values.
    pub init: &'a serde_json::Value,
    /// What a nil read means.
    pub nil_reads: NilReads,
}

/// Builds a [`Prepared`] model from the ops of one partition.
pub trait Prepare: Model + Sized {
    /// Converts `ops` for this model under `opts`.
    fn prepare(ops: &[&Operation], opts: &ModelOptions<'_>) -> Result<Prepared<Self>, ModelError>;
}

/// An op the model cannot interpret: bad input, reported with the line of the op's invoke.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {f} {value}: {message}")]
pub struct ModelError {
    /// 1-based source line of the op's invoke event.
    pub line: usize,
    /// `index` of the op's invoke event.
    pub index: u64,
    /// The op's function.
    pub f: String,
    /// The op's input value, as JSON text.
    pub value: String,
    /// What is wrong with it.
    pub message: String,
}

impl ModelError {
    /// An error about `op`.
    pub fn new(op: &Operation, message: impl Into<String>) -> Self {
        ModelError {
            line: op.line,
            index: op.invoke_index,
            f: op.f.clone(),
            value: op.input.to_string(),
            message: message.into(),
        }
    }
}

/// The models `faultline check --model` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// read / write on one register per key.
    Register,
    /// read / write / cas on one register per key.
    CasRegister,
    /// get / put / append on strings, per key (Porcupine's kv model).
    Kv,
    /// Atomic multi-key read/write transactions over registers (Knossos's `multi-register`):
    /// `f: "txn"`, value `[["read", k, v], ["write", k, v], ...]`.
    MultiRegister,
}

impl ModelKind {
    /// The model's name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::MultiRegister => "multi-register",
        }
    }

    /// Guesses the model from the functions used: get/put/append → kv, txn → multi-register,
    /// cas → cas-register, otherwise register.
    pub fn infer(ops: &[Operation]) -> ModelKind {
        let mut kind = ModelKind::Register;
        for op in ops {
            match op.f.as_str() {
                "get" | "put" | "append" => return ModelKind::Kv,
                "txn" => return ModelKind::MultiRegister,
                "cas" => kind = ModelKind::CasRegister,
                _ => {}
            }
        }
        kind
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "register" => Ok(ModelKind::Register),
            "cas-register" | "cas" => Ok(ModelKind::CasRegister),
            "kv" => Ok(ModelKind::Kv),
            "multi-register" => Ok(ModelKind::MultiRegister),
            _ => Err(format!(
                "unknown model {s:?} (expected register, cas-register, kv or multi-register)"
            )),
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Several independent copies of a model side by side: the state is one component per key and
/// an op touches exactly one component. This is the unpartitioned view of a multi-key history.
pub struct Product<M: Model> {
    /// One model per component.
    pub parts: Vec<M>,
}

/// An op of a [`Product`]: which component, and the component's op.
#[derive(Debug, PartialEq)]
pub struct ProductOp<O> {
    /// Component index.
    pub part: usize,
    /// The op in that component.
    pub op: O,
}

impl<M: Model> Model for Product<M> {
    type State = Vec<M::State>;
    type Op = ProductOp<M::Op>;
    fn init(&self) -> Self::State {
        self.parts.iter().map(|m| m.init()).collect()
    }
    fn step(&mut self, state: &Self::State, op: &Self::Op) -> Option<Self::State> {
        let next = self.parts[op.part].step(&state[op.part], &op.op)?;
        let mut s = state.clone();
        s[op.part] = next;
        Some(s)
    }
    fn describe_op(&self, op: &Self::Op) -> String {
        self.parts[op.part].describe_op(&op.op)
    }
    fn is_observer(&self, op: &Self::Op) -> bool {
        self.parts[op.part].is_observer(&op.op)
    }
    fn representative(&mut self, state: &Self::State) -> Self::State {
        self.parts
            .iter_mut()
            .zip(state)
            .map(|(m, s)| m.representative(s))
            .collect()
    }
    fn memory_bytes(&self) -> usize {
        self.parts.iter().map(Model::memory_bytes).sum()
    }
    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        state.capacity() * std::mem::size_of::<M::State>()
            + self
                .parts
                .iter()
                .zip(state)
                .map(|(m, s)| m.state_heap_bytes(s))
                .sum::<usize>()
    }
    fn can_reach(
        &mut self,
        state: &Self::State,
        target: &Self::Op,
        window: &mut dyn Iterator<Item = &Self::Op>,
    ) -> bool {
        let part = target.part;
        let mut same = window.filter(|o| o.part == part).map(|o| &o.op);
        self.parts[part].can_reach(&state[part], &target.op, &mut same)
    }
    fn state_json(&self, state: &Self::State) -> serde_json::Value {
        serde_json::Value::Array(
            self.parts
                .iter()
                .zip(state)
                .map(|(m, s)| m.state_json(s))
                .collect(),
        )
    }
}
