//! Hand-built histories with known staleness for `checkers::nwr` (the measurement side of
//! Bailis et al., "Probabilistically Bounded Staleness for Practical Partial Quorums", VLDB
//! 2012). Every history is small enough to check the expected figures by reading it.

use checkers::history::{Event, EventType, History, Process};
use checkers::nwr::{self, AnomalyKind, NwrAnalysis, NwrOptions};
use checkers::quorum::{self, PbsOptions, QuorumConfig, WarsLatencies};
use serde_json::{json, Value};

const MS: u64 = 1_000_000;

/// One op: `(process, f, key, input, output, call_ms, ret_ms)`; `ret_ms: None` = indeterminate.
type Op = (
    u64,
    &'static str,
    Option<&'static str>,
    Value,
    Option<Value>,
    u64,
    Option<u64>,
);

/// Builds histories from [`Op`]s.
#[derive(Default)]
struct H {
    ops: Vec<Op>,
}

impl H {
    fn w(mut self, p: u64, v: i64, call: u64, ret: u64) -> Self {
        self.ops
            .push((p, "write", None, json!(v), Some(json!(v)), call, Some(ret)));
        self
    }
    fn w_info(mut self, p: u64, v: i64, call: u64) -> Self {
        self.ops
            .push((p, "write", None, json!(v), None, call, None));
        self
    }
    fn r(mut self, p: u64, v: Option<i64>, call: u64, ret: u64) -> Self {
        self.ops.push((
            p,
            "read",
            None,
            Value::Null,
            Some(v.map_or(Value::Null, |v| json!(v))),
            call,
            Some(ret),
        ));
        self
    }
    fn kr(mut self, p: u64, key: &'static str, v: i64, call: u64, ret: u64) -> Self {
        self.ops.push((
            p,
            "read",
            Some(key),
            Value::Null,
            Some(json!(v)),
            call,
            Some(ret),
        ));
        self
    }
    fn kw(mut self, p: u64, key: &'static str, v: i64, call: u64, ret: u64) -> Self {
        self.ops.push((
            p,
            "write",
            Some(key),
            json!(v),
            Some(json!(v)),
            call,
            Some(ret),
        ));
        self
    }
    fn history(&self) -> History {
        let mut evs: Vec<(u64, u8, Event)> = Vec::new();
        for (p, f, key, input, output, call, ret) in &self.ops {
            let mk = |kind, time: u64, value: Value| Event {
                index: 0,
                time: time * MS,
                process: Process::Client(*p),
                kind,
                f: f.to_string(),
                key: key.map(str::to_string),
                value,
                node: None,
                error: None,
            };
            evs.push((*call, 1, mk(EventType::Invoke, *call, input.clone())));
            match ret {
                Some(t) => evs.push((
                    *t,
                    0,
                    mk(EventType::Ok, *t, output.clone().unwrap_or(Value::Null)),
                )),
                None => evs.push((call + 1, 0, mk(EventType::Info, call + 1, input.clone()))),
            }
        }
        // Completions sort before invokes at equal times.
        evs.sort_by_key(|(t, o, _)| (*t, *o));
        let events = evs
            .into_iter()
            .enumerate()
            .map(|(i, (_, _, mut e))| {
                e.index = i as u64;
                e
            })
            .collect();
        History::from_events(events)
    }
    /// The analysis, with every anomaly's sentence checked claim by claim against the history.
    fn analyze(&self) -> NwrAnalysis {
        let h = self.history();
        let a = nwr::analyze_history(&h, &NwrOptions::default()).unwrap();
        for x in &a.anomalies {
            checkers::explain::verify_sentence(&x.sentence, &h.events)
                .unwrap_or_else(|e| panic!("{e}: {}", x.description));
            assert_eq!(x.description, x.sentence.text);
        }
        a
    }
}

fn kinds(a: &NwrAnalysis, k: AnomalyKind) -> Vec<&str> {
    a.anomalies
        .iter()
        .filter(|x| x.kind == k)
        .map(|x| x.description.as_str())
        .collect()
}

#[test]
fn sequential_writes_give_k_versions_behind() {
    // w1 [0,10], w2 [20,30], w3 [40,50]; reads at 60 return 1 (k=2), 3 (fresh), nil (k=3).
    let a = H::default()
        .w(0, 1, 0, 10)
        .w(0, 2, 20, 30)
        .w(0, 3, 40, 50)
        .r(1, Some(1), 60, 61)
        .r(2, Some(3), 60, 61)
        .r(3, None, 60, 61)
        .analyze();
    assert_eq!((a.reads, a.fresh, a.stale), (3, 1, 2));
    assert_eq!(a.max_k, 3);
    let ks: Vec<(u64, u64)> = a.k_histogram.iter().map(|c| (c.k, c.reads)).collect();
    assert_eq!(ks, vec![(2, 1), (3, 1)]);
    let stale = kinds(&a, AnomalyKind::StaleRead);
    // The read of 1 missed w2 (acked at 30 ms), 30 ms before it began.
    assert!(
        stale.iter().any(|d| d.starts_with(
            "read → 1 by p1 began 30 ms after write 2 by p0 was acknowledged, \
                               yet it returned a value 2 acknowledged versions behind"
        )),
        "{stale:?}"
    );
    assert!((a.stale_fraction - 2.0 / 3.0).abs() < 1e-12);
    // All three reads began 10 ms after the last ack: one bucket [10, 20) ms.
    assert_eq!(a.t_visibility.len(), 1);
    let b = a.t_visibility[0];
    assert_eq!(
        (b.t_lo_ms, b.t_hi_ms, b.reads, b.fresh),
        (10.0, Some(20.0), 3, 1)
    );
}

