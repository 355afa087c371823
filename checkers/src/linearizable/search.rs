//! The Wing–Gong–Lowe search of one partition, resumable, within a memory reservation.
//!
//! Ops become call and return entries in one doubly linked list sorted by time (calls before
//! returns at equal times: intervals are closed). A configuration is the set of linearized ops
//! (a bitset) and the model state after them. From a configuration, any op whose call precedes
//! the earliest pending return may be linearized next; reaching a return whose op is still
//! unplaced means the configuration is a dead end, and the search backtracks. Every
//! configuration entered is memoized, so a configuration reached again along another path
//! (a dead end, since the search would have stopped on success) is cut at once.
//!
//! Three reductions on top of Lowe's algorithm, each sound and complete:
//! - Observers first: an op that never changes the state (a read, a get, a cas that found
//!   another value) and is legal now is linearized at once, without trying the alternatives.
//!   Any linearization from here that places it later can place it now instead: it is a
//!   candidate (no pending op returned before it was called), it leaves the state alone, and
//!   moving an op earlier breaks no real-time order. So if the configuration with it fails,
//!   the configuration without it fails too. Without this, k concurrent reads of the current
//!   value give 2^k distinct configurations; a 50-client kv history is mostly such reads.
//! - Twins: identical indeterminate ops that can both be placed now are interchangeable; only
//!   the first in list order is tried.
//! - Lookahead: after a step, each of the few earliest pending returns must still be reachable
//!   using only ops invoked before it returns ([`Model::can_reach`]).
//!
//! The search stops (and can be resumed) when the time budget ends or when its memory (memo,
//! stack and the model's interned values) would exceed its reservation from the check's pool.

use crate::model::Model;
use crate::models::FxHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// The result of a finished search.
pub(super) enum Outcome {
    /// The ops in a legal order (indices into the search's op slice).
    Linearizable(Vec<usize>),
    /// The deepest prefix reached and the ops that could not extend it, each with why.
    Illegal {
        prefix: Vec<usize>,
        candidates: Vec<(usize, Why)>,
    },
}

/// Why an op could not come next at the deepest dead end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// The model says it is not legal in the state there.
    Illegal,
    /// It is legal, but after it this op (index) can no longer become legal before it returns.
    Strands(usize),
    /// Every continuation after it failed (a fallback; the deepest dead end has none).
    Explored,
}

/// Why a search stopped before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The deadline passed or the check was cancelled.
    Time,
    /// Its memory would have exceeded what the pool could give.
    Memory,
}

/// What [`Search::run`] returns.
pub(super) enum Progress {
    Done(Outcome),
    Stopped(Stop),
}

/// The bytes every search of one check draws from: a cap, and what is reserved against it.
#[derive(Debug)]
pub(super) struct MemoryPool {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryPool {
    /// A pool of `limit` bytes, `held` of them already taken by the caller.
    pub(super) fn new(limit: usize, held: usize) -> Self {
        MemoryPool {
            limit,
            used: AtomicUsize::new(held.min(limit)),
        }
    }

    /// The cap, bytes.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    fn try_take(&self, bytes: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(bytes).filter(|&n| n <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Bytes held against a [`MemoryPool`]; returned when dropped.
#[derive(Debug)]
pub(super) struct Reservation<'a> {
    pool: &'a MemoryPool,
    held: usize,
}

impl<'a> Reservation<'a> {
    /// An empty reservation.
    pub(super) fn new(pool: &'a MemoryPool) -> Self {
        Reservation { pool, held: 0 }
    }

    /// Makes the reservation exactly `bytes`; `false` (and unchanged) if the pool cannot give
    /// that much.
    pub(super) fn set(&mut self, bytes: usize) -> bool {
        if bytes > self.held {
            if !self.pool.try_take(bytes - self.held) {
                return false;
            }
        } else {
            self.pool.give_back(self.held - bytes);
        }
        self.held = bytes;
        true
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.pool.give_back(self.held);
    }
}

/// A deadline and a cancel flag, shared by every search of one check.
pub(super) struct Deadline<'a> {
    pub(super) at: Option<Instant>,
    pub(super) cancel: &'a AtomicBool,
}

impl Deadline<'_> {
    pub(super) fn expired(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.at.is_some_and(|d| Instant::now() >= d)
    }
}

