//! Simulated time: a priority queue of events ordered by `(time, insertion order)`.
//!
//! Ties are broken by the order events were scheduled, never by anything else (no hashing,
//! no thread timing), so a run is a pure function of its inputs.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Simulated nanoseconds since the simulation started.
pub type Nanos = u64;

/// One millisecond in [`Nanos`].
pub const MS: Nanos = 1_000_000;

struct Scheduled<V> {
    at: Nanos,
    seq: u64,
    ev: V,
}

impl<V> PartialEq for Scheduled<V> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}

impl<V> Eq for Scheduled<V> {}

impl<V> PartialOrd for Scheduled<V> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl<V> Ord for Scheduled<V> {
    /// Reversed: the heap pops the earliest event, and of equal times the first scheduled.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The event queue.
pub struct Queue<V> {
    heap: BinaryHeap<Scheduled<V>>,
    seq: u64,
}

impl<V> Default for Queue<V> {
    fn default() -> Self {
        Queue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<V> Queue<V> {
    /// Schedules `ev` at `at`.
    pub fn push(&mut self, at: Nanos, ev: V) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// The earliest event, removed.
    pub fn pop(&mut self) -> Option<(Nanos, V)> {
        self.heap.pop().map(|s| (s.at, s.ev))
    }

    /// Events still scheduled.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_insertion_order() {
        let mut q = Queue::default();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(1, "a"), (1, "b"), (5, "c"), (5, "d")]);
    }
}
