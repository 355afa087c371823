//! The set workload: clients add unique integers to one set and now and then read it whole;
//! a final read after the faults heal shows which acknowledged adds survived (lost), which
//! elements nobody added appeared (unexpected), and which reads missed an add that had
//! already completed (stale).

use crate::{Op, UniqueValues};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Percent of ops that are reads.
pub const READ_PERCENT: u32 = 20;

/// Generator state of one worker.
#[derive(Debug, Clone)]
pub struct Set {
    rng: ChaCha8Rng,
    values: UniqueValues,
}

impl Set {
    /// A generator drawing from `rng`, adding values from `values`.
    pub fn new(rng: ChaCha8Rng, values: UniqueValues) -> Self {
        Set { rng, values }
    }

    /// A read of the whole set, or an add of a fresh unique element.
    pub fn next_op(&mut self) -> Op {
        if self.rng.gen_range(0..100) < READ_PERCENT {
            Op::SetRead
        } else {
            Op::SetAdd {
                value: self.values.next_value(),
            }
        }
    }
}
