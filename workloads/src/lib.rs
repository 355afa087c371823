//! Operation generators: seeded, deterministic streams of client operations.
//!
//! The principal type is [`Workload`] (one variant per workload, each in its own module, like
//! mini-redis's commands) which builds a [`Generator`] per client worker. A generator only
//! decides *what* to do next; *when* (rate limiting, time limits) and *how* (the client
//! protocol) are the harness's job. Each workload names the checker model that judges it
//! ([`Workload::model`]), so a history and its model always travel together.
//!
//! The transactional workloads (list-append, bank, set, counter) record the shapes their
//! checkers read (`checkers::txn`, `checkers::bank`, `checkers::set`, `checkers::counter`);
//! [`Workload::is_transactional`] tells them apart from the register workloads.
//!
//! Determinism: a worker's generator is seeded from `(seed, worker)` with ChaCha8, so the same
//! seed and concurrency replay the same operation streams.

pub mod bank;
pub mod counter;
pub mod kv;
pub mod list_append;
pub mod register;
pub mod set;

use checkers::txn::Mop;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One client operation, before it is invoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Read a register; completes with its value (or null when never written).
    Read {
        /// The key, or `None` for the single-register workload.
        key: Option<String>,
    },
    /// Write a unique integer.
    Write {
        /// The key, or `None` for the single-register workload.
        key: Option<String>,
        /// The value written (unique per workload run).
        value: i64,
    },
    /// Compare-and-set from `from` to `to`.
    Cas {
        /// The key, or `None` for the single-register workload.
        key: Option<String>,
        /// Expected current value.
        from: i64,
        /// New value (unique per workload run).
        to: i64,
    },
    /// A transaction of micro-ops (list-append); completes with every read filled in.
    Txn {
        /// The micro-ops, reads without values.
        mops: Vec<Mop>,
    },
    /// Move `amount` from one bank account to another.
    Transfer {
        /// Source account.
        from: String,
        /// Destination account.
        to: String,
        /// Amount, positive.
        amount: i64,
    },
    /// Read every bank account at once; completes with `{account: balance}`.
    ReadBalances {
        /// The accounts.
        accounts: Vec<String>,
    },
    /// Add a unique element to the set.
    SetAdd {
        /// The element.
        value: i64,
    },
    /// Read the whole set; completes with its elements.
    SetRead,
    /// Add `delta` to the counter.
    CounterAdd {
        /// The increment.
        delta: i64,
    },
    /// Read the counter; completes with its value.
    CounterRead,
}

impl Op {
    /// The history function name: `read`, `write`, `cas`, `txn`, `transfer` or `add`.
    pub fn f(&self) -> &'static str {
        match self {
            Op::Read { .. } | Op::ReadBalances { .. } | Op::SetRead | Op::CounterRead => "read",
            Op::Write { .. } => "write",
            Op::Cas { .. } => "cas",
            Op::Txn { .. } => "txn",
            Op::Transfer { .. } => "transfer",
            Op::SetAdd { .. } | Op::CounterAdd { .. } => "add",
        }
    }

    /// The key as recorded in the history (`None` for the single register and for the
    /// transactional workloads, whose values name their keys).
    pub fn key(&self) -> Option<&str> {
        match self {
            Op::Read { key } | Op::Write { key, .. } | Op::Cas { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    /// The invoke value as recorded in the history: null for reads, the value for writes,
    /// `[from, to]` for cas.
    pub fn invoke_value(&self) -> serde_json::Value {
        match self {
            Op::Read { .. } => serde_json::Value::Null,
            Op::Write { value, .. } => (*value).into(),
            Op::Cas { from, to, .. } => serde_json::json!([from, to]),
            Op::Txn { mops } => mops.iter().map(Mop::to_json).collect(),
            Op::Transfer { from, to, amount } => {
                serde_json::json!({"from": from, "to": to, "amount": amount})
            }
            Op::ReadBalances { .. } | Op::SetRead | Op::CounterRead => serde_json::Value::Null,
            Op::SetAdd { value } => (*value).into(),
            Op::CounterAdd { delta } => (*delta).into(),
        }
    }
}

/// The workloads `--workload` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// One register: read / write / cas with unique write values.
    Register,
    /// Many keys, each an independent register (checked per key).
    Kv,
    /// Transactions of appends and reads over rolling keys (Elle).
    ListAppend,
    /// Transfers between accounts and reads of all balances.
    Bank,
    /// Adds of unique elements to one set and reads of it.
    Set,
    /// Increments of one counter and reads of it.
    Counter,
}

/// An unknown `--workload` name.
#[derive(Debug, thiserror::Error)]
#[error("unknown workload {0:?} (expected register, kv, list-append, bank, set or counter)")]
pub struct UnknownWorkload(pub String);

impl std::str::FromStr for Workload {
    type Err = UnknownWorkload;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "register" => Ok(Workload::Register),
            "kv" => Ok(Workload::Kv),
            "list-append" => Ok(Workload::ListAppend),
            "bank" => Ok(Workload::Bank),
            "set" => Ok(Workload::Set),
            "counter" => Ok(Workload::Counter),
            _ => Err(UnknownWorkload(s.to_string())),
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Workload::Register => "register",
            Workload::Kv => "kv",
            Workload::ListAppend => "list-append",
            Workload::Bank => "bank",
            Workload::Set => "set",
            Workload::Counter => "counter",
        })
    }
}

