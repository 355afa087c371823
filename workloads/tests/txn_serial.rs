//! The transactional workloads' histories are in the shapes their checkers read: each
//! generator's ops, run one at a time against an in-memory store (a serial, hence correct,
//! execution), make a history its checker parses and judges valid; and the same store with
//! one planted fault (a transfer applied half, an append lost) is judged invalid — so the
//! shapes carry enough for the checker to see anomalies, not merely to parse.

use checkers::history::{Event, EventType, History, Process};
use checkers::txn::{Mop, Validity};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use workloads::{bank, Op, Workload};

/// An in-memory store that applies whole ops; `half_transfer` drops the credit of the n-th
/// transfer, `lose_append` drops the n-th append.
#[derive(Default)]
struct Store {
    lists: BTreeMap<String, Vec<i64>>,
    ints: BTreeMap<String, i64>,
    set: Vec<i64>,
    transfers: usize,
    appends: usize,
    half_transfer: Option<usize>,
    lose_append: Option<usize>,
}

impl Store {
    /// Applies `op`; the completion value, or `None` if it definitely failed.
    fn apply(&mut self, op: &Op) -> Option<Value> {
        match op {
            Op::Txn { mops } => Some(
                mops.iter()
                    .map(|m| match m {
                        Mop::Append { key, value } => {
                            self.appends += 1;
                            if self.lose_append != Some(self.appends) {
                                self.lists.entry(key.clone()).or_default().push(*value);
                            }
                            m.to_json()
                        }
                        Mop::Read { key, .. } => {
                            json!(["r", key, self.lists.get(key).cloned().unwrap_or_default()])
                        }
                        Mop::Write { .. } => unreachable!("list-append writes no registers"),
                    })
                    .collect(),
            ),
            Op::Transfer { from, to, amount } => {
                let bal =
                    |s: &Self, a: &str| s.ints.get(a).copied().unwrap_or(bank::INITIAL_BALANCE);
                if bal(self, from) < *amount {
                    return None;
                }
                self.transfers += 1;
                let (f, t) = (bal(self, from), bal(self, to));
                self.ints.insert(from.clone(), f - amount);
                if self.half_transfer != Some(self.transfers) {
                    self.ints.insert(to.clone(), t + amount);
                }
                Some(op.invoke_value())
            }
            Op::ReadBalances { accounts } => Some(
                accounts
                    .iter()
                    .map(|a| {
                        (
                            a.clone(),
                            json!(self.ints.get(a).copied().unwrap_or(bank::INITIAL_BALANCE)),
                        )
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            ),
            Op::SetAdd { value } => {
                self.set.push(*value);
                Some(json!(value))
            }
            Op::SetRead => Some(json!(self.set)),
            Op::CounterAdd { delta } => {
                *self.ints.entry("counter".into()).or_default() += delta;
                Some(json!(delta))
            }
            Op::CounterRead => Some(json!(self.ints.get("counter").copied().unwrap_or(0))),
            other => unreachable!("not a transactional op: {other:?}"),
        }
    }
}

/// 4 workers' streams interleaved round-robin, each op applied whole, then the final reads.
fn serial_history(w: Workload, ops_per_worker: usize, mut store: Store) -> History {
    let mut gens: Vec<_> = (0..4).map(|i| w.generator(7, i, 4)).collect();
    let mut events = Vec::new();
    let push = |events: &mut Vec<Event>, p: u64, kind, op: &Op, value: Value| {
        events.push(Event {
            index: events.len() as u64,
            time: events.len() as u64 * 10,
            process: Process::Client(p),
            kind,
            f: op.f().into(),
            key: None,
            value,
            node: None,
            error: None,
        })
    };
    let mut ops = Vec::new();
    for _ in 0..ops_per_worker {
        for (p, g) in gens.iter_mut().enumerate() {
            ops.push((p as u64, g.next_op()));
        }
    }
    let total = ops.len() as u64;
    ops.extend(w.final_ops(total).into_iter().map(|op| (99, op)));
    for (p, op) in ops {
        push(&mut events, p, EventType::Invoke, &op, op.invoke_value());
        match store.apply(&op) {
            Some(v) => push(&mut events, p, EventType::Ok, &op, v),
            None => push(&mut events, p, EventType::Fail, &op, op.invoke_value()),
        }
    }
    History::from_events(events)
}

fn elle(h: &History) -> Validity {
    let opts = checkers::elle::CheckOptions {
        model: checkers::elle::ConsistencyModel::StrictSerializable,
        ..Default::default()
    };
    let r = checkers::elle::check_history(h, &opts).expect("list-append history parses");
    r.verdict
}

fn bank_verdict(h: &History) -> Validity {
    let opts = checkers::bank::BankOptions {
        total: Some(bank::total()),
        accounts: Some(bank::accounts()),
        ..Default::default()
    };
    checkers::bank::check(h, &opts)
        .expect("bank history parses")
        .verdict
}

#[test]
fn serial_list_append_is_strict_serializable_and_a_lost_append_is_not() {
    let h = serial_history(Workload::ListAppend, 100, Store::default());
    assert_eq!(elle(&h), Validity::Valid);
    // The rolling key set really rolls: 400 txns touch more keys than one window holds.
    let keys: std::collections::BTreeSet<String> = h
        .events
        .iter()
        .flat_map(|e| e.value.as_array().cloned().unwrap_or_default())
        .filter_map(|m| m[1].as_str().map(String::from))
        .collect();
    assert!(keys.len() > 8, "{keys:?}");
    let lossy = Store {
        lose_append: Some(50),
        ..Store::default()
    };
    assert_eq!(
        elle(&serial_history(Workload::ListAppend, 100, lossy)),
        Validity::Invalid
    );
}

#[test]
fn serial_bank_conserves_money_and_a_half_transfer_is_caught() {
    let h = serial_history(Workload::Bank, 100, Store::default());
    assert_eq!(bank_verdict(&h), Validity::Valid);
    let half = Store {
        half_transfer: Some(10),
        ..Store::default()
    };
    assert_eq!(
        bank_verdict(&serial_history(Workload::Bank, 100, half)),
        Validity::Invalid
    );
}

#[test]
fn serial_set_and_counter_are_valid() {
    let h = serial_history(Workload::Set, 50, Store::default());
    let r = checkers::set::check(&h, &Default::default()).unwrap();
    assert_eq!(r.verdict, Validity::Valid, "{}", r.explanation);
    let h = serial_history(Workload::Counter, 50, Store::default());
    let r = checkers::counter::check(&h, &Default::default()).unwrap();
    assert_eq!(r.verdict, Validity::Valid, "{}", r.explanation);
}
