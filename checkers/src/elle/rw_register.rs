//! Read-write register inference (Elle's `rw-register`, the sound core of it): with unique
//! written values every read names its writer (wr edges), but a register read shows only one
//! version, so version orders are only partly known. Two rules give them:
//!
//! - initial state: every key starts as null, so every version follows null, and a read of
//!   null precedes every write of that key (rw edges);
//! - writes follow reads (optional, Elle's `:wfr-keys?`): a committed transaction that first
//!   reads `k = v1` and later writes `k = v2` installed `v2` after `v1`, so `v1`'s writer
//!   precedes it (ww) and so does every other reader of `v1` (rw).
//!
//! Each inferred `v1 < v2` becomes one edge even when other versions lie between; the path
//! through them has the same number of anti-dependencies, so classes are unchanged. Without
//! the wfr rule there are no ww edges: G0 cannot be seen and far fewer cycles can. Elle's
//! further inference from the transaction graph itself (ext-key graphs) is not done, so this
//! finds fewer anomalies than list-append, never false ones.

use super::findings::Findings;
use super::graph::{Edges, RW, WR, WW};
use super::keys::{note_writes, reject_dups, Keys};
use super::list_append::join_and;
use super::{Anomaly, AnomalyClass, Because, Fx, TxnRef, Unusable};
use crate::txn::{Mop, ReadValue, Txn, TxnStatus};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// A micro-op with its key interned. `Read(k, None)` = result unknown; `Some(None)` = null.
#[derive(Debug, Clone, Copy)]
enum RMop {
    Write(u32, i64),
    Read(u32, Option<Option<i64>>),
}

#[derive(Debug, Clone, Copy)]
struct Writer {
    txn: u32,
    /// The same transaction wrote the key again later.
    intermediate: bool,
}

/// The indices the checks and edges use.
pub(crate) struct Index<'a> {
    pub txns: &'a [Txn],
    keys: Keys<'a>,
    mop_start: Vec<u32>,
    mops: Vec<RMop>,
    writers: FxMap<(u32, i64), Writer>,
    /// Committed transactions' external reads (before their own write of the key).
    readers: FxMap<(u32, Option<i64>), Vec<u32>>,
    /// Known version order: (key, version or null) -> later versions.
    succ: FxMap<(u32, Option<i64>), Vec<i64>>,
}

