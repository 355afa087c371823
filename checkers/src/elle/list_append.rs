//! List-append inference (Elle §4): from the lists reads return, recover each key's version
//! order, who appended every element and who read every state; report what needs no cycle
//! (aborted, intermediate, garbage, duplicate and incompatible reads, internal and future
//! reads, dirty and lost updates); emit the ww / wr / rw edges; explain any edge in words.
//!
//! Version order: all committed reads of a key must be prefixes of its longest read, which is
//! then the order of the elements anyone saw. An append no read shows still follows every
//! element some read showed (otherwise the longest read would contain it), so it is linked
//! after the last observed element, as Elle does. Only `ok` reads are used: an `info`
//! transaction's reads are unknown and a `fail`ed one's did not happen.

use super::findings::Findings;
use super::graph::{Edges, RW, WR, WW};
use super::keys::{note_writes, reject_dups, Keys};
use super::{AnomalyClass, Because, Fx, Unusable};
use crate::txn::{show_list, Mop, ReadValue, Txn, TxnStatus};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

const NONE: u32 = u32::MAX;

/// A micro-op with its key interned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IMop<'a> {
    Append(u32, i64),
    /// A committed read (empty slice for null), or `None` when the result is unknown.
    Read(u32, Option<&'a [i64]>),
}

/// What is known about one appended (or read) element of one key.
#[derive(Debug, Clone, Copy)]
struct Elem {
    /// The transaction that appended it, or NONE if nobody did (a garbage element).
    writer: u32,
    /// Position in the key's version order, or NONE if no read showed it.
    pos: u32,
    /// The writer appended to this key again later in the same transaction.
    intermediate: bool,
}

/// The indices every later step uses.
pub(crate) struct Index<'a> {
    pub txns: &'a [Txn],
    keys: Keys<'a>,
    mop_start: Vec<u32>,
    mops: Vec<IMop<'a>>,
    elems: FxMap<(u32, i64), Elem>,
    /// Per key: the distinct elements of its longest read, in order.
    order: Vec<Vec<i64>>,
    /// Per key: the (txn, raw list) of its longest read.
    longest: Vec<Option<(u32, &'a [i64])>>,
    /// Per key: the first reader state id (state `base + 1 + pos`; `base` = the empty list).
    state_base: Vec<u32>,
    readers_start: Vec<u32>,
    readers: Vec<u32>,
    /// Per key: the longest read has no duplicate element (so prefixes map 1:1 to positions).
    clean_order: Vec<bool>,
}

impl<'a> Index<'a> {
    pub(crate) fn mops(&self, t: u32) -> &[IMop<'a>] {
        &self.mops[self.mop_start[t as usize] as usize..self.mop_start[t as usize + 1] as usize]
    }

    pub(crate) fn key(&self, k: u32) -> &'a str {
        self.keys.name(k)
    }

    fn status(&self, t: u32) -> TxnStatus {
        self.txns[t as usize].status
    }

    fn name(&self, t: u32) -> String {
        super::txn_name(&self.txns[t as usize])
    }

    fn elem(&self, k: u32, v: i64) -> Option<&Elem> {
        self.elems.get(&(k, v))
    }

    /// The element before `v` in `k`'s version order: `Some(None)` = the empty list,
    /// `Some(Some(p))`, or for an unobserved `v` the last observed element (or empty).
    fn prev(&self, k: u32, v: i64) -> Option<i64> {
        let order = &self.order[k as usize];
        match self.elem(k, v).map(|e| e.pos) {
            Some(pos) if pos != NONE => (pos > 0).then(|| order[pos as usize - 1]),
            _ => order.last().copied(),
        }
    }

    fn observed(&self, k: u32, v: i64) -> bool {
        self.elem(k, v).is_some_and(|e| e.pos != NONE)
    }

    /// Reader state of a read of `k` ending in `last` (None = empty), if it has one.
    fn state(&self, k: u32, last: Option<i64>) -> Option<u32> {
        match last {
            None => Some(self.state_base[k as usize]),
            Some(v) => match self.elem(k, v) {
                Some(e) if e.pos != NONE => Some(self.state_base[k as usize] + 1 + e.pos),
                _ => None,
            },
        }
    }

    fn readers_of(&self, s: u32) -> &[u32] {
        &self.readers
            [self.readers_start[s as usize] as usize..self.readers_start[s as usize + 1] as usize]
    }
}

