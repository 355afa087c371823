//! The list-append workload, in the shape Elle checks (Kingsbury & Alvaro, VLDB 2020):
//! random transactions of appends and reads over a small rolling set of keys.
//!
//! Every appended value is unique (per key and across the run), so a read of a list names
//! exactly which appends it saw and in which order; that is what lets the checker infer the
//! version order of every key and the dependencies between transactions. The key set rolls:
//! a worker's transactions use the [`ACTIVE_KEYS`] keys starting at `ops / ROLL_EVERY`, so
//! lists stay short (reads stay cheap to send and check) while every key still gets many
//! concurrent writers and readers. Workers advance at about the same pace, so they share
//! their windows; the key window depends only on the worker's own op count, so a seed
//! replays the same stream.

use crate::{Op, UniqueValues};
use checkers::txn::Mop;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Keys in use at once.
pub const ACTIVE_KEYS: u64 = 4;
/// A worker's key window moves on by one key every this many of its transactions.
pub const ROLL_EVERY: u64 = 32;
/// Most micro-ops per transaction.
pub const MAX_TXN_LEN: usize = 4;

/// The name of key number `n`.
pub fn key(n: u64) -> String {
    format!("x{n}")
}

/// The keys a run of `total_ops` transactions (over all workers) can have touched: no
/// worker's window starts beyond `total_ops / ROLL_EVERY`.
pub fn keys_touched(total_ops: u64) -> Vec<String> {
    (0..total_ops / ROLL_EVERY + ACTIVE_KEYS).map(key).collect()
}

/// Generator state of one worker.
#[derive(Debug, Clone)]
pub struct ListAppend {
    rng: ChaCha8Rng,
    values: UniqueValues,
    ops: u64,
}

impl ListAppend {
    /// A generator drawing from `rng`, appending values from `values`.
    pub fn new(rng: ChaCha8Rng, values: UniqueValues) -> Self {
        ListAppend {
            rng,
            values,
            ops: 0,
        }
    }

    /// The next transaction: 1 to [`MAX_TXN_LEN`] micro-ops, each an append (half) or a read.
    pub fn next_op(&mut self) -> Op {
        let first = self.ops / ROLL_EVERY;
        self.ops += 1;
        let len = self.rng.gen_range(1..=MAX_TXN_LEN);
        let mops = (0..len)
            .map(|_| {
                let key = key(first + self.rng.gen_range(0..ACTIVE_KEYS));
                if self.rng.gen_bool(0.5) {
                    Mop::Append {
                        key,
                        value: self.values.next_value(),
                    }
                } else {
                    Mop::Read { key, value: None }
                }
            })
            .collect();
        Op::Txn { mops }
    }
}

/// Read-only transactions over `keys`, at most `per_txn` reads each (the final reads).
pub fn read_txns(keys: &[String], per_txn: usize) -> Vec<Op> {
    keys.chunks(per_txn.max(1))
        .map(|c| Op::Txn {
            mops: c
                .iter()
                .map(|k| Mop::Read {
                    key: k.clone(),
                    value: None,
                })
                .collect(),
        })
        .collect()
}