impl Workload {
    /// The checker model that judges this workload's history (`cas-register` for register
    /// and kv: a kv history is split per key before checking; else the workload's own).
    pub fn model(self) -> &'static str {
        match self {
            Workload::Register | Workload::Kv => "cas-register",
            Workload::ListAppend => "list-append",
            Workload::Bank => "bank",
            Workload::Set => "set",
            Workload::Counter => "counter",
        }
    }

    /// Whether this is a transactional workload (judged by `checkers::elle`, `bank`, `set`
    /// or `counter` rather than by linearizability).
    pub fn is_transactional(self) -> bool {
        !matches!(self, Workload::Register | Workload::Kv)
    }

    /// The reads of the final phase, after `total_ops` ops of the main phase: one read per
    /// key for the registers, read-only transactions over every key list-append can have
    /// touched, one read of all balances, the set or the counter.
    pub fn final_ops(self, total_ops: u64) -> Vec<Op> {
        match self {
            Workload::Register => vec![Op::Read { key: None }],
            Workload::Kv => (0..kv::KEYS)
                .map(|k| Op::Read {
                    key: Some(k.to_string()),
                })
                .collect(),
            Workload::ListAppend => {
                list_append::read_txns(&list_append::keys_touched(total_ops), 64)
            }
            Workload::Bank => vec![Op::ReadBalances {
                accounts: bank::accounts(),
            }],
            Workload::Set => vec![Op::SetRead],
            Workload::Counter => vec![Op::CounterRead],
        }
    }

    /// The generator for worker `worker` of `workers`, seeded from `seed`, with the default mix.
    pub fn generator(self, seed: u64, worker: u64, workers: u64) -> Generator {
        self.generator_with(seed, worker, workers, Mix::default())
    }

    /// Like [`Workload::generator`], with an explicit operation mix.
    pub fn generator_with(self, seed: u64, worker: u64, workers: u64, mix: Mix) -> Generator {
        let rng = ChaCha8Rng::seed_from_u64(seed ^ worker.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let values = UniqueValues {
            next: worker + 1,
            step: workers.max(1),
        };
        match self {
            Workload::Register => Generator::Register(register::Register::new(rng, values, mix)),
            Workload::Kv => Generator::Kv(kv::Kv::new(rng, values, mix)),
            Workload::ListAppend => {
                Generator::ListAppend(list_append::ListAppend::new(rng, values))
            }
            Workload::Bank => Generator::Bank(bank::Bank::new(rng)),
            Workload::Set => Generator::Set(set::Set::new(rng, values)),
            Workload::Counter => Generator::Counter(counter::Counter::new(rng)),
        }
    }
}

/// The share of each operation kind, in percent: reads take [`Mix::READ_PERCENT`], cas takes
/// `cas_percent`, writes the rest.
///
/// Reads stay at half of all ops whatever the cas share, so turning cas off (for a store that
/// offers none, like the NWR engine) makes the freed share writes: the history keeps as many
/// reads to judge and gains versions for them to be stale against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    /// Percent of ops that are compare-and-set, `0..=50`.
    pub cas_percent: u32,
}

impl Mix {
    /// Percent of ops that are reads.
    pub const READ_PERCENT: u32 = 50;
    /// The default cas share.
    pub const DEFAULT_CAS_PERCENT: u32 = 20;