fn show(v: Option<i64>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

impl Index<'_> {
    fn mops(&self, t: u32) -> &[RMop] {
        &self.mops[self.mop_start[t as usize] as usize..self.mop_start[t as usize + 1] as usize]
    }

    fn name(&self, t: u32) -> String {
        super::txn_name(&self.txns[t as usize])
    }

    fn status(&self, t: u32) -> TxnStatus {
        self.txns[t as usize].status
    }

    /// A writer that may have committed (not a failed transaction).
    fn live_writer(&self, k: u32, v: i64) -> Option<u32> {
        self.writers
            .get(&(k, v))
            .map(|w| w.txn)
            .filter(|&w| self.status(w) != TxnStatus::Fail)
    }

    /// `t`'s external read of `k` (its first read, before any write of `k`).
    fn ext_read(&self, t: u32, k: u32) -> Option<Option<i64>> {
        for m in self.mops(t) {
            match *m {
                RMop::Write(k2, _) if k2 == k => return None,
                RMop::Read(k2, Some(v)) if k2 == k => return Some(v),
                _ => {}
            }
        }
        None
    }

    /// `t`'s external write of `k` (its last write of `k`).
    fn ext_write(&self, t: u32, k: u32) -> Option<i64> {
        self.mops(t).iter().rev().find_map(|m| match *m {
            RMop::Write(k2, v) if k2 == k => Some(v),
            _ => None,
        })
    }

    /// Readers of `k` whose external read returned `v` (None = null).
    fn readers_of(&self, k: u32, v: Option<i64>) -> &[u32] {
        self.readers.get(&(k, v)).map_or(&[], Vec::as_slice)
    }

    /// The version order has the edge `from -> v2` on `k`.
    fn follows(&self, k: u32, from: Option<i64>, v2: i64) -> bool {
        self.succ.get(&(k, from)).is_some_and(|l| l.contains(&v2))
    }

    /// The key and a sentence saying why `a -> b` carries `rel`.
    fn explain_edge(&self, a: u32, b: u32, rel: u8) -> Option<Because> {
        let (an, bn) = (self.name(a), self.name(b));
        for (to_mop, m) in self.mops(b).iter().enumerate() {
            let because = |key: &str, text: String, from_mop: Option<usize>| {
                Some(Because {
                    key: key.into(),
                    text,
                    from_mop: from_mop?,
                    to_mop,
                })
            };
            let (k, v2) = match (*m, rel) {
                (RMop::Read(k, Some(Some(v))), WR) if self.live_writer(k, v) == Some(a) => {
                    let key = self.keys.name(k);
                    let text = format!("{bn} read {key} = {v}, which {an} wrote");
                    return because(key, text, self.write_pos(a, k, v));
                }
                (RMop::Write(k, v2), WW | RW) if self.ext_write(b, k) == Some(v2) => (k, v2),
                _ => continue,
            };
            let key = self.keys.name(k);
            // A version b read before overwriting it (writes follow reads).
            let v1 = self
                .ext_read(b, k)
                .flatten()
                .filter(|&v1| self.follows(k, Some(v1), v2));
            match (rel, v1) {
                (WW, Some(v1)) if self.live_writer(k, v1) == Some(a) => {
                    let text = format!(
                        "{bn} read {key} = {v1}, which {an} wrote, and then overwrote it with {v2}, so {v2} follows {v1}"
                    );
                    return because(key, text, self.write_pos(a, k, v1));
                }
                (RW, Some(v1)) if self.readers_of(k, Some(v1)).contains(&a) => {
                    let text = format!(
                        "{an} read {key} = {v1}, which {bn} read and then overwrote with {v2}, so {an}'s read came first"
                    );
                    return because(key, text, self.read_pos(a, k, Some(v1)));
                }
                (RW, _) if self.readers_of(k, None).contains(&a) => {
                    let text = format!(
                        "{an} read {key} as null, its initial state, so it came before {bn}'s write of {v2}"
                    );
                    return because(key, text, self.read_pos(a, k, None));
                }
                _ => {}
            }
        }
        None
    }

    /// Position in `t` of its write of `v` to `k`.
    fn write_pos(&self, t: u32, k: u32, v: i64) -> Option<usize> {
        self.mops(t)
            .iter()
            .position(|m| matches!(*m, RMop::Write(k2, v2) if k2 == k && v2 == v))
    }

    /// Position in `t` of a committed read of `k` that returned `v` (None = null).
    fn read_pos(&self, t: u32, k: u32, v: Option<i64>) -> Option<usize> {
        self.mops(t)
            .iter()
            .position(|m| matches!(*m, RMop::Read(k2, Some(v2)) if k2 == k && v2 == v))
    }
}