#[test]
fn concurrent_writes_are_either_fresh() {
    // The module doc's example: w1 [0,10], w2 [5,20] overlap; w3 [30,40] follows both.
    let a = H::default()
        .w(0, 1, 0, 10)
        .w(1, 2, 5, 20)
        .r(2, Some(1), 25, 26)
        .r(3, Some(2), 25, 26)
        .w(0, 3, 30, 40)
        .r(2, Some(1), 50, 51)
        .r(3, Some(2), 50, 51)
        .r(4, Some(3), 50, 51)
        .analyze();
    // At 25 both w1 and w2 are fresh; at 50 both are one version behind w3.
    assert_eq!((a.fresh, a.stale, a.max_k), (3, 2, 1));
    // A read overlapping a write may return it (in flight) or its predecessor.
    let b = H::default()
        .w(0, 1, 0, 10)
        .w(1, 2, 20, 40)
        .r(2, Some(2), 25, 30)
        .r(3, Some(1), 25, 30)
        .analyze();
    assert_eq!((b.fresh, b.stale), (2, 0));
}

#[test]
fn lost_write_after_quiescence() {
    // w2 follows w1 in real time, but every final read returns 1 (LWW under clock skew).
    let base = H::default().w(0, 1, 0, 10).w(1, 2, 20, 30);
    let a = base.clone_with(|h| h.r(2, Some(1), 100, 101).r(3, Some(1), 102, 103));
    assert_eq!((a.acknowledged_writes, a.lost_writes), (2, 1));
    let lost = kinds(&a, AnomalyKind::LostWrite);
    assert_eq!(lost.len(), 1);
    assert!(
        lost[0]
            .starts_with("write 2 by p1 was acknowledged at 0.030 s but lost: the 2 final reads"),
        "{lost:?}"
    );
    // One final read that sees 2 is enough.
    let b = base.clone_with(|h| h.r(2, Some(1), 100, 101).r(3, Some(2), 102, 103));
    assert_eq!(b.lost_writes, 0);
    // No final read: undecided, not lost.
    let c = base.clone_with(|h| h.r(2, Some(1), 25, 26));
    assert_eq!((c.lost_writes, c.keys_without_final_reads), (0, 1));
    // An indeterminate write after w2 pushes quiescence to its invoke and may legitimately win.
    let d = base.clone_with(|h| h.w_info(4, 9, 50).r(2, Some(9), 100, 101));
    assert_eq!(d.lost_writes, 0);
    assert_eq!(d.reads, 1);
}

#[test]
fn session_guarantees() {
    let a = H::default()
        .w(0, 1, 0, 10)
        .w(1, 2, 20, 30)
        // p2 reads 2 then 1: monotonic-read violation.
        .r(2, Some(2), 40, 41)
        .r(2, Some(1), 42, 43)
        // p1 wrote 2 and then reads 1: read-your-writes violation (and stale).
        .r(1, Some(1), 44, 45)
        // p3 reads 1 then 2: fine.
        .r(3, Some(1), 15, 16)
        .r(3, Some(2), 46, 47)
        .analyze();
    assert_eq!(a.monotonic_read_violations, 1);
    assert_eq!(a.read_your_writes_violations, 1);
    let per: Vec<(Process, u64, u64)> = a
        .per_process
        .iter()
        .map(|p| (p.process, p.monotonic_reads, p.read_your_writes))
        .collect();
    assert_eq!(
        per,
        vec![(Process::Client(1), 0, 1), (Process::Client(2), 1, 0)]
    );
    let m = kinds(&a, AnomalyKind::MonotonicRead);
    assert_eq!(
        m[0],
        "read → 1 by p2 began 1.0 ms after read → 2 by p2, an earlier read of the same process, \
         had completed, yet it returned the value of write 1 by p0, older: write 2 by p1 began \
         10 ms after write 1 by p0 was acknowledged."
    );
    let r = kinds(&a, AnomalyKind::ReadYourWrites);
    assert!(
        r[0].starts_with(
            "read → 1 by p1 began 14 ms after write 2 by p1, a write of the same process, was \
             acknowledged, yet it returned the value of write 1 by p0"
        ),
        "{r:?}"
    );
}

