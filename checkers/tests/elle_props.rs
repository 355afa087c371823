//! Property tests of the Elle checker (proptest): random strict-serializable executions are
//! valid under every model; planted anomalies are found with exactly their class; every edge
//! of every reported cycle holds in the history (checked by an independent re-derivation);
//! and on tiny histories the checker agrees with a brute-force search over all serial orders
//! (serializable and strict-serializable), with unknown transactions either in or out.

use checkers::elle::synth::{self, Inject, SynthSpec};
use checkers::elle::{check, AnomalyClass, CheckOptions, ConsistencyModel, ElleResult, Relation};
use checkers::history::{Event, EventType, History};
use checkers::txn::{self, Mop, ReadValue, Txn, TxnStatus, Validity};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::time::Duration;

fn run(txns: &[Txn], model: ConsistencyModel) -> ElleResult {
    check(
        txns,
        &CheckOptions {
            model,
            timeout: Some(Duration::from_secs(30)),
            ..CheckOptions::default()
        },
    )
}

fn parse(events: Vec<Event>) -> Vec<Txn> {
    txn::parse(&History::from_events(events)).expect("generated history parses")
}

// ---------------------------------------------------------------------------------------------
// An independent re-derivation of each relation, straight from the transactions.

fn read_of(t: &Txn, key: &str) -> Vec<Vec<i64>> {
    t.mops
        .iter()
        .filter_map(|m| match m {
            Mop::Read {
                key: k,
                value: Some(v),
            } if k == key => Some(match v {
                ReadValue::List(l) => l.clone(),
                _ => Vec::new(),
            }),
            _ => None,
        })
        .collect()
}

fn appends(t: &Txn, key: &str) -> Vec<i64> {
    t.mops
        .iter()
        .filter_map(|m| match m {
            Mop::Append { key: k, value } if k == key => Some(*value),
            _ => None,
        })
        .collect()
}