/// Builds the indices; `wfr` turns on the writes-follow-reads rule.
pub(crate) fn index(txns: &[Txn], wfr: bool) -> Result<Index<'_>, Unusable> {
    let mut keys = Keys::default();
    let mut mop_start = vec![0u32];
    let mut mops = Vec::with_capacity(txns.len() * 4);
    let mut writers: FxMap<(u32, i64), Writer> = FxMap::default();
    let mut dups = Vec::new();
    for t in txns {
        let first = mops.len();
        for m in &t.mops {
            let k = keys.id(m.key());
            mops.push(match m {
                Mop::Write { value, .. } => RMop::Write(k, *value),
                Mop::Read { value, .. } => RMop::Read(
                    k,
                    match value {
                        None => None,
                        Some(ReadValue::Nil) => Some(None),
                        Some(ReadValue::Int(i)) => Some(Some(*i)),
                        Some(ReadValue::List(_)) => {
                            return Err(Unusable(format!(
                                "line {}: the read of key {} returned a list; rw-register reads return a value or null",
                                t.line(),
                                m.key()
                            )))
                        }
                    },
                ),
                Mop::Append { .. } => {
                    return Err(Unusable(format!(
                        "line {}: an append in an rw-register history",
                        t.line()
                    )))
                }
            });
        }
        note_writes(
            t,
            &mops[first..],
            |m| match *m {
                RMop::Write(k, v) => Some((k, v)),
                RMop::Read(..) => None,
            },
            |k, v, intermediate| {
                let w = Writer {
                    txn: t.id as u32,
                    intermediate,
                };
                writers.insert((k, v), w).map(|old| old.txn)
            },
            (txns, &keys),
            &mut dups,
        );
        mop_start.push(mops.len() as u32);
    }
    reject_dups(&dups, "writes")?;
    let mut idx = Index {
        txns,
        keys,
        mop_start,
        mops,
        writers,
        readers: FxMap::default(),
        succ: FxMap::default(),
    };
    let mut versions: FxMap<(u32, i64), ()> = FxMap::default();
    let mut succ: FxMap<(u32, Option<i64>), Vec<i64>> = FxMap::default();
    let mut readers: FxMap<(u32, Option<i64>), Vec<u32>> = FxMap::default();
    for t in txns.iter().filter(|t| t.status != TxnStatus::Fail) {
        let me = t.id as u32;
        let mut seen: Vec<u32> = Vec::new();
        for m in idx.mops(me) {
            let (RMop::Write(k, _) | RMop::Read(k, _)) = *m;
            if seen.contains(&k) {
                continue;
            }
            seen.push(k);
            let read = idx.ext_read(me, k).filter(|_| t.status == TxnStatus::Ok);
            let write = idx.ext_write(me, k);
            if let Some(r) = read {
                readers.entry((k, r)).or_default().push(me);
            }
            for v in [read.flatten(), write].into_iter().flatten() {
                if versions.insert((k, v), ()).is_none() {
                    succ.entry((k, None)).or_default().push(v);
                }
            }
            if let (true, Some(Some(v1)), Some(v2)) = (wfr, read, write) {
                succ.entry((k, Some(v1))).or_default().push(v2);
            }
        }
    }
    idx.readers = readers;
    idx.succ = succ;
    Ok(idx)
}

fn on_key(idx: &Index, class: AnomalyClass, txns: &[u32], k: u32, explanation: String) -> Anomaly {
    Anomaly {
        class,
        txns: txns
            .iter()
            .map(|&t| TxnRef::of(&idx.txns[t as usize]))
            .collect(),
        steps: Vec::new(),
        key: Some(idx.keys.name(k).to_string()),
        explanation,
    }
}

