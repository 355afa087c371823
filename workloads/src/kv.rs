//! The multi-key workload: independent registers on [`KEYS`] keys, checked per key.
//!
//! Each op picks a key uniformly, then behaves like the register workload on that key. More
//! keys mean more parallelism for the checker (P-compositionality) and less contention.

use crate::{Mix, Op, OpKind, UniqueValues};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Number of keys, named `"0"` .. `"7"`.
pub const KEYS: u32 = 8;

/// Generator state of one worker.
#[derive(Debug, Clone)]
pub struct Kv {
    rng: ChaCha8Rng,
    values: UniqueValues,
    mix: Mix,
    last_seen: HashMap<String, i64>,
}

impl Kv {
    /// A generator drawing from `rng`, writing values from `values`, in proportions `mix`.
    pub fn new(rng: ChaCha8Rng, values: UniqueValues, mix: Mix) -> Self {
        Kv {
            rng,
            values,
            mix,
            last_seen: HashMap::new(),
        }
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        let key = self.rng.gen_range(0..KEYS).to_string();
        let roll: u32 = self.rng.gen_range(0..100);
        match self.mix.kind(roll) {
            OpKind::Read => Op::Read { key: Some(key) },
            OpKind::Write => {
                let value = self.values.next_value();
                self.last_seen.insert(key.clone(), value);
                Op::Write {
                    key: Some(key),
                    value,
                }
            }
            OpKind::Cas => {
                let from = self.last_seen.get(&key).copied().unwrap_or(0);
                let to = self.values.next_value();
                Op::Cas {
                    key: Some(key),
                    from,
                    to,
                }
            }
        }
    }
}