/// Builds the indices. Fails (the check is then `unknown`) when an element is appended twice
/// to one key, or a read of a key returns an integer instead of a list.
pub(crate) fn index(txns: &[Txn]) -> Result<Index<'_>, Unusable> {
    let mut keys = Keys::default();
    let mut mop_start = Vec::with_capacity(txns.len() + 1);
    let mut mops = Vec::with_capacity(txns.len() * 4);
    let mut elems: FxMap<(u32, i64), Elem> = FxMap::default();
    mop_start.push(0u32);
    let mut dup_appends: Vec<String> = Vec::new();
    for t in txns {
        let first = mops.len();
        for m in &t.mops {
            let k = keys.id(m.key());
            let im = match m {
                Mop::Append { value, .. } => IMop::Append(k, *value),
                Mop::Read { value, .. } => IMop::Read(
                    k,
                    match value {
                        None => None,
                        Some(ReadValue::Nil) => Some(&[][..]),
                        Some(ReadValue::List(l)) => Some(l.as_slice()),
                        Some(ReadValue::Int(i)) => {
                            return Err(Unusable(format!(
                                "line {}: the read of key {} returned the integer {i}; list-append reads return lists",
                                t.line(),
                                m.key()
                            )))
                        }
                    },
                ),
                Mop::Write { .. } => {
                    return Err(Unusable(format!(
                        "line {}: a write (\"w\") micro-op in a list-append history",
                        t.line()
                    )))
                }
            };
            mops.push(im);
        }
        note_writes(
            t,
            &mops[first..],
            |m| match *m {
                IMop::Append(k, v) => Some((k, v)),
                IMop::Read(..) => None,
            },
            |k, v, intermediate| {
                let e = Elem {
                    writer: t.id as u32,
                    pos: NONE,
                    intermediate,
                };
                elems.insert((k, v), e).map(|old| old.writer)
            },
            (txns, &keys),
            &mut dup_appends,
        );
        mop_start.push(mops.len() as u32);
    }
    reject_dups(&dup_appends, "appends")?;
    let nk = keys.len();
    let mut longest: Vec<Option<(u32, &[i64])>> = vec![None; nk];
    for t in txns.iter().filter(|t| t.status == TxnStatus::Ok) {
        for m in &mops[mop_start[t.id] as usize..mop_start[t.id + 1] as usize] {
            if let IMop::Read(k, Some(l)) = *m {
                let slot = &mut longest[k as usize];
                if slot.is_none_or(|(_, cur)| l.len() > cur.len()) {
                    *slot = Some((t.id as u32, l));
                }
            }
        }
    }
    let mut order = Vec::with_capacity(nk);
    let mut clean_order = Vec::with_capacity(nk);
    for (k, l) in longest.iter().enumerate() {
        let raw = l.map_or(&[][..], |(_, l)| l);
        let mut seen: FxMap<i64, ()> = FxMap::default();
        let mut o = Vec::with_capacity(raw.len());
        for &v in raw {
            if seen.insert(v, ()).is_none() {
                let e = elems.entry((k as u32, v)).or_insert(Elem {
                    writer: NONE,
                    pos: NONE,
                    intermediate: false,
                });
                e.pos = o.len() as u32;
                o.push(v);
            }
        }
        clean_order.push(o.len() == raw.len());
        order.push(o);
    }
    let mut state_base = Vec::with_capacity(nk);
    let mut n_states = 0u32;
    for o in &order {
        state_base.push(n_states);
        n_states += o.len() as u32 + 1;
    }
    let mut idx = Index {
        txns,
        keys,
        mop_start,
        mops,
        elems,
        order,
        longest,
        state_base,
        readers_start: Vec::new(),
        readers: Vec::new(),
        clean_order,
    };
    // Readers per state, compressed rows.
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    for t in txns.iter().filter(|t| t.status == TxnStatus::Ok) {
        for m in idx.mops(t.id as u32) {
            if let IMop::Read(k, Some(l)) = *m {
                if let Some(s) = idx.state(k, l.last().copied()) {
                    pairs.push((s, t.id as u32));
                }
            }
        }
    }
    let mut start = vec![0u32; n_states as usize + 1];
    for &(s, _) in &pairs {
        start[s as usize + 1] += 1;
    }
    for i in 0..n_states as usize {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut readers = vec![0u32; pairs.len()];
    for (s, t) in pairs {
        readers[fill[s as usize] as usize] = t;
        fill[s as usize] += 1;
    }
    idx.readers_start = start;
    idx.readers = readers;
    Ok(idx)
}