/// The longest committed read of `key`, deduplicated.
fn longest(txns: &[Txn], key: &str) -> Vec<i64> {
    let mut best: Vec<i64> = Vec::new();
    for t in txns.iter().filter(|t| t.status == TxnStatus::Ok) {
        for l in read_of(t, key) {
            if l.len() > best.len() {
                best = l;
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    best.retain(|v| seen.insert(*v));
    best
}

/// The element before `v` in the version order (None = empty), unobserved `v` after the last.
fn prev(order: &[i64], v: i64) -> Option<i64> {
    match order.iter().position(|&x| x == v) {
        Some(0) => None,
        Some(p) => Some(order[p - 1]),
        None => order.last().copied(),
    }
}

/// Does `a -> b` carry `rel` on `key`?
fn holds(txns: &[Txn], a: &Txn, b: &Txn, rel: Relation, key: Option<&str>) -> bool {
    match rel {
        Relation::Realtime => a.complete_index.is_some_and(|c| c < b.invoke_index),
        Relation::Process => a.process == b.process && a.invoke_index < b.invoke_index,
        Relation::Wr => {
            let k = key.expect("data edge names its key");
            let mine = appends(a, k);
            read_of(b, k)
                .iter()
                .any(|l| l.last().is_some_and(|v| mine.contains(v)))
        }
        Relation::Ww => {
            let k = key.expect("data edge names its key");
            let order = longest(txns, k);
            let mine = appends(a, k);
            appends(b, k)
                .iter()
                .any(|&v| prev(&order, v).is_some_and(|p| mine.contains(&p)))
        }
        Relation::Rw => {
            let k = key.expect("data edge names its key");
            let order = longest(txns, k);
            let states: Vec<Option<i64>> =
                read_of(a, k).iter().map(|l| l.last().copied()).collect();
            appends(b, k)
                .iter()
                .any(|&v| states.contains(&prev(&order, v)))
        }
    }
}

/// Every reported cycle closes, each step holds in the history and is explained naming both
/// transactions, and its class matches the relations it counts.
fn verify_cycles(txns: &[Txn], r: &ElleResult) {
    let by_name: HashMap<String, &Txn> = txns
        .iter()
        .map(|t| (format!("T{}", t.index()), t))
        .collect();
    for (class, list) in &r.anomalies {
        for a in list.iter().filter(|a| !a.steps.is_empty()) {
            let n = a.steps.len();
            for (i, s) in a.steps.iter().enumerate() {
                assert_eq!(s.to, a.steps[(i + 1) % n].from, "cycle does not close");
                assert_eq!(s.from, a.txns[i].name);
                let (ta, tb) = (by_name[&s.from], by_name[&s.to]);
                assert!(
                    holds(txns, ta, tb, s.relation, s.key.as_deref()),
                    "{} -{}-> {} does not hold: {}",
                    s.from,
                    s.relation.name(),
                    s.to,
                    s.explanation
                );
                assert!(s.explanation.contains(&s.from) && s.explanation.contains(&s.to));
                if let Some(k) = &s.key {
                    assert!(s.explanation.contains(k.as_str()), "{}", s.explanation);
                }
            }
            let count = |rel| a.steps.iter().filter(|s| s.relation == rel).count();
            let base = match count(Relation::Rw) {
                0 if count(Relation::Wr) > 0 => "G1c",
                0 => "G0",
                1 => "G-single",
                _ => "G2-item",
            };
            let suffix = if count(Relation::Realtime) > 0 {
                "-realtime"
            } else if count(Relation::Process) > 0 {
                "-process"
            } else {
                ""
            };
            assert_eq!(class.name(), format!("{base}{suffix}"), "{}", a.explanation);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Brute force: is there a set of unknown transactions and a serial order of those plus all
// committed ones (respecting real time if `strict`) under which every committed read returns
// exactly what it returned?

fn brute_force(txns: &[Txn], strict: bool) -> bool {
    let infos: Vec<usize> = txns
        .iter()
        .filter(|t| t.status == TxnStatus::Info)
        .map(|t| t.id)
        .collect();
    (0u32..1 << infos.len()).any(|mask| {
        let included: Vec<&Txn> = txns
            .iter()
            .filter(|t| match t.status {
                TxnStatus::Ok => true,
                TxnStatus::Fail => false,
                TxnStatus::Info => {
                    mask & (1 << infos.iter().position(|&i| i == t.id).expect("info")) != 0
                }
            })
            .collect();
        let mut placed = vec![false; included.len()];
        place(&included, &mut placed, &HashMap::new(), strict)
    })
}

fn place(
    ts: &[&Txn],
    placed: &mut Vec<bool>,
    state: &HashMap<String, Vec<i64>>,
    strict: bool,
) -> bool {
    if placed.iter().all(|&p| p) {
        return true;
    }
    for i in 0..ts.len() {
        if placed[i] {
            continue;
        }
        // Strict: everything that completed before i was invoked must already be placed.
        if strict
            && ts.iter().enumerate().any(|(j, u)| {
                !placed[j]
                    && j != i
                    && u.complete_index.is_some_and(|c| c < ts[i].invoke_index)
                    && u.status == TxnStatus::Ok
            })
        {
            continue;
        }
        let mut next = state.clone();
        let mut ok = true;
        for m in &ts[i].mops {
            match m {
                // A register's value is the last element of the list of its writes.
                Mop::Append { key, value } | Mop::Write { key, value } => {
                    next.entry(key.clone()).or_default().push(*value)
                }
                Mop::Read {
                    key,
                    value: Some(v),
                } if ts[i].status == TxnStatus::Ok => {
                    let now = next.get(key).map_or(&[][..], |l| l.as_slice());
                    let same = match v {
                        ReadValue::List(l) => now == l.as_slice(),
                        ReadValue::Int(x) => now.last() == Some(x),
                        ReadValue::Nil => now.is_empty(),
                    };
                    if !same {
                        ok = false;
                        break;
                    }
                }
                _ => {}
            }
        }
        if ok {
            placed[i] = true;
            if place(ts, placed, &next, strict) {
                return true;
            }
            placed[i] = false;
        }
    }
    false
}

/// A tiny random history: transactions applied in a random order, some reads taken from a
/// wrong point of that order (stale or future), some aborted appends leaking, some elements
/// dropped; intervals roughly follow the order, with random overlap. With `register`, writes
/// instead of appends, and a read returns the last element of the list (the register value).
fn tiny(seed: u64, register: bool) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rng.gen_range(2..=5);
    let keys = ["x", "y", "z"];
    let nkeys = rng.gen_range(1..=3);
    let mut next_val: HashMap<&str, i64> = HashMap::new();
    // Plan the micro-ops.
    let mut plans: Vec<Vec<(bool, &str, i64)>> = Vec::new(); // (append?, key, value)
    for _ in 0..n {
        let len = rng.gen_range(1..=3);
        plans.push(
            (0..len)
                .map(|_| {
                    let k = keys[rng.gen_range(0..nkeys)];
                    if rng.gen_bool(0.5) {
                        let v = next_val.entry(k).or_insert(1);
                        *v += 1;
                        (true, k, *v - 1)
                    } else {
                        (false, k, 0)
                    }
                })
                .collect(),
        );
    }
    let status: Vec<EventType> = (0..n)
        .map(|_| match rng.gen_range(0..100) {
            0..=69 => EventType::Ok,
            70..=84 => EventType::Info,
            _ => EventType::Fail,
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.gen_range(0..=i));
    }
    let applies: Vec<bool> = status
        .iter()
        .map(|s| match s {
            EventType::Ok => true,
            EventType::Info => rng.gen_bool(0.5),
            _ => rng.gen_bool(0.1),
        })
        .collect();
    // States after each prefix of the order.
    let mut prefix: Vec<HashMap<&str, Vec<i64>>> = vec![HashMap::new()];
    for &t in &order {
        let mut s = prefix.last().expect("prefix").clone();
        if applies[t] {
            for &(app, k, v) in &plans[t] {
                if app {
                    s.entry(k).or_default().push(v);
                }
            }
        }
        prefix.push(s);
    }
    let mut done: Vec<Vec<Mop>> = vec![Vec::new(); n];
    for (pos, &t) in order.iter().enumerate() {
        let snap = if rng.gen_bool(0.7) {
            pos
        } else {
            rng.gen_range(0..=n)
        };
        let mut view = prefix[snap].clone();
        if snap > pos {
            // A future state already holds this transaction's appends: take them out, so the
            // transaction sees others' later writes and then its own (cycles, not duplicates).
            let own: Vec<(&str, i64)> = plans[t]
                .iter()
                .filter(|p| p.0)
                .map(|p| (p.1, p.2))
                .collect();
            for l in view.iter_mut() {
                l.1.retain(|v| !own.contains(&(*l.0, *v)));
            }
        }
        for &(app, k, v) in &plans[t] {
            if app {
                view.entry(k).or_default().push(v);
                done[t].push(if register {
                    Mop::Write {
                        key: k.into(),
                        value: v,
                    }
                } else {
                    Mop::Append {
                        key: k.into(),
                        value: v,
                    }
                });
            } else {
                let mut l = view.get(k).cloned().unwrap_or_default();
                if !l.is_empty() && rng.gen_bool(0.05) {
                    l.remove(rng.gen_range(0..l.len()));
                }
                let value = match (register, l.last()) {
                    (true, Some(&x)) => ReadValue::Int(x),
                    (true, None) => ReadValue::Nil,
                    (false, _) if l.is_empty() && rng.gen_bool(0.3) => ReadValue::Nil,
                    (false, _) => ReadValue::List(l),
                };
                done[t].push(Mop::Read {
                    key: k.into(),
                    value: Some(value),
                });
            }
        }
    }
    let mut evs: Vec<(u64, u8, Event)> = Vec::new();
    for (pos, &t) in order.iter().enumerate() {
        let call = pos as u64 * 10 + rng.gen_range(0..15);
        let ret = call + rng.gen_range(1..15);
        let invoke_value = serde_json::Value::Array(
            done[t]
                .iter()
                .map(|m| match m {
                    Mop::Read { key, .. } => Mop::Read {
                        key: key.clone(),
                        value: None,
                    }
                    .to_json(),
                    m => m.to_json(),
                })
                .collect(),
        );
        // Through the history.jsonl shape, as the harness writes it.
        let ev = |time: u64, kind: EventType, value| -> Event {
            serde_json::from_value(serde_json::json!({
                "index": 0, "time": time, "process": t, "type": kind, "f": "txn", "value": value
            }))
            .expect("a well-formed event")
        };
        let done_value = if status[t] == EventType::Ok {
            serde_json::Value::Array(done[t].iter().map(Mop::to_json).collect())
        } else {
            invoke_value.clone()
        };
        evs.push((call, 0, ev(call, EventType::Invoke, invoke_value)));
        evs.push((ret, 1, ev(ret, status[t], done_value)));
    }
    evs.sort_by_key(|e| (e.0, e.1));
    evs.into_iter()
        .enumerate()
        .map(|(i, (_, _, mut e))| {
            e.index = i as u64;
            e
        })
        .collect()
}

fn synth_spec() -> impl Strategy<Value = SynthSpec> {
    (
        1usize..2000,
        1usize..8,
        1usize..6,
        1usize..12,
        0.0f64..0.2,
        0.0f64..0.2,
        any::<u64>(),
    )
        .prop_map(
            |(txns, processes, active_keys, appends_per_key, info_rate, fail_rate, seed)| {
                SynthSpec {
                    txns,
                    processes,
                    active_keys,
                    appends_per_key,
                    max_mops: 4,
                    info_rate,
                    fail_rate,
                    empty_reads: 0.0,
                    seed,
                    inject: Vec::new(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn strict_serializable_executions_are_valid_under_every_model(spec in synth_spec()) {
        let txns = parse(synth::list_append(&spec));
        for m in ConsistencyModel::ALL {
            let r = run(&txns, m);
            if r.txns.ok == 0 {
                prop_assert_eq!(r.verdict, Validity::Unknown);
                continue;
            }
            prop_assert_eq!(r.verdict, Validity::Valid, "{}: {}", m, r.explanation);
            prop_assert!(r.counts.is_empty(), "{}", r.explanation);
        }
    }

    #[test]
    fn planted_anomalies_are_found_with_their_class(
        spec in synth_spec(),
        picks in proptest::collection::vec(0usize..7, 1..5),
    ) {
        let mut spec = spec;
        spec.inject = picks.iter().map(|&i| Inject::ALL[i]).collect();
        let txns = parse(synth::list_append(&spec));
        for model in [ConsistencyModel::Serializable, ConsistencyModel::StrictSerializable, ConsistencyModel::SnapshotIsolation] {
            let r = run(&txns, model);
            let mut want: HashMap<AnomalyClass, usize> = HashMap::new();
            for inj in &spec.inject {
                let classes: &[AnomalyClass] = match inj {
                    Inject::G0 => &[AnomalyClass::G0],
                    Inject::G1c => &[AnomalyClass::G1c],
                    Inject::GSingle => &[AnomalyClass::GSingle],
                    Inject::G2Item if model == ConsistencyModel::SnapshotIsolation => &[],
                    Inject::G2Item => &[AnomalyClass::G2Item],
                    Inject::StaleRead if model == ConsistencyModel::StrictSerializable => &[AnomalyClass::GSingleRealtime],
                    Inject::StaleRead => &[],
                    Inject::G1a => &[AnomalyClass::G1a],
                    // A reader of an intermediate state also misses the final append: G-single.
                    Inject::G1b => &[AnomalyClass::G1b, AnomalyClass::GSingle],
                };
                for c in classes {
                    *want.entry(*c).or_insert(0) += 1;
                }
            }
            let got: HashMap<AnomalyClass, usize> = r.counts.iter().map(|(c, n)| (*c, *n)).collect();
            prop_assert_eq!(&got, &want, "{}: {}", model, r.explanation);
            prop_assert_eq!(r.verdict == Validity::Invalid, !want.is_empty());
            verify_cycles(&txns, &r);
        }
    }

    #[test]
    fn every_reported_cycle_edge_holds_in_the_history(seed in any::<u64>()) {
        // Tiny perturbed histories produce all sorts of cycles; check what is reported.
        let txns = parse(tiny(seed, false));
        for m in ConsistencyModel::ALL {
            verify_cycles(&txns, &run(&txns, m));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn agrees_with_brute_force_on_tiny_histories(seed in any::<u64>()) {
        let txns = parse(tiny(seed, false));
        prop_assume!(txns.iter().any(|t| t.status == TxnStatus::Ok));
        for (model, strict) in [(ConsistencyModel::Serializable, false), (ConsistencyModel::StrictSerializable, true)] {
            let r = run(&txns, model);
            prop_assert_ne!(r.verdict, Validity::Unknown, "{}", r.explanation);
            let brute = brute_force(&txns, strict);
            prop_assert_eq!(
                r.verdict == Validity::Valid,
                brute,
                "{}: checker says {}, brute force says {}; txns: {:#?}",
                model, r.explanation, brute, txns.iter().map(|t| (t.index(), t.status, &t.mops)).collect::<Vec<_>>()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// rw-register infers only part of the version order, so it may miss anomalies, but
    /// whatever it reports must be real: invalid implies no serial order exists.
    #[test]
    fn rw_register_never_reports_a_serializable_history(seed in any::<u64>(), wfr_keys in any::<bool>()) {
        let txns = parse(tiny(seed, true));
        prop_assume!(txns.iter().any(|t| t.status == TxnStatus::Ok));
        for (model, strict) in [(ConsistencyModel::Serializable, false), (ConsistencyModel::StrictSerializable, true)] {
            let r = check(&txns, &CheckOptions { model, wfr_keys, ..CheckOptions::default() });
            // Without writes (only null reads) the history is also a valid list-append one.
            if txns.iter().any(|t| t.mops.iter().any(|m| matches!(m, Mop::Write { .. }))) {
                prop_assert_eq!(&r.workload, "rw-register");
            }
            prop_assert_ne!(r.verdict, Validity::Unknown, "{}", r.explanation);
            if r.verdict == Validity::Invalid {
                prop_assert!(
                    !brute_force(&txns, strict),
                    "{}: checker says {} but a serial order exists; txns: {:#?}",
                    model, r.explanation, txns.iter().map(|t| (t.index(), t.status, &t.mops)).collect::<Vec<_>>()
                );
            }
        }
    }
}

#[test]
fn the_brute_force_itself_tells_serializable_from_not() {
    // Guard against a brute force that always agrees: a lost update is not serializable,
    // the same transactions serially are.
    let t = |id: usize, inv: u64, done: u64, read: Vec<i64>, app: i64| Txn {
        id,
        process: id as u64,
        status: TxnStatus::Ok,
        mops: vec![
            Mop::Read {
                key: "x".into(),
                value: Some(ReadValue::List(read)),
            },
            Mop::Append {
                key: "x".into(),
                value: app,
            },
        ],
        invoke_index: inv,
        complete_index: Some(done),
        call: inv,
        ret: Some(done),
        invoke_line: inv as usize + 1,
        complete_line: Some(done as usize + 1),
    };
    assert!(!brute_force(
        &[t(0, 0, 2, vec![], 1), t(1, 1, 3, vec![], 2)],
        false
    ));
    assert!(brute_force(
        &[t(0, 0, 2, vec![2], 1), t(1, 1, 3, vec![], 2)],
        false
    ));
    assert!(!brute_force(
        &[t(0, 0, 1, vec![2], 1), t(1, 2, 3, vec![], 2)],
        true
    ));
}
