//! In-crate properties of the cycle search that need its internals: routing large groups of
//! anti-dependencies through hub vertices must change nothing that is reported.

use super::synth::{self, SynthSpec};
use super::{check_with, CheckOptions, ConsistencyModel};
use crate::history::History;
use crate::txn::{self, Mop, ReadValue, Txn, TxnStatus};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

/// A synthetic history on few hot keys whose committed reads are then corrupted: some cut to
/// a random prefix (stale), some emptied, some given a foreign element. Many readers of one
/// state and many appends no read shows: the shape that needs hubs.
fn hot(seed: u64, register: bool) -> Vec<Txn> {
    let spec = SynthSpec {
        txns: 120,
        processes: 6,
        active_keys: 2,
        appends_per_key: 1000,
        info_rate: 0.05,
        fail_rate: 0.05,
        seed,
        ..SynthSpec::default()
    };
    let mut txns = txn::parse(&History::from_events(synth::list_append(&spec))).expect("parses");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    for t in txns.iter_mut() {
        let ok = t.status == TxnStatus::Ok;
        for m in t.mops.iter_mut() {
            match m {
                Mop::Read {
                    value: Some(ReadValue::List(l)),
                    ..
                } if ok => match rng.gen_range(0..10) {
                    0..=3 => l.clear(),
                    4..=5 => l.truncate(rng.gen_range(0..=l.len())),
                    6 if !l.is_empty() => {
                        let (i, last) = (rng.gen_range(0..l.len()), l.len() - 1);
                        l.swap(i, last);
                    }
                    _ => {}
                },
                _ => {}
            }
            if register {
                *m = match m.clone() {
                    Mop::Append { key, value } => Mop::Write { key, value },
                    Mop::Read {
                        key,
                        value: Some(ReadValue::List(l)),
                    } => Mop::Read {
                        key,
                        value: Some(l.last().map_or(ReadValue::Nil, |&v| ReadValue::Int(v))),
                    },
                    other => other,
                };
            }
        }
    }
    txns
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hubs_change_nothing_reported(seed in any::<u64>(), register in any::<bool>(), wfr_keys in any::<bool>()) {
        let txns = hot(seed, register);
        for model in ConsistencyModel::ALL {
            let opts = CheckOptions { model, wfr_keys, ..CheckOptions::default() };
            let direct = check_with(&txns, &opts, usize::MAX);
            let hubbed = check_with(&txns, &opts, 0);
            prop_assert_eq!(&direct.counts, &hubbed.counts, "{}", model);
            prop_assert_eq!(direct.verdict, hubbed.verdict);
            prop_assert_eq!(direct.graph.cyclic_components, hubbed.graph.cyclic_components);
            prop_assert_eq!(direct.graph.largest_component, hubbed.graph.largest_component);
            prop_assert!(hubbed.unknown_reasons.is_empty(), "{:?}", hubbed.unknown_reasons);
            // Reported cycles name only transactions, and every step is explained by data.
            for a in hubbed.anomalies.values().flatten().filter(|a| !a.steps.is_empty()) {
                for (i, s) in a.steps.iter().enumerate() {
                    prop_assert!(!s.explanation.contains(" -rw-> "), "unexplained: {}", s.explanation);
                    // Data steps carry the two micro-ops they rest on, taken from the two
                    // transactions the step joins, on the step's key.
                    if matches!(s.relation, super::Relation::Ww | super::Relation::Wr | super::Relation::Rw) {
                        let e = s.evidence.as_ref().expect("a data step has evidence");
                        let (from, to) = (&a.txns[i], &a.txns[(i + 1) % a.txns.len()]);
                        prop_assert!(from.mops.contains(&e.from) && to.mops.contains(&e.to), "{:?}", e);
                        prop_assert_eq!(Some(e.from.key()), s.key.as_deref());
                        prop_assert_eq!(e.to.key(), e.from.key());
                    }
                }
                prop_assert!(a.txns.iter().all(|t| t.id < txns.len()));
            }
        }
    }
}

#[test]
fn a_reader_that_also_appends_gets_no_loop_through_a_hub() {
    // 10 readers of x = [], 10 appends to x nobody reads, and T reads [] then appends: all
    // serializable (readers first, then T, then the rest). A hub must not make T -> hub -> T.
    let mut txns: Vec<Txn> = Vec::new();
    let mut push = |mops: Vec<Mop>| {
        let i = txns.len() as u64;
        txns.push(Txn {
            id: txns.len(),
            process: i,
            status: TxnStatus::Ok,
            mops,
            invoke_index: 2 * i,
            complete_index: Some(2 * i + 1),
            call: 2 * i,
            ret: Some(2 * i + 1),
            invoke_line: 1,
            complete_line: Some(1),
        });
    };
    let read = || Mop::Read {
        key: "x".into(),
        value: Some(ReadValue::List(vec![])),
    };
    for _ in 0..10 {
        push(vec![read()]);
    }
    push(vec![
        read(),
        Mop::Append {
            key: "x".into(),
            value: 100,
        },
    ]);
    for v in 0..10 {
        push(vec![Mop::Append {
            key: "x".into(),
            value: v,
        }]);
    }
    let opts = CheckOptions {
        model: ConsistencyModel::Serializable,
        ..CheckOptions::default()
    };
    let r = check_with(&txns, &opts, 0);
    assert_eq!(r.verdict, crate::txn::Validity::Valid, "{}", r.explanation);
    assert!(
        r.graph.edges < 40,
        "{} edges: the hub was not used",
        r.graph.edges
    );
}
