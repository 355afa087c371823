//! Seeded synthetic list-append histories, for the benchmark and the property tests.
//!
//! [`list_append`] runs a random strict-serializable execution (unless `empty_reads` breaks it): each transaction gets a call
//! time, a completion time and a commit point between them (one process runs one transaction
//! at a time); transactions take effect in commit-point order on a real list-per-key state, so
//! every read returns what it must and the history is valid under every model by
//! construction. Keys roll like Jepsen's: a window of `active_keys` keys, each retired after
//! `appends_per_key` appends and replaced by a fresh one, so reads stay short.
//!
//! [`Inject`] adds small groups of transactions on fresh keys and fresh processes, all
//! concurrent with each other, whose reads form one known anomaly; they touch nothing else, so
//! each forms its own strongly connected component and must be found and classified exactly.

use crate::history::{Event, EventType, Process};
use crate::txn::{Mop, ReadValue};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// An anomaly to plant in a synthetic history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// Two transactions append to two keys; reads show opposite orders (ww cycle).
    G0,
    /// Two transactions each read the other's append (wr cycle).
    G1c,
    /// One transaction reads another's append to one key but misses its append to another
    /// (read skew: one rw edge).
    GSingle,
    /// Two transactions each read a key empty and append to the key the other read (write
    /// skew: two rw edges).
    G2Item,
    /// A read invoked after an append completed misses it (one rw edge plus real time:
    /// G-single-realtime; serializable, not strict-serializable).
    StaleRead,
    /// A committed read shows an element whose transaction failed.
    G1a,
    /// A read ends at the first of another transaction's two appends to the key.
    G1b,
}

impl Inject {
    /// Every injectable anomaly.
    pub const ALL: [Inject; 7] = [
        Inject::G0,
        Inject::G1c,
        Inject::GSingle,
        Inject::G2Item,
        Inject::StaleRead,
        Inject::G1a,
        Inject::G1b,
    ];

    fn tag(self) -> &'static str {
        match self {
            Inject::G0 => "g0",
            Inject::G1c => "g1c",
            Inject::GSingle => "gsingle",
            Inject::G2Item => "g2",
            Inject::StaleRead => "stale",
            Inject::G1a => "g1a",
            Inject::G1b => "g1b",
        }
    }
}

/// Shape of a synthetic list-append history.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Transactions in the main execution (injected ones come on top).
    pub txns: usize,
    /// Concurrent client processes (1 = a serial execution).
    pub processes: usize,
    /// Keys in the rolling window.
    pub active_keys: usize,
    /// Appends after which a key is retired.
    pub appends_per_key: usize,
    /// Micro-ops per transaction: 1 to this many.
    pub max_mops: usize,
    /// Fraction of transactions whose outcome is unknown (`info`; half of them commit).
    pub info_rate: f64,
    /// Fraction of transactions that abort (`fail`).
    pub fail_rate: f64,
    /// Fraction of reads that return the empty list whatever the state (a store that lost its
    /// data): no longer a valid execution; with hot keys, the checker's worst case (many
    /// readers of one state, many appends no read shows, one giant cyclic component).
    pub empty_reads: f64,
    /// Seed of the random generator.
    pub seed: u64,
    /// Anomalies to plant, each once.
    pub inject: Vec<Inject>,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            txns: 1000,
            processes: 10,
            active_keys: 10,
            appends_per_key: 32,
            max_mops: 4,
            info_rate: 0.0,
            fail_rate: 0.0,
            empty_reads: 0.0,
            seed: 1,
            inject: Vec::new(),
        }
    }
}

/// One transaction to be written as two events.
struct Planned {
    process: u64,
    call: u64,
    ret: u64,
    outcome: EventType,
    invoke: Vec<Mop>,
    done: Vec<Mop>,
}