    /// A mix with `cas_percent` cas ops; `None` when it leaves no room for writes.
    pub fn with_cas_percent(cas_percent: u32) -> Option<Mix> {
        (cas_percent <= 100 - Self::READ_PERCENT).then_some(Mix { cas_percent })
    }

    /// What a roll in `0..100` draws.
    pub fn kind(self, roll: u32) -> OpKind {
        if roll < Self::READ_PERCENT {
            OpKind::Read
        } else if roll < 100 - self.cas_percent {
            OpKind::Write
        } else {
            OpKind::Cas
        }
    }
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            cas_percent: Self::DEFAULT_CAS_PERCENT,
        }
    }
}

/// The kind of operation a [`Mix`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A read.
    Read,
    /// A write of a fresh unique value.
    Write,
    /// A compare-and-set.
    Cas,
}

/// Hands out write values unique across all workers: worker `w` of `n` writes `w+1`,
/// `w+1+n`, `w+1+2n`, ... (never 0, so a value is never mistaken for an initial 0).
#[derive(Debug, Clone)]
pub struct UniqueValues {
    next: u64,
    step: u64,
}

impl UniqueValues {
    /// The next unique value.
    pub fn next_value(&mut self) -> i64 {
        let v = self.next;
        self.next += self.step;
        v as i64
    }
}

/// A per-worker operation stream.
#[derive(Debug, Clone)]
pub enum Generator {
    /// See [`register::Register`].
    Register(register::Register),
    /// See [`kv::Kv`].
    Kv(kv::Kv),
    /// See [`list_append::ListAppend`].
    ListAppend(list_append::ListAppend),
    /// See [`bank::Bank`].
    Bank(bank::Bank),
    /// See [`set::Set`].
    Set(set::Set),
    /// See [`counter::Counter`].
    Counter(counter::Counter),
}

impl Generator {
    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        match self {
            Generator::Register(g) => g.next_op(),
            Generator::Kv(g) => g.next_op(),
            Generator::ListAppend(g) => g.next_op(),
            Generator::Bank(g) => g.next_op(),
            Generator::Set(g) => g.next_op(),
            Generator::Counter(g) => g.next_op(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn same_seed_same_stream_and_values_unique_across_workers() {
        let a: Vec<Op> = {
            let mut g = Workload::Register.generator(7, 0, 3);
            (0..100).map(|_| g.next_op()).collect()
        };
        let b: Vec<Op> = {
            let mut g = Workload::Register.generator(7, 0, 3);
            (0..100).map(|_| g.next_op()).collect()
        };
        assert_eq!(a, b);
        let mut seen = HashSet::new();
        for w in 0..3 {
            let mut g = Workload::Kv.generator(1, w, 3);
            for _ in 0..1000 {
                match g.next_op() {
                    Op::Write { value, .. } | Op::Cas { to: value, .. } => {
                        assert!(seen.insert(value), "duplicate {value}")
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn zero_cas_share_never_draws_cas_and_keeps_reads() {
        let mut g = Workload::Kv.generator_with(3, 1, 4, Mix::with_cas_percent(0).unwrap());
        let ops: Vec<Op> = (0..2000).map(|_| g.next_op()).collect();
        assert!(!ops.iter().any(|o| matches!(o, Op::Cas { .. })));
        let reads = ops.iter().filter(|o| matches!(o, Op::Read { .. })).count();
        assert!((800..1200).contains(&reads), "{reads} reads");
        assert!(Mix::with_cas_percent(51).is_none());
        // The default mix draws the same stream as before the mix existed.
        let a: Vec<Op> = {
            let mut g = Workload::Register.generator(9, 2, 5);
            (0..200).map(|_| g.next_op()).collect()
        };
        let mut g = Workload::Register.generator_with(9, 2, 5, Mix::default());
        assert!(a.iter().all(|o| *o == g.next_op()));
    }

    #[test]
    fn parses_names() {
        assert_eq!("kv".parse::<Workload>().unwrap(), Workload::Kv);
        for w in ["register", "kv", "list-append", "bank", "set", "counter"] {
            assert_eq!(w.parse::<Workload>().unwrap().to_string(), w);
        }
        assert!("append".parse::<Workload>().is_err());
    }
}