fn state_hash<S: Hash>(s: &S) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    // Final avalanche, so the low bits that pick a slot depend on every input bit.
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// The memo of explored configurations: an open-addressing table over arenas.
///
/// A linearized set is stored compactly: the search linearizes ops roughly in history order,
/// so a set is all ones up to some word, a few mixed words, then zeros. An entry keeps the
/// index of its first word that is not all ones and the words from there to its last
/// non-zero word (usually one or two), so an entry costs about 30 bytes plus its slot.
struct Memo<S> {
    /// Slot → entry index + 1 (0 = empty); the length is a power of two.
    slots: Vec<u32>,
    hashes: Vec<u64>,
    /// Entry k's words are `words[starts[k]..starts[k + 1]]` (the last ends at `words.len()`).
    starts: Vec<u32>,
    /// Index of entry k's first stored word; every word before it is all ones.
    lows: Vec<u32>,
    words: Vec<u64>,
    states: Vec<S>,
    /// Heap bytes owned by the stored states (beyond `size_of::<S>()`).
    state_heap: usize,
}

impl<S: Eq + Clone> Memo<S> {
    fn new() -> Self {
        Memo {
            slots: vec![0; 1024],
            hashes: Vec::new(),
            starts: Vec::new(),
            lows: Vec::new(),
            words: Vec::new(),
            states: Vec::new(),
            state_heap: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.hashes.capacity() * 8
            + self.starts.capacity() * 4
            + self.lows.capacity() * 4
            + self.words.capacity() * 8
            + self.states.capacity() * std::mem::size_of::<S>()
            + self.state_heap
    }

    /// Bytes the next insert may allocate at most (a table doubling or vector growth).
    fn next_growth(&self, set_words: usize) -> usize {
        let n = self.states.len();
        let mut grow = 0;
        if (n + 1) * 10 > self.slots.len() * 7 {
            grow += self.slots.len() * 4; // doubled table, old one freed after rehash
        }
        if n == self.states.capacity() {
            let more = n.max(1024);
            grow += more * (8 + 4 + 4 + std::mem::size_of::<S>());
        }
        if self.words.len() + set_words > self.words.capacity() {
            grow += self.words.capacity().max(set_words).max(1024) * 8;
        }
        grow
    }

    /// The stored part of `bits`: (first word not all ones, words up to the last non-zero).
    fn window(bits: &[u64]) -> (usize, &[u64]) {
        let lo = bits
            .iter()
            .position(|&w| w != u64::MAX)
            .unwrap_or(bits.len());
        let hi = bits
            .iter()
            .rposition(|&w| w != 0)
            .map_or(0, |p| p + 1)
            .max(lo);
        (lo, &bits[lo..hi])
    }

    fn stored(&self, k: usize) -> &[u64] {
        let start = self.starts[k] as usize;
        let end = self
            .starts
            .get(k + 1)
            .map_or(self.words.len(), |&e| e as usize);
        &self.words[start..end]
    }

    /// Inserts (bits, state) unless present; `true` if it was new.
    fn insert(&mut self, hash: u64, bits: &[u64], state: &S, heap: usize) -> bool {
        let (lo, win) = Self::window(bits);
        let mask = self.slots.len() - 1;
        let mut at = (hash as usize) & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                break;
            }
            let k = slot as usize - 1;
            if self.hashes[k] == hash
                && self.lows[k] as usize == lo
                && self.states[k] == *state
                && self.stored(k) == win
            {
                return false;
            }
            at = (at + 1) & mask;
        }
        let k = self.states.len();
        self.slots[at] = k as u32 + 1;
        self.hashes.push(hash);
        self.starts.push(self.words.len() as u32);
        self.lows.push(lo as u32);
        self.words.extend_from_slice(win);
        self.states.push(state.clone());
        self.state_heap += heap;
        if self.states.len() * 10 > self.slots.len() * 7 {
            let n = self.slots.len() * 2;
            self.slots = vec![0; n];
            for (k, &h) in self.hashes.iter().enumerate() {
                let mut at = (h as usize) & (n - 1);
                while self.slots[at] != 0 {
                    at = (at + 1) & (n - 1);
                }
                self.slots[at] = k as u32 + 1;
            }
        }
        true
    }

    /// True while entry indices and word offsets still fit the table's `u32`s.
    fn has_room(&self, set_words: usize) -> bool {
        self.states.len() < u32::MAX as usize - 1
            && self.words.len() + set_words < u32::MAX as usize
    }
}