#[test]
fn new_old_inversion_is_named_even_without_stale_reads() {
    // Strict quorums without read repair: w2 is in flight on one replica; p1's read sees it,
    // p2's later read (another quorum) does not. Nothing acknowledged was missed, so no read
    // is stale, yet the history is not linearizable: the report must say why.
    let a = H::default()
        .w(0, 1, 0, 10)
        .w(9, 2, 20, 100)
        .r(1, Some(2), 30, 40)
        .r(2, Some(1), 50, 60)
        .analyze();
    assert_eq!((a.stale, a.new_old_inversions), (0, 1));
    let d = kinds(&a, AnomalyKind::NewOldInversion);
    assert_eq!(
        d[0],
        "read → 1 by p2 began 10 ms after read → 2 by p1 had completed, yet it returned the value \
         of write 1 by p0, and the earlier read the value of write 2 by p9: write 2 by p9 began \
         10 ms after write 1 by p0 was acknowledged."
    );
    assert!(a
        .summary
        .contains("Worst anomaly, a new-old inversion: read → 1 by p2"));
}

#[test]
fn unexplained_reads_are_neither_fresh_nor_stale() {
    let a = H::default()
        .w(0, 1, 0, 10)
        .r(1, Some(99), 20, 21)
        .r(1, Some(5), 22, 23)
        .w(0, 5, 30, 40)
        .analyze();
    assert_eq!((a.reads, a.unexplained_reads), (0, 2));
    let d = kinds(&a, AnomalyKind::UnexplainedRead);
    assert!(
        d[0].contains("which no operation on this key wrote"),
        "{d:?}"
    );
    assert!(
        d[1].contains("before any operation wrote it: write 5 by p0 began 7.0 ms after read → 5 by p1 completed"),
        "{d:?}"
    );
}

#[test]
fn keys_are_independent_and_named() {
    let a = H::default()
        .kw(0, "a", 1, 0, 10)
        .kw(5, "b", 1, 0, 10)
        .kw(0, "a", 2, 20, 30)
        .kr(1, "a", 1, 40, 41)
        .kr(6, "b", 1, 40, 41)
        .analyze();
    assert_eq!((a.fresh, a.stale), (1, 1));
    assert!(kinds(&a, AnomalyKind::StaleRead)[0].starts_with("On key a, "));
}

#[test]
fn t99_and_prediction_distance() {
    // 100 reads: the 10 that begin within 1 ms of the ack are stale, the rest are fresh.
    let mut h = H::default();
    let mut t = 0;
    for i in 0..100i64 {
        h = h.w(0, 2 * i + 1, t, t + 1).w(0, 2 * i + 2, t + 2, t + 3);
        // Stale reads begin 1 ms after the newest ack (t = 1 ms), fresh ones 5 ms after.
        let lag = if i < 10 { 1 } else { 5 };
        let v = if i < 10 { 2 * i + 1 } else { 2 * i + 2 };
        h = h.r(1, Some(v), t + 3 + lag, t + 3 + lag + 1);
        t += 20;
    }
    let a = h.analyze();
    assert_eq!((a.reads, a.stale), (100, 10));
    // The isotonic fit is 0 at t = 1 ms and 1 from t = 5 ms on.
    assert_eq!(a.t99_fresh_ms, Some(5.0));
    // Compare against a prediction: a strict quorum predicts 1 everywhere, so the distance is
    // the worst bucket's staleness.
    let p = nwr::predict(
        QuorumConfig::new(3, 2, 2, 0).unwrap(),
        &WarsLatencies::default(),
        "default",
        PbsOptions {
            trials: 2_000,
            seed: 1,
        },
    )
    .unwrap();
    let a = a.with_prediction(p);
    let d = a.curve_distance.unwrap();
    // Buckets with ≥ 20 reads: [5, 10) ms holds 90 fresh reads → distance 0; the stale bucket
    // (10 reads) is below the threshold.
    assert_eq!((d.buckets, d.max_abs), (1, 0.0));
    assert!(a.summary.contains("PBS prediction for N=3 W=2 R=2"));
    // Round-trips through the results.json slot.
    let back = NwrAnalysis::from_json(&a.to_json()).unwrap();
    assert_eq!(back, a);
}

#[test]
fn latencies_from_history_halve_round_trips() {
    let h = H::default().w(0, 1, 0, 4).r(1, Some(1), 10, 12);
    let ops = h.history().operations().unwrap();
    let l = WarsLatencies::from_operations(&ops).unwrap();
    assert_eq!(
        (l.w.mean(), l.a.mean(), l.r.mean(), l.s.mean()),
        (2.0, 2.0, 1.0, 1.0)
    );
    assert!(WarsLatencies::from_operations(&ops[..1]).is_none());
    let tv = quorum::t_visibility(
        QuorumConfig::new(3, 2, 2, 0).unwrap(),
        &l,
        PbsOptions::default(),
    )
    .unwrap();
    assert_eq!(tv.p_consistent(0.0), 1.0);
}

impl H {
    fn clone_with(&self, f: impl FnOnce(H) -> H) -> NwrAnalysis {
        f(H {
            ops: self.ops.clone(),
        })
        .analyze()
    }
}