/// Generates the history (events in time order, indices dense from 0).
pub fn list_append(spec: &SynthSpec) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let procs = spec.processes.max(1);
    // Schedule: per process a sequence of intervals; a commit point inside each.
    let mut clock = vec![0u64; procs];
    let mut ids: Vec<u64> = (0..procs as u64).collect();
    let mut sched: Vec<(u64, usize, u64, u64, u64, EventType)> = Vec::with_capacity(spec.txns);
    for n in 0..spec.txns {
        let p = rng.gen_range(0..procs);
        let call = clock[p] + rng.gen_range(1..50);
        let ret = call + rng.gen_range(1..200);
        clock[p] = ret;
        let commit = rng.gen_range(call..=ret);
        let outcome = if rng.gen_bool(spec.fail_rate.clamp(0.0, 1.0)) {
            EventType::Fail
        } else if rng.gen_bool(spec.info_rate.clamp(0.0, 1.0)) {
            EventType::Info
        } else {
            EventType::Ok
        };
        sched.push((commit, n, ids[p], call, ret, outcome));
        if outcome == EventType::Info {
            ids[p] += procs as u64; // Jepsen: a fresh process after an indeterminate op
        }
    }
    sched.sort_unstable_by_key(|s| (s.0, s.1));
    // Apply in commit order.
    let mut keys = Keys::new(spec.active_keys.max(1), spec.appends_per_key.max(1));
    let mut plan: Vec<Planned> = Vec::with_capacity(sched.len() + 8);
    for (_, _, process, call, ret, outcome) in sched {
        let applies = match outcome {
            EventType::Ok => true,
            EventType::Info => rng.gen_bool(0.5),
            _ => false,
        };
        let len = rng.gen_range(1..=spec.max_mops.max(1));
        let mut invoke = Vec::with_capacity(len);
        let mut done = Vec::with_capacity(len);
        let mut local: Vec<(usize, Vec<i64>)> = Vec::new(); // this txn's view of touched keys
        for _ in 0..len {
            let slot = rng.gen_range(0..keys.active.len());
            let k = keys.active[slot];
            let view = match local.iter().position(|(k2, _)| *k2 == k) {
                Some(i) => i,
                None => {
                    local.push((k, keys.state(k).to_vec()));
                    local.len() - 1
                }
            };
            if rng.gen_bool(0.5) {
                let value = keys.next_value(k);
                local[view].1.push(value);
                invoke.push(Mop::Append {
                    key: k.to_string(),
                    value,
                });
                done.push(invoke.last().expect("just pushed").clone());
            } else {
                invoke.push(Mop::Read {
                    key: k.to_string(),
                    value: None,
                });
                let seen = if rng.gen_bool(spec.empty_reads.clamp(0.0, 1.0)) {
                    Vec::new()
                } else {
                    local[view].1.clone()
                };
                done.push(Mop::Read {
                    key: k.to_string(),
                    value: Some(ReadValue::List(seen)),
                });
            }
        }
        if applies {
            for (k, l) in local {
                keys.commit(k, l);
            }
        } else {
            keys.discard(&local);
        }
        plan.push(Planned {
            process,
            call,
            ret,
            outcome,
            invoke,
            done,
        });
    }
    let mid = plan.get(plan.len() / 2).map_or(100, |p| p.call);
    let mut next_process = 1_000_000u64;
    for (i, &inj) in spec.inject.iter().enumerate() {
        inject(inj, i, mid + 1000 * i as u64, &mut next_process, &mut plan);
    }
    events(plan)
}

/// The rolling key window and the committed state of every key.
struct Keys {
    active: Vec<usize>,
    lists: Vec<Vec<i64>>,
    /// Next value to append per key (unique per key even across aborted appends).
    next: Vec<i64>,
    per_key: usize,
}

impl Keys {
    fn new(n: usize, per_key: usize) -> Keys {
        Keys {
            active: (0..n).collect(),
            lists: vec![Vec::new(); n],
            next: vec![1; n],
            per_key,
        }
    }

    fn state(&self, k: usize) -> &[i64] {
        &self.lists[k]
    }

    fn next_value(&mut self, k: usize) -> i64 {
        let v = self.next[k];
        self.next[k] += 1;
        v
    }

    fn commit(&mut self, k: usize, l: Vec<i64>) {
        self.lists[k] = l;
        self.roll(k);
    }

    fn discard(&mut self, touched: &[(usize, Vec<i64>)]) {
        for &(k, _) in touched {
            self.roll(k);
        }
    }

    /// Retires `k` once it has had its share of appends (counting aborted ones).
    fn roll(&mut self, k: usize) {
        if (self.next[k] - 1) as usize >= self.per_key {
            if let Some(slot) = self.active.iter().position(|&a| a == k) {
                self.active[slot] = self.lists.len();
                self.lists.push(Vec::new());
                self.next.push(1);
            }
        }
    }
}

fn append(k: &str, v: i64) -> Mop {
    Mop::Append {
        key: k.to_string(),
        value: v,
    }
}