impl super::Inference for Index<'_> {
    /// Aborted, intermediate and garbage reads; internal inconsistency; lost updates.
    fn non_cycle_anomalies(&self, f: &mut Findings) {
        let idx = self;
        let mut lost: FxMap<(u32, Option<i64>), Vec<u32>> = FxMap::default();
        for t in idx.txns.iter().filter(|t| t.status == TxnStatus::Ok) {
            let me = t.id as u32;
            let mut state: Vec<(u32, Option<i64>)> = Vec::new();
            for m in idx.mops(me) {
                match *m {
                    RMop::Write(k, v) => match state.iter_mut().find(|s| s.0 == k) {
                        Some(s) => s.1 = Some(v),
                        None => state.push((k, Some(v))),
                    },
                    RMop::Read(k, Some(v)) => {
                        match state.iter_mut().find(|s| s.0 == k) {
                            Some(s) if s.1 != v => {
                                let want = s.1;
                                f.push(AnomalyClass::Internal, || {
                                on_key(idx, AnomalyClass::Internal, &[me], k, format!(
                                    "{} read {} = {}, but its own earlier reads and writes of {} mean it should have read {}",
                                    idx.name(me), idx.keys.name(k), show(v), idx.keys.name(k), show(want)
                                ))
                            });
                                s.1 = v;
                            }
                            Some(_) => {}
                            None => state.push((k, v)),
                        }
                        let Some(v) = v else { continue };
                        match idx.writers.get(&(k, v)).copied() {
                        None => f.push(AnomalyClass::GarbageRead, || {
                            on_key(idx, AnomalyClass::GarbageRead, &[me], k, format!(
                                "{} read {} = {v}, but no transaction wrote {v} to {}",
                                idx.name(me), idx.keys.name(k), idx.keys.name(k)
                            ))
                        }),
                        Some(w) if w.txn == me => {}
                        Some(w) if idx.status(w.txn) == TxnStatus::Fail => f.push(AnomalyClass::G1a, || {
                            on_key(idx, AnomalyClass::G1a, &[w.txn, me], k, format!(
                                "{} read {} = {v}, written by {}, a transaction that failed (aborted)",
                                idx.name(me), idx.keys.name(k), idx.name(w.txn)
                            ))
                        }),
                        Some(w) if w.intermediate => f.push(AnomalyClass::G1b, || {
                            let later: Vec<i64> = idx.mops(w.txn).iter().filter_map(|m| match *m {
                                RMop::Write(k2, v2) if k2 == k => Some(v2),
                                _ => None,
                            }).collect();
                            on_key(idx, AnomalyClass::G1b, &[w.txn, me], k, format!(
                                "{} read {} = {v}, but {} wrote {} to {} in that order, so {} saw its intermediate state",
                                idx.name(me), idx.keys.name(k), idx.name(w.txn), join_and(&later), idx.keys.name(k), idx.name(me)
                            ))
                        }),
                        Some(_) => {}
                    }
                    }
                    RMop::Read(_, None) => {}
                }
            }
            for &(k, _) in &state {
                if let (Some(r), Some(_)) = (idx.ext_read(me, k), idx.ext_write(me, k)) {
                    lost.entry((k, r)).or_default().push(me);
                }
            }
        }
        let mut cases: Vec<_> = lost.into_iter().filter(|(_, v)| v.len() > 1).collect();
        cases.sort_unstable();
        for ((k, v), ts) in cases {
            f.push(AnomalyClass::LostUpdate, || {
            let names: Vec<String> = ts.iter().map(|&t| idx.name(t)).collect();
            on_key(idx, AnomalyClass::LostUpdate, &ts, k, format!(
                "{} all read {} = {} and then wrote it, so at most one of them can have seen the value the others wrote",
                join_and(&names), idx.keys.name(k), show(v)
            ))
        });
        }
    }

    /// Emits wr, ww and rw edges between transactions that may have committed.
    fn data_edges(&self, out: &mut Edges) {
        let idx = self;
        for (&(k, v), rs) in &idx.readers {
            if let Some(w) = v.and_then(|v| idx.live_writer(k, v)) {
                out.list
                    .extend(rs.iter().filter(|&&r| r != w).map(|&r| (w, r, WR)));
            }
        }
        for (&(k, from), later) in &idx.succ {
            let w1 = from.and_then(|v| idx.live_writer(k, v));
            let ws: Vec<u32> = later
                .iter()
                .filter_map(|&v2| idx.live_writer(k, v2))
                .collect();
            for &w2 in &ws {
                if let Some(w1) = w1.filter(|&w1| w1 != w2) {
                    out.list.push((w1, w2, WW));
                }
            }
            // Readers of null precede every writer of the key: fanned through a hub if many.
            out.fan(idx.readers_of(k, from), &ws);
        }
    }

    fn explain(&self, a: u32, b: u32, rel: u8) -> Option<Because> {
        self.explain_edge(a, b, rel)
    }
}