/// A few elements of `order` around positions `a..=b`, e.g. `[… 3 4 5 …]`.
fn window(order: &[i64], a: usize, b: usize) -> String {
    let lo = a.saturating_sub(2);
    let hi = (b + 3).min(order.len());
    let mid: Vec<String> = order[lo..hi].iter().map(i64::to_string).collect();
    format!(
        "[{}{}{}]",
        if lo > 0 { "… " } else { "" },
        mid.join(" "),
        if hi < order.len() { " …" } else { "" }
    )
}

impl Index<'_> {
    /// "T40's read of x, [… 3 4 …], shows that order": evidence for adjacent positions.
    fn evidence(&self, k: u32, a: usize, b: usize) -> String {
        let (who, _) = self.longest[k as usize].expect("an observed element has a longest read");
        format!(
            "{}'s read of {}, {}",
            self.name(who),
            self.key(k),
            window(&self.order[k as usize], a, b)
        )
    }

    /// The key and a sentence saying why `a -> b` carries relation `rel` (ww, wr or rw).
    fn explain_edge(&self, a: u32, b: u32, rel: u8) -> Option<Because> {
        let (an, bn) = (self.name(a), self.name(b));
        for (to_mop, m) in self.mops(b).iter().enumerate() {
            let because = |key: &str, text: String, from_mop: usize| Because {
                key: key.to_string(),
                text,
                from_mop,
                to_mop,
            };
            match (*m, rel) {
                (IMop::Read(k, Some(l)), WR) => {
                    let Some(&last) = l.last() else { continue };
                    if self.elem(k, last).is_none_or(|e| e.writer != a) {
                        continue;
                    }
                    let Some(from) = self.append_pos(a, k, last) else {
                        continue;
                    };
                    let text = format!(
                        "{bn} read {} = {}, whose last element {last} {an} appended",
                        self.key(k),
                        show_list(l)
                    );
                    return Some(because(self.key(k), text, from));
                }
                (IMop::Append(k, v), WW) => {
                    let Some(p) = self.prev(k, v) else { continue };
                    if self.elem(k, p).is_none_or(|e| e.writer != a) {
                        continue;
                    }
                    let Some(from) = self.append_pos(a, k, p) else {
                        continue;
                    };
                    let key = self.key(k);
                    let ppos = self.elem(k, p).expect("prev is known").pos as usize;
                    let text = if self.observed(k, v) {
                        format!(
                            "{an} appended {p} to {key} just before {bn} appended {v} ({}, shows that order)",
                            self.evidence(k, ppos, ppos + 1)
                        )
                    } else {
                        format!(
                            "{bn}'s append of {v} to {key} appears in no read, so it came after every element reads showed, the last being {p}, which {an} appended ({})",
                            self.evidence(k, ppos, ppos)
                        )
                    };
                    return Some(because(key, text, from));
                }
                (IMop::Append(k, v), RW) => {
                    let prev = self.prev(k, v);
                    let Some(s) = self.state(k, prev) else {
                        continue;
                    };
                    if !self.readers_of(s).contains(&a) {
                        continue;
                    }
                    let Some(from) = self.read_pos(a, k, prev) else {
                        continue;
                    };
                    let key = self.key(k);
                    let read = self.read_of(a, k, prev);
                    let text = match (prev, self.observed(k, v)) {
                        (Some(p), true) => {
                            let pp = self.elem(k, p).expect("prev is known").pos as usize;
                            format!(
                                "{an} read {key} = {read}, missing {v}, which {bn} appended right after {p} ({}, shows that order)",
                                self.evidence(k, pp, pp + 1)
                            )
                        }
                        (None, true) => format!(
                            "{an} read {key} as empty, missing {v}, which {bn} appended as the first element of {key} ({}, shows that order)",
                            self.evidence(k, 0, 0)
                        ),
                        (Some(_), false) => format!(
                            "{an} read {key} = {read}, the longest state of {key} any read showed, so it missed {bn}'s append of {v}, which no read shows"
                        ),
                        (None, false) => format!(
                            "{an} read {key} as empty and no read ever showed an element of {key}, so it missed {bn}'s append of {v}"
                        ),
                    };
                    return Some(because(key, text, from));
                }
                _ => {}
            }
        }
        None
    }

    /// Position in `t` of its append of `v` to `k`.
    fn append_pos(&self, t: u32, k: u32, v: i64) -> Option<usize> {
        self.mops(t)
            .iter()
            .position(|m| matches!(*m, IMop::Append(k2, v2) if k2 == k && v2 == v))
    }

    /// Position in `t` of a committed read of `k` that ended at `last` (None = empty).
    fn read_pos(&self, t: u32, k: u32, last: Option<i64>) -> Option<usize> {
        self.mops(t).iter().position(
            |m| matches!(*m, IMop::Read(k2, Some(l)) if k2 == k && l.last().copied() == last),
        )
    }

    /// How `t` read `k` when the read ended at `last`, rendered.
    fn read_of(&self, t: u32, k: u32, last: Option<i64>) -> String {
        self.mops(t)
            .iter()
            .find_map(|m| match *m {
                IMop::Read(k2, Some(l)) if k2 == k && l.last().copied() == last => {
                    Some(show_list(l))
                }
                _ => None,
            })
            .unwrap_or_else(|| "[]".into())
    }
}

