//! The single-register workload: reads, writes and compare-and-sets on one register.
//!
//! Mix: 50% reads, 30% writes, 20% cas. Reads dominate because stale reads are the anomaly
//! most unsafe read paths produce; cas targets the last value this worker observed, so a
//! useful share of them succeed.

use crate::{Op, UniqueValues};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Generator state of one worker.
#[derive(Debug, Clone)]
pub struct Register {
    rng: ChaCha8Rng,
    values: UniqueValues,
    last_seen: Option<i64>,
}

impl Register {
    /// A generator drawing from `rng` and writing values from `values`.
    pub fn new(rng: ChaCha8Rng, values: UniqueValues) -> Self {
        Register {
            rng,
            values,
            last_seen: None,
        }
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        let roll: u32 = self.rng.gen_range(0..100);
        match roll {
            0..=49 => Op::Read { key: None },
            50..=79 => {
                let value = self.values.next_value();
                self.last_seen = Some(value);
                Op::Write { key: None, value }
            }
            _ => {
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

    /// Remembers a value read, as the `from` of the next cas.
    pub fn observe(&mut self, value: Option<i64>) {
        if value.is_some() {
            self.last_seen = value;
        }
    }
}