/// The ops whose calls lie in the list before `stop` (the earliest pending return), except
/// the two in `skip` (the op being placed and the target).
struct Window<'a, O> {
    next: &'a [usize],
    cur: usize,
    stop: usize,
    skip: (usize, usize),
    ops: &'a [O],
}

impl<'a, O> Iterator for Window<'a, O> {
    type Item = &'a O;
    fn next(&mut self) -> Option<&'a O> {
        while self.cur != HEAD && self.cur != self.stop {
            let e = self.cur;
            self.cur = self.next[e];
            let i = e / 2;
            if e & 1 == 0 && i != self.skip.0 && i != self.skip.1 {
                return Some(&self.ops[i]);
            }
        }
        None
    }
}

const HEAD: usize = usize::MAX;

/// How many of the earliest pending returns the lookahead checks after each step.
const LOOKAHEAD: usize = 4;

/// How often (in steps, a power of two) the search looks at the clock and its memory.
const CHECK_EVERY: u64 = 1 << 10;

/// One linearized op on the search stack.
struct Frame<S> {
    op: usize,
    /// The state before it, restored when it is undone.
    before: S,
    /// Placed by the observers-first rule: undoing it fails the configuration below too.
    forced: bool,
}

/// A Wing–Gong–Lowe search over one partition's ops, resumable after a [`Stop`].
pub(super) struct Search<S> {
    /// `open[i]`: op i never returns (indeterminate).
    open: Vec<bool>,
    /// Entries: 2*i = call of op i, 2*i+1 = its return; a doubly linked list in time order.
    next: Vec<usize>,
    prev: Vec<usize>,
    head: usize,
    /// Zobrist keys of the ops, xor-ed into `zob` for the linearized set.
    zobrist: Vec<u64>,
    bits: Vec<u64>,
    zob: u64,
    memo: Memo<S>,
    state: S,
    stack: Vec<Frame<S>>,
    best: Vec<usize>,
    best_candidates: Vec<(usize, Why)>,
    /// The entry to look at next.
    cur: usize,
    /// A configuration was just entered: look for an observer to place first.
    fresh: bool,
}