fn read(k: &str, l: &[i64]) -> Mop {
    Mop::Read {
        key: k.to_string(),
        value: Some(ReadValue::List(l.to_vec())),
    }
}

/// Plants one anomaly around time `at`: transactions on keys `<tag>-<n>-a/b` and fresh
/// processes, every interval overlapping the others (no real-time order among them) unless
/// the anomaly needs it.
fn inject(what: Inject, n: usize, at: u64, next_process: &mut u64, plan: &mut Vec<Planned>) {
    let a = format!("{}-{n}-a", what.tag());
    let b = format!("{}-{n}-b", what.tag());
    let mut push = |call: u64, ret: u64, outcome: EventType, done: Vec<Mop>| {
        let invoke = done
            .iter()
            .map(|m| match m {
                Mop::Read { key, .. } => Mop::Read {
                    key: key.clone(),
                    value: None,
                },
                other => other.clone(),
            })
            .collect();
        plan.push(Planned {
            process: *next_process,
            call,
            ret,
            outcome,
            invoke,
            done,
        });
        *next_process += 1;
    };
    let ok = EventType::Ok;
    match what {
        Inject::G0 => {
            push(at, at + 100, ok, vec![append(&a, 1), append(&b, 1)]);
            push(at + 1, at + 101, ok, vec![append(&a, 2), append(&b, 2)]);
            push(at + 2, at + 102, ok, vec![read(&a, &[1, 2])]);
            push(at + 3, at + 103, ok, vec![read(&b, &[2, 1])]);
        }
        Inject::G1c => {
            push(at, at + 100, ok, vec![append(&a, 1), read(&b, &[1])]);
            push(at + 1, at + 101, ok, vec![append(&b, 1), read(&a, &[1])]);
        }
        Inject::GSingle => {
            push(at, at + 100, ok, vec![append(&a, 1), append(&b, 1)]);
            push(at + 1, at + 101, ok, vec![read(&a, &[]), read(&b, &[1])]);
        }
        Inject::G2Item => {
            push(at, at + 100, ok, vec![read(&a, &[]), append(&b, 1)]);
            push(at + 1, at + 101, ok, vec![read(&b, &[]), append(&a, 1)]);
        }
        Inject::StaleRead => {
            push(at, at + 10, ok, vec![append(&a, 1)]);
            push(at + 20, at + 30, ok, vec![read(&a, &[])]);
        }
        Inject::G1a => {
            push(at, at + 100, EventType::Fail, vec![append(&a, 1)]);
            push(at + 1, at + 101, ok, vec![read(&a, &[1])]);
        }
        Inject::G1b => {
            push(at, at + 100, ok, vec![append(&a, 1), append(&a, 2)]);
            push(at + 1, at + 101, ok, vec![read(&a, &[1])]);
        }
    }
}

fn mops_json(m: &[Mop], reads_known: bool) -> Value {
    Value::Array(
        m.iter()
            .map(|m| match m {
                Mop::Read { key, .. } if !reads_known => Mop::Read {
                    key: key.clone(),
                    value: None,
                }
                .to_json(),
                m => m.to_json(),
            })
            .collect(),
    )
}

fn events(plan: Vec<Planned>) -> Vec<Event> {
    // (time, 0 = invoke / 1 = completion, seq): at equal times invokes go first, so two
    // transactions touching the same instant are concurrent, never ordered in real time.
    let mut evs: Vec<(u64, u8, usize, Event)> = Vec::with_capacity(plan.len() * 2);
    for (i, p) in plan.into_iter().enumerate() {
        let base = Event {
            index: 0,
            time: p.call,
            process: Process::Client(p.process),
            kind: EventType::Invoke,
            f: "txn".into(),
            key: None,
            value: mops_json(&p.invoke, false),
            node: None,
            error: None,
        };
        let done = Event {
            time: p.ret,
            kind: p.outcome,
            value: if p.outcome == EventType::Ok {
                mops_json(&p.done, true)
            } else {
                mops_json(&p.invoke, false)
            },
            error: match p.outcome {
                EventType::Info => Some("timeout".into()),
                EventType::Fail => Some("aborted".into()),
                _ => None,
            },
            ..base.clone()
        };
        evs.push((p.call, 0, i, base));
        evs.push((p.ret, 1, i, done));
    }
    evs.sort_unstable_by_key(|e| (e.0, e.1, e.2));
    evs.into_iter()
        .enumerate()
        .map(|(i, (_, _, _, mut e))| {
            e.index = i as u64;
            e
        })
        .collect()
}
