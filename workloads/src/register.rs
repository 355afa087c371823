//! The single-register workload: reads, writes and compare-and-sets on one register.
//!
//! Default mix ([`crate::Mix`]): 50% reads, 30% writes, 20% cas. Reads dominate because stale reads are the anomaly
//! most unsafe read paths produce; cas targets the last value this worker wrote (the harness
//! replaces that by the freshest value any worker learned, when it knows one).

use crate::{Mix, Op, OpKind, UniqueValues};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Generator state of one worker.
#[derive(Debug, Clone)]
pub struct Register {
    rng: ChaCha8Rng,
    values: UniqueValues,
    mix: Mix,
    last_seen: Option<i64>,
}

impl Register {
    /// A generator drawing from `rng`, writing values from `values`, in proportions `mix`.
    pub fn new(rng: ChaCha8Rng, values: UniqueValues, mix: Mix) -> Self {
        Register {
            rng,
            values,
            mix,
            last_seen: None,
        }
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        let roll: u32 = self.rng.gen_range(0..100);
        match self.mix.kind(roll) {
            OpKind::Read => Op::Read { key: None },
            OpKind::Write => {
                let value = self.values.next_value();
                self.last_seen = Some(value);
                Op::Write { key: None, value }
            }
            OpKind::Cas => {
                let from = self.last_seen.unwrap_or(0);
                let to = self.values.next_value();
                Op::Cas {
                    key: None,
                    from,
                    to,
                }
            }
        }
    }
}