impl<S: Clone + Eq + Hash> Search<S> {
    /// A search over ops with call times `calls` and return times `rets` (`None` = never),
    /// starting from `init`.
    pub(super) fn new(init: S, calls: &[u64], rets: &[Option<u64>]) -> Self {
        let n = calls.len();
        let mut entries: Vec<usize> = (0..2 * n).collect();
        let time = |e: usize| -> (u64, u8) {
            let i = e / 2;
            if e & 1 == 0 {
                (calls[i], 0)
            } else {
                (rets[i].unwrap_or(u64::MAX), 1)
            }
        };
        entries.sort_by_key(|&e| time(e));
        let mut next = vec![HEAD; 2 * n];
        let mut prev = vec![HEAD; 2 * n];
        for (w, &e) in entries.iter().enumerate() {
            prev[e] = if w == 0 { HEAD } else { entries[w - 1] };
            next[e] = entries.get(w + 1).copied().unwrap_or(HEAD);
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let zobrist = (0..n)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            })
            .collect();
        let head = entries.first().copied().unwrap_or(HEAD);
        Search {
            open: rets.iter().map(Option::is_none).collect(),
            next,
            prev,
            head,
            zobrist,
            bits: vec![0; n.div_ceil(64)],
            zob: 0,
            memo: Memo::new(),
            state: init,
            stack: Vec::with_capacity(n),
            best: Vec::new(),
            best_candidates: Vec::new(),
            cur: head,
            fresh: true,
        }
    }

    /// Bytes this search holds (memo, stack, lists).
    pub(super) fn bytes(&self) -> usize {
        self.memo.bytes()
            + self.stack.capacity() * std::mem::size_of::<Frame<S>>()
            + (self.next.capacity() + self.prev.capacity()) * 8
            + self.zobrist.capacity() * 8
            + self.open.capacity()
            + (self.best.capacity() + self.best_candidates.capacity()) * 8
    }

    fn unlink(&mut self, e: usize) {
        let (p, q) = (self.prev[e], self.next[e]);
        if p == HEAD {
            self.head = q
        } else {
            self.next[p] = q
        }
        if q != HEAD {
            self.prev[q] = p
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, q) = (self.prev[e], self.next[e]);
        if p == HEAD {
            self.head = e
        } else {
            self.next[p] = e
        }
        if q != HEAD {
            self.prev[q] = e
        }
    }

    fn order(&self) -> Vec<usize> {
        self.stack.iter().map(|f| f.op).collect()
    }

    /// Runs until the search decides or stops; call again after a stop to continue.
    /// `model` and `ops` must be the same on every call.
    pub(super) fn run<M: Model<State = S>>(
        &mut self,
        model: &mut M,
        ops: &[M::Op],
        deadline: &Deadline<'_>,
        memory: &mut Reservation<'_>,
    ) -> Progress {
        let mut steps: u64 = 0;
        loop {
            // Checked on the first step of every call too, so a resumed search past its
            // deadline stops at once.
            if steps & (CHECK_EVERY - 1) == 0 {
                if deadline.expired() {
                    return Progress::Stopped(Stop::Time);
                }
                if !memory.set(self.bytes() + model.memory_bytes()) {
                    return Progress::Stopped(Stop::Memory);
                }
            }
            steps += 1;
            if self.fresh {
                self.fresh = false;
                self.cur = self.head;
                if let Some(i) = self.observer(model, ops) {
                    let s = self.state.clone();
                    match self.enter(model, i, s, true, memory) {
                        Ok(true) => {
                            self.fresh = true;
                            continue;
                        }
                        Ok(false) => {
                            // Seen before, so it failed, so this configuration fails too.
                            if let Some(done) = self.backtrack() {
                                return Progress::Done(done);
                            }
                            continue;
                        }
                        Err(stop) => {
                            self.fresh = true; // retry the same step when resumed
                            return Progress::Stopped(stop);
                        }
                    }
                }
            }
            let cur = self.cur;
            if cur == HEAD {
                return Progress::Done(Outcome::Linearizable(self.order()));
            }
            let i = cur / 2;
            if cur & 1 == 0 {
                if let Some(ns) = self.try_step(model, ops, i) {
                    match self.enter(model, i, ns, false, memory) {
                        Ok(true) => {
                            self.fresh = true;
                            continue;
                        }
                        Ok(false) => {}
                        Err(stop) => return Progress::Stopped(stop),
                    }
                }
                self.cur = self.next[cur];
            } else {
                if self.open[i] {
                    // Only never-returning ops remain unplaced: they may never take effect.
                    return Progress::Done(Outcome::Linearizable(self.order()));
                }
                self.record_best(model, ops, i);
                if let Some(done) = self.backtrack() {
                    return Progress::Done(done);
                }
            }
        }
    }

    /// A candidate that never changes the state and is legal now, if any.
    fn observer<M: Model<State = S>>(&self, model: &mut M, ops: &[M::Op]) -> Option<usize> {
        let mut e = self.head;
        while e != HEAD && e & 1 == 0 {
            let i = e / 2;
            if model.is_observer(&ops[i]) && model.step(&self.state, &ops[i]).is_some() {
                return Some(i);
            }
            e = self.next[e];
        }
        None
    }

    /// The state after linearizing candidate `i` now, unless a reduction rules it out.
    fn try_step<M: Model<State = S>>(&self, model: &mut M, ops: &[M::Op], i: usize) -> Option<S> {
        // Twins: identical indeterminate ops that can both be placed now are interchangeable
        // (both may take effect at any later time), so only the first in list order is tried;
        // swapping two such ops maps any linearization to one of those.
        if self.open[i] {
            let mut e = self.head;
            while e != 2 * i {
                if e & 1 == 0 && self.open[e / 2] && ops[e / 2] == ops[i] {
                    return None;
                }
                e = self.next[e];
            }
        }
        let ns = model.step(&self.state, &ops[i])?;
        match self.stranded(model, ops, &ns, i) {
            Some(_) => None,
            None => Some(ns),
        }
    }

    /// Lookahead after placing `i` (reaching state `ns`): each of the next few pending ops to
    /// return must still be placeable, using only ops invoked before it returns (exactly the
    /// unplaced calls ahead of its return entry in the time-sorted list). The first that is
    /// not, if any.
    fn stranded<M: Model<State = S>>(
        &self,
        model: &mut M,
        ops: &[M::Op],
        ns: &S,
        i: usize,
    ) -> Option<usize> {
        let mut e = self.head;
        let mut checked = 0;
        while e != HEAD && checked < LOOKAHEAD {
            if e & 1 == 1 && e / 2 != i {
                let r = e / 2;
                if self.open[r] {
                    break;
                }
                checked += 1;
                let mut window = Window {
                    next: &self.next,
                    cur: self.head,
                    stop: e,
                    skip: (i, r),
                    ops,
                };
                if !model.can_reach(ns, &ops[r], &mut window) {
                    return Some(r);
                }
            }
            e = self.next[e];
        }
        None
    }

    /// Enters the configuration with op `i` added and state `ns`: `Ok(true)` if it is new,
    /// `Ok(false)` if the memo has it, `Err` if the memo may not grow.
    fn enter<M: Model<State = S>>(
        &mut self,
        model: &mut M,
        i: usize,
        ns: S,
        forced: bool,
        memory: &mut Reservation<'_>,
    ) -> Result<bool, Stop> {
        self.bits[i / 64] |= 1 << (i % 64);
        self.zob ^= self.zobrist[i];
        let words = self.bits.len();
        let growth = self.memo.next_growth(words);
        if !self.memo.has_room(words)
            || (growth > 0 && !memory.set(self.bytes() + growth + model.memory_bytes()))
        {
            self.bits[i / 64] &= !(1 << (i % 64));
            self.zob ^= self.zobrist[i];
            return Err(Stop::Memory);
        }
        let key = model.representative(&ns);
        let hash = self.zob ^ state_hash(&key);
        if self
            .memo
            .insert(hash, &self.bits, &key, model.state_heap_bytes(&key))
        {
            let before = std::mem::replace(&mut self.state, ns);
            self.stack.push(Frame {
                op: i,
                before,
                forced,
            });
            self.unlink(2 * i);
            self.unlink(2 * i + 1);
            return Ok(true);
        }
        self.bits[i / 64] &= !(1 << (i % 64));
        self.zob ^= self.zobrist[i];
        Ok(false)
    }

    /// Remembers the deepest dead end for the counterexample: the prefix, and every op that
    /// could have come next (the candidates and the op whose return was reached, `i`) with
    /// why it could not. At the deepest dead end no candidate led deeper, so each one is
    /// illegal in the state or strands a pending op (the lookahead), as recomputed here.
    fn record_best<M: Model<State = S>>(&mut self, model: &mut M, ops: &[M::Op], i: usize) {
        let (depth, best) = (self.stack.len(), self.best.len());
        if depth > best || (depth == best && self.best_candidates.is_empty()) {
            self.best = self.order();
            let mut candidates = Vec::new();
            let mut e = self.head;
            while e != HEAD && e != self.cur {
                if e & 1 == 0 {
                    candidates.push(e / 2);
                }
                e = self.next[e];
            }
            candidates.push(i);
            candidates.sort_unstable();
            candidates.dedup();
            self.best_candidates = candidates
                .into_iter()
                .map(|c| {
                    let why = match model.step(&self.state, &ops[c]) {
                        None => Why::Illegal,
                        Some(ns) => self
                            .stranded(model, ops, &ns, c)
                            .map_or(Why::Explored, Why::Strands),
                    };
                    (c, why)
                })
                .collect();
        }
    }

    /// Undoes the last choice (and every forced op above it) and moves on to the next
    /// candidate; `Some(Illegal)` when there is nothing left to undo.
    fn backtrack(&mut self) -> Option<Outcome> {
        loop {
            let Some(f) = self.stack.pop() else {
                return Some(Outcome::Illegal {
                    prefix: std::mem::take(&mut self.best),
                    candidates: std::mem::take(&mut self.best_candidates),
                });
            };
            let j = f.op;
            self.relink(2 * j + 1);
            self.relink(2 * j);
            self.bits[j / 64] &= !(1 << (j % 64));
            self.zob ^= self.zobrist[j];
            self.state = f.before;
            if !f.forced {
                self.cur = self.next[2 * j];
                return None;
            }
        }
    }
}
