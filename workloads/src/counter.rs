//! The counter workload: clients increment one counter by small positive amounts and read
//! it; each read must lie between the increments certainly done when it began and those
//! possibly done by the time it ended.

use crate::Op;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Percent of ops that are reads.
pub const READ_PERCENT: u32 = 30;
/// Largest increment.
pub const MAX_DELTA: i64 = 5;

/// Generator state of one worker.
#[derive(Debug, Clone)]
pub struct Counter {
    rng: ChaCha8Rng,
}

impl Counter {
    /// A generator drawing from `rng`.
    pub fn new(rng: ChaCha8Rng) -> Self {
        Counter { rng }
    }

    /// A read, or an increment of 1..=[`MAX_DELTA`].
    pub fn next_op(&mut self) -> Op {
        if self.rng.gen_range(0..100) < READ_PERCENT {
            Op::CounterRead
        } else {
            Op::CounterAdd {
                delta: self.rng.gen_range(1..=MAX_DELTA),
            }
        }
    }
}