/// Per committed read: incompatible order, duplicates, garbage and aborted elements (G1a),
/// intermediate reads (G1b).
fn reads(idx: &Index, f: &mut Findings) {
    let mut incompatible_keys = vec![false; idx.keys.len()];
    // Per key, positions of the order whose element is garbage or was appended by a failed
    // transaction: a prefix read only needs checking against these.
    let mut bad_pos: Vec<Vec<u32>> = vec![Vec::new(); idx.keys.len()];
    for (k, o) in idx.order.iter().enumerate() {
        for (p, &v) in o.iter().enumerate() {
            let e = idx.elem(k as u32, v).expect("ordered element is indexed");
            if e.writer == NONE || idx.status(e.writer) == TxnStatus::Fail {
                bad_pos[k].push(p as u32);
            }
        }
    }
    let mut dup_seen: FxMap<i64, u32> = FxMap::default();
    for t in idx.txns.iter().filter(|t| t.status == TxnStatus::Ok) {
        let me = t.id as u32;
        for m in idx.mops(me) {
            let IMop::Read(k, Some(l)) = *m else { continue };
            let ku = k as usize;
            let longest = idx.longest[ku].map_or(&[][..], |(_, l)| l);
            let prefix = longest.len() >= l.len() && longest[..l.len()] == *l;
            if !prefix && !incompatible_keys[ku] {
                incompatible_keys[ku] = true;
                let (who, _) = idx.longest[ku].expect("a non-empty read exists");
                f.push(AnomalyClass::IncompatibleOrder, || {
                    on_key(idx, AnomalyClass::IncompatibleOrder, &[me, who], k, format!(
                        "{} read {} = {} but {} read it as {}: neither is a prefix of the other, so no single order of appends explains both",
                        idx.name(me), idx.key(k), show_list(l), idx.name(who), show_list(longest)
                    ))
                });
            }
            let exact = prefix && idx.clean_order[ku];
            if !exact {
                dup_seen.clear();
                let mut dups: Vec<i64> = Vec::new();
                for &v in l {
                    let c = dup_seen.entry(v).or_insert(0);
                    *c += 1;
                    if *c == 2 {
                        dups.push(v);
                    }
                }
                if !dups.is_empty() {
                    f.push(AnomalyClass::DuplicateElements, || {
                        on_key(idx, AnomalyClass::DuplicateElements, &[me], k, format!(
                            "{} read {} = {}, which contains {} more than once, though each value is appended once",
                            idx.name(me), idx.key(k), show_list(l), join_and(&dups)
                        ))
                    });
                }
            }
            // Elements to check for garbage / aborted writers.
            let suspects: Vec<i64> = if exact {
                bad_pos[ku]
                    .iter()
                    .take_while(|&&p| (p as usize) < l.len())
                    .map(|&p| idx.order[ku][p as usize])
                    .collect()
            } else {
                l.iter()
                    .copied()
                    .filter(|&v| {
                        idx.elem(k, v).is_none_or(|e| {
                            e.writer == NONE || idx.status(e.writer) == TxnStatus::Fail
                        })
                    })
                    .collect()
            };
            for v in suspects {
                match idx.elem(k, v).map(|e| e.writer) {
                    Some(w) if w != NONE => f.push(AnomalyClass::G1a, || {
                        on_key(idx, AnomalyClass::G1a, &[w, me], k, format!(
                            "{} read {} = {}, which includes {v}, appended by {}, a transaction that failed (aborted)",
                            idx.name(me), idx.key(k), show_list(l), idx.name(w)
                        ))
                    }),
                    _ => f.push(AnomalyClass::GarbageRead, || {
                        on_key(idx, AnomalyClass::GarbageRead, &[me], k, format!(
                            "{} read {} = {}, which includes {v}, but no transaction appended {v} to {}",
                            idx.name(me), idx.key(k), show_list(l), idx.key(k)
                        ))
                    }),
                }
            }
            if let Some(&last) = l.last() {
                if let Some(e) = idx.elem(k, last) {
                    if e.intermediate && e.writer != me {
                        let w = e.writer;
                        f.push(AnomalyClass::G1b, || {
                            let later: Vec<i64> = idx
                                .mops(w)
                                .iter()
                                .filter_map(|m| match *m {
                                    IMop::Append(k2, v2) if k2 == k => Some(v2),
                                    _ => None,
                                })
                                .collect();
                            on_key(idx, AnomalyClass::G1b, &[w, me], k, format!(
                                "{} read {} = {}, ending at {last}, but {} appended {} to {} in that order, so {} saw its intermediate state",
                                idx.name(me), idx.key(k), show_list(l), idx.name(w), join_and(&later), idx.key(k), idx.name(me)
                            ))
                        });
                    }
                }
            }
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
pub(crate) fn join_and<T: std::fmt::Display>(v: &[T]) -> String {
    let s: Vec<String> = v.iter().map(T::to_string).collect();
    match s.len() {
        0 => String::new(),
        1 => s[0].clone(),
        n => format!("{} and {}", s[..n - 1].join(", "), s[n - 1]),
    }
}

fn on_key(
    idx: &Index,
    class: AnomalyClass,
    txns: &[u32],
    k: u32,
    explanation: String,
) -> super::Anomaly {
    super::Anomaly {
        class,
        txns: txns
            .iter()
            .map(|&t| super::TxnRef::of(&idx.txns[t as usize]))
            .collect(),
        steps: Vec::new(),
        key: Some(idx.key(k).to_string()),
        explanation,
    }
}

/// Internal consistency and future reads inside each committed transaction (Elle's
/// `op-int-case` / `op-future-read-case`): replay the transaction's own appends on what it
/// read before; a later read must match (a full list when the key was read before, else a
/// suffix made of its own appends).
fn internal(idx: &Index, f: &mut Findings) {
    enum Expect {
        Known(Vec<i64>),
        Suffix(Vec<i64>),
    }
    for t in idx.txns.iter().filter(|t| t.status == TxnStatus::Ok) {
        let me = t.id as u32;
        let mops = idx.mops(me);
        if mops.len() < 2 {
            continue;
        }
        let mut state: Vec<(u32, Expect)> = Vec::new();
        for (i, m) in mops.iter().enumerate() {
            match *m {
                IMop::Append(k, v) => {
                    for earlier in &mops[..i] {
                        if let IMop::Read(k2, Some(l)) = *earlier {
                            if k2 == k && l.contains(&v) {
                                f.push(AnomalyClass::FutureRead, || {
                                    on_key(idx, AnomalyClass::FutureRead, &[me], k, format!(
                                        "{} read {} = {}, which includes {v}, an element {} only appends later in the same transaction",
                                        idx.name(me), idx.key(k), show_list(l), idx.name(me)
                                    ))
                                });
                            }
                        }
                    }
                    match state.iter_mut().find(|(k2, _)| *k2 == k) {
                        Some((_, Expect::Known(l) | Expect::Suffix(l))) => l.push(v),
                        None => state.push((k, Expect::Suffix(vec![v]))),
                    }
                }
                IMop::Read(k, Some(l)) => {
                    let slot = state.iter_mut().find(|(k2, _)| *k2 == k);
                    if let Some((_, exp)) = slot {
                        let (ok, want) = match exp {
                            Expect::Known(e) => (e.as_slice() == l, show_list(e)),
                            Expect::Suffix(s) => {
                                (l.ends_with(s), format!("a list ending in {}", show_list(s)))
                            }
                        };
                        if !ok {
                            f.push(AnomalyClass::Internal, || {
                                on_key(idx, AnomalyClass::Internal, &[me], k, format!(
                                    "{} read {} = {}, but its own earlier reads and appends of {} mean it should have read {want}",
                                    idx.name(me), idx.key(k), show_list(l), idx.key(k)
                                ))
                            });
                        }
                        *exp = Expect::Known(l.to_vec());
                    } else {
                        state.push((k, Expect::Known(l.to_vec())));
                    }
                }
                IMop::Read(_, None) => {}
            }
        }
    }
}

/// A committed append that follows (skipping unknown ones) an aborted one in a version order
/// (Elle's dirty-update).
fn dirty_updates(idx: &Index, f: &mut Findings) {
    for (k, o) in idx.order.iter().enumerate() {
        let mut aborted: Option<(u32, i64, usize)> = None;
        for (pos, &v) in o.iter().enumerate() {
            let w = idx.elem(k as u32, v).expect("indexed").writer;
            if w == NONE {
                continue;
            }
            match idx.status(w) {
                TxnStatus::Fail => aborted = Some((w, v, pos)),
                TxnStatus::Ok => {
                    if let Some((fw, fv, fpos)) = aborted.take() {
                        f.push(AnomalyClass::DirtyUpdate, || {
                            on_key(idx, AnomalyClass::DirtyUpdate, &[fw, w], k as u32, format!(
                                "{} appended {v} to {} after {fv}, which {} appended but {} failed (aborted) ({}, shows that order)",
                                idx.name(w), idx.key(k as u32), idx.name(fw), idx.name(fw),
                                idx.evidence(k as u32, fpos, pos)
                            ))
                        });
                    }
                }
                TxnStatus::Info => {}
            }
        }
    }
}

/// Committed transactions that read the same state of a key and then both appended to it
/// (Elle's lost-update; linear, and finds cases the version order cannot order).
fn lost_updates(idx: &Index, f: &mut Findings) {
    /// A key and the last element of the state read (None = empty).
    type State = (u32, Option<i64>);
    let mut groups: FxMap<State, Vec<u32>> = FxMap::default();
    for t in idx.txns.iter().filter(|t| t.status == TxnStatus::Ok) {
        let me = t.id as u32;
        let mut first_read: Vec<State> = Vec::new();
        let mut written: Vec<u32> = Vec::new();
        for m in idx.mops(me) {
            match *m {
                IMop::Read(k, Some(l))
                    if !first_read.iter().any(|(k2, _)| *k2 == k) && !written.contains(&k) =>
                {
                    first_read.push((k, l.last().copied()));
                }
                IMop::Append(k, _) if !written.contains(&k) => {
                    written.push(k);
                    if let Some(&(_, s)) = first_read.iter().find(|(k2, _)| *k2 == k) {
                        groups.entry((k, s)).or_default().push(me);
                    }
                }
                _ => {}
            }
        }
    }
    let mut cases: Vec<(State, Vec<u32>)> =
        groups.into_iter().filter(|(_, v)| v.len() > 1).collect();
    cases.sort_unstable();
    for ((k, last), ts) in cases {
        f.push(AnomalyClass::LostUpdate, || {
            let names: Vec<String> = ts.iter().map(|&t| idx.name(t)).collect();
            let state = last.map_or("as empty".to_string(), |v| format!("with last element {v}"));
            on_key(idx, AnomalyClass::LostUpdate, &ts, k, format!(
                "{} all read {} {state} and then appended to it, so at most one of them can have seen the state the others wrote",
                join_and(&names), idx.key(k)
            ))
        });
    }
}

impl super::Inference for Index<'_> {
    /// Every anomaly that needs no cycle search.
    fn non_cycle_anomalies(&self, f: &mut Findings) {
        reads(self, f);
        internal(self, f);
        dirty_updates(self, f);
        lost_updates(self, f);
    }

    /// Emits ww, wr and rw edges between transactions that may have committed (ok and info).
    fn data_edges(&self, out: &mut Edges) {
        let idx = self;
        // Per key, the transactions whose appends no read shows: they all follow the last
        // observed state, so its readers precede every one of them (fanned out at the end).
        let mut unobserved: Vec<Vec<u32>> = vec![Vec::new(); idx.order.len()];
        for t in idx.txns.iter().filter(|t| t.status != TxnStatus::Fail) {
            let me = t.id as u32;
            for m in idx.mops(me) {
                match *m {
                    IMop::Append(k, v) => {
                        // Position of the previous element (None = the empty list), found once.
                        let order = &idx.order[k as usize];
                        let seen = idx.elem(k, v).filter(|e| e.pos != NONE);
                        let prev_pos = match seen {
                            Some(e) => e.pos.checked_sub(1),
                            None => (order.len() as u32).checked_sub(1),
                        };
                        if let Some(pp) = prev_pos {
                            if let Some(e) = idx.elem(k, order[pp as usize]) {
                                if e.writer != NONE
                                    && e.writer != me
                                    && idx.status(e.writer) != TxnStatus::Fail
                                {
                                    out.list.push((e.writer, me, WW));
                                }
                            }
                        }
                        if seen.is_none() {
                            unobserved[k as usize].push(me);
                            continue;
                        }
                        let s = idx.state_base[k as usize] + prev_pos.map_or(0, |pp| pp + 1);
                        out.list.extend(
                            idx.readers_of(s)
                                .iter()
                                .filter(|&&r| r != me)
                                .map(|&r| (r, me, RW)),
                        );
                    }
                    IMop::Read(k, Some(l)) if t.status == TxnStatus::Ok => {
                        if let Some(&last) = l.last() {
                            if let Some(e) = idx.elem(k, last) {
                                if e.writer != NONE
                                    && e.writer != me
                                    && idx.status(e.writer) != TxnStatus::Fail
                                {
                                    out.list.push((e.writer, me, WR));
                                }
                            }
                        }
                    }
                    IMop::Read(..) => {}
                }
            }
        }
        for (k, mut ws) in unobserved.into_iter().enumerate() {
            ws.dedup(); // one transaction's several appends to k are adjacent
            let last = idx.state_base[k] + idx.order[k].len() as u32;
            out.fan(idx.readers_of(last), &ws);
        }
    }

    fn explain(&self, a: u32, b: u32, rel: u8) -> Option<Because> {
        self.explain_edge(a, b, rel)
    }
}
