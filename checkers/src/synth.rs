//! Seeded synthetic histories for benchmarks and property tests.
//!
//! Each generator runs a random *linearizable* execution: every op gets a call time, a return
//! time and a linearization point between them; ops are applied to a real state in the order of
//! their linearization points to compute results. So the histories are linearizable by
//! construction, and tests can break them on purpose (see [`inject_stale_read`]).

use crate::history::{Event, EventType, Process};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// Shape of a synthetic history.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Number of ops.
    pub ops: usize,
    /// Number of keys (1 = a single register without keys).
    pub keys: usize,
    /// Concurrent client processes.
    pub processes: usize,
    /// Fraction of ops whose outcome is unknown (`info`).
    pub info_rate: f64,
    /// Longest op, call to return, in time units (a process waits 1–49 units between ops).
    /// Long ops overlap many others: 2000 with 50 processes is the shape of Porcupine's
    /// slow-client kv logs, where many appends are never observed before a put.
    pub latency: u64,
    /// Seed of the random generator.
    pub seed: u64,
}

struct Planned {
    process: u64,
    key: Option<String>,
    f: &'static str,
    input: Value,
    call: u64,
    ret: u64,
    lin: u64,
    info: bool,
    applies: bool,
    output: Value,
}

fn schedule(spec: &SynthSpec, rng: &mut ChaCha8Rng) -> Vec<Planned> {
    let procs = spec.processes.max(1);
    let mut clock = vec![0u64; procs];
    let mut ids: Vec<u64> = (0..procs as u64).collect();
    let mut out = Vec::with_capacity(spec.ops);
    for _ in 0..spec.ops {
        let p = rng.gen_range(0..procs);
        let call = clock[p] + rng.gen_range(1..50);
        let ret = call + rng.gen_range(1..spec.latency.max(2));
        let lin = rng.gen_range(call..=ret);
        clock[p] = ret;
        let info = rng.gen_bool(spec.info_rate.clamp(0.0, 1.0));
        out.push(Planned {
            process: ids[p],
            key: None,
            f: "",
            input: Value::Null,
            call,
            ret,
            lin,
            info,
            applies: !info || rng.gen_bool(0.5),
            output: Value::Null,
        });
        if info {
            ids[p] += procs as u64; // Jepsen: a fresh process after an indeterminate op
        }
    }
    out
}

fn events(mut plan: Vec<Planned>) -> Vec<Event> {
    let mut evs: Vec<(u64, u8, Event)> = Vec::with_capacity(plan.len() * 2);
    for p in plan.drain(..) {
        let base = Event {
            index: 0,
            time: p.call,
            process: Process::Client(p.process),
            kind: EventType::Invoke,
            f: p.f.to_string(),
            key: p.key.clone(),
            value: if p.f == "read" || p.f == "get" {
                Value::Null
            } else {
                p.input.clone()
            },
            node: None,
            error: None,
        };
        let mut done = base.clone();
        done.time = p.ret;
        if p.info {
            done.kind = EventType::Info;
            done.error = Some("timeout".into());
        } else if !p.applies {
            done.kind = EventType::Fail;
        } else {
            done.kind = EventType::Ok;
            done.value = p.output.clone();
        }
        evs.push((p.call, 0, base));
        evs.push((p.ret, 1, done));
    }
    indexed(evs)
}

/// Orders `(time, rank, event)` by time, then rank (0 for invokes, so they sort before
/// completions at equal times: intervals are closed), and numbers the events densely.
pub fn indexed(mut evs: Vec<(u64, u8, Event)>) -> Vec<Event> {
    evs.sort_by_key(|(t, k, _)| (*t, *k));
    evs.into_iter()
        .enumerate()
        .map(|(i, (_, _, mut e))| {
            e.index = i as u64;
            e
        })
        .collect()
}

/// A nemesis `info` event at `time` (ns), index 0 (number the history with [`indexed`]).
pub fn nemesis_event(time: u64, f: &str, value: Value) -> Event {
    Event {
        index: 0,
        time,
        process: Process::Nemesis,
        kind: EventType::Info,
        f: f.into(),
        key: None,
        value,
        node: None,
        error: None,
    }
}

/// A kv history (get/put/append of unique tokens, Porcupine's kv model) over `spec.keys` keys.
pub fn kv(spec: &SynthSpec) -> Vec<Event> {
    kv_with(spec, 0.08, |_, process, n, put| {
        if put {
            format!("p {process} {n} q")
        } else {
            format!("x {process} {n} y")
        }
    })
}

/// A kv history whose puts and appends draw from a few short texts that are prefixes of one
/// another (`""`, `"a"`, `"b"`, `"ab"`, `"ba"`), so the same string arises in several ways and
/// results share prefixes: the cases that stress the kv model's prefix reasoning. Puts are
/// frequent (30 %), so concurrent puts leave the same ops linearized with different values.
pub fn kv_small_alphabet(spec: &SynthSpec) -> Vec<Event> {
    const TEXTS: [&str; 5] = ["", "a", "b", "ab", "ba"];
    kv_with(spec, 0.3, |rng, _, _, _| {
        TEXTS[rng.gen_range(0..TEXTS.len())].to_string()
    })
}

/// The kv generator: 45 % gets, `puts` puts, appends otherwise; `text(rng, process, n,
/// is_put)` gives the value of op `n`.
fn kv_with(
    spec: &SynthSpec,
    puts: f64,
    mut text: impl FnMut(&mut ChaCha8Rng, u64, usize, bool) -> String,
) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut plan = schedule(spec, &mut rng);
    for (n, p) in plan.iter_mut().enumerate() {
        p.key = Some(rng.gen_range(0..spec.keys.max(1)).to_string());
        let r: f64 = rng.gen();
        if r < 0.45 {
            p.f = "get";
        } else if r < 1.0 - puts {
            p.f = "append";
            p.input = json!(text(&mut rng, p.process, n, false));
        } else {
            p.f = "put";
            p.input = json!(text(&mut rng, p.process, n, true));
        }
    }
    let mut order: Vec<usize> = (0..plan.len()).collect();
    order.sort_by_key(|&i| plan[i].lin);
    let mut state: std::collections::HashMap<String, String> = Default::default();
    for i in order {
        let p = &mut plan[i];
        if !p.applies {
            continue;
        }
        let v = state.entry(p.key.clone().unwrap_or_default()).or_default();
        match p.f {
            "get" => p.output = json!(v.clone()),
            "append" => {
                v.push_str(p.input.as_str().unwrap_or(""));
                p.output = p.input.clone();
            }
            _ => {
                *v = p.input.as_str().unwrap_or("").to_string();
                p.output = p.input.clone();
            }
        }
    }
    events(plan)
}

/// A register history: read/write (and cas when `cas` is set) of small integers; keys when
/// `spec.keys > 1`. The register starts at nil; cas that does not match fails (Jepsen).
pub fn register(spec: &SynthSpec, cas: bool, values: i64) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut plan = schedule(spec, &mut rng);
    for p in plan.iter_mut() {
        if spec.keys > 1 {
            p.key = Some(rng.gen_range(0..spec.keys).to_string());
        }
        let r: f64 = rng.gen();
        if r < 0.5 {
            p.f = "read";
        } else if !cas || r < 0.75 {
            p.f = "write";
            p.input = json!(rng.gen_range(0..values));
        } else {
            p.f = "cas";
            p.input = json!([rng.gen_range(0..values), rng.gen_range(0..values)]);
        }
        if p.f == "read" && p.info {
            p.applies = false;
        }
    }
    let mut order: Vec<usize> = (0..plan.len()).collect();
    order.sort_by_key(|&i| plan[i].lin);
    let mut state: std::collections::HashMap<Option<String>, Value> = Default::default();
    for i in order {
        let p = &mut plan[i];
        if !p.applies {
            continue;
        }
        let v = state.entry(p.key.clone()).or_insert(Value::Null);
        match p.f {
            "read" => p.output = v.clone(),
            "write" => {
                *v = p.input.clone();
                p.output = p.input.clone();
            }
            _ => {
                if *v == p.input[0] {
                    *v = p.input[1].clone();
                    p.output = p.input.clone();
                } else if !p.info {
                    p.applies = false; // a cas that did not match fails
                }
            }
        }
    }
    events(plan)
}

/// Makes one ok read stale: it now returns a value that was overwritten before it was
/// invoked, which no linearization allows. Returns `false` if the history has no such read.
/// Only for register histories without cas or info ops (then the claim is exact).
pub fn inject_stale_read(events: &mut [Event]) -> bool {
    use std::collections::HashMap;
    // For each key: (value, completion time of its write) of ok writes, in completion order.
    let mut writes: HashMap<Option<String>, Vec<(u64, u64, Value)>> = HashMap::new();
    let mut invokes: HashMap<Process, (u64, Value)> = HashMap::new();
    for e in events.iter() {
        match e.kind {
            EventType::Invoke => {
                invokes.insert(e.process, (e.time, e.value.clone()));
            }
            EventType::Ok if e.f == "write" => {
                let (call, v) = invokes[&e.process].clone();
                writes
                    .entry(e.key.clone())
                    .or_default()
                    .push((call, e.time, v));
            }
            _ => {}
        }
    }
    let mut read_call: HashMap<Process, u64> = HashMap::new();
    for e in events.iter_mut() {
        if e.kind == EventType::Invoke {
            read_call.insert(e.process, e.time);
            continue;
        }
        if e.kind != EventType::Ok || e.f != "read" {
            continue;
        }
        let call = read_call[&e.process];
        let Some(ws) = writes.get(&e.key) else {
            continue;
        };
        // w1 then w2 both complete before the read is invoked, w2 invoked after w1 completed,
        // and no other write of w1's value overlaps: then reading w1's value is stale.
        for (a, w1) in ws.iter().enumerate() {
            for w2 in ws.iter().skip(a + 1) {
                let unique = ws.iter().filter(|w| w.2 == w1.2).count() == 1;
                if unique && w1.1 < w2.0 && w2.1 < call && w2.2 != w1.2 {
                    e.value = w1.2.clone();
                    return true;
                }
            }
        }
    }
    false
}

/// Makes one ok get of a kv history lose an acknowledged append: its result no longer holds
/// the text of an append that completed before the get was invoked, with no put that could
/// have come between them, which no linearization allows. Returns `false` if the history has
/// no such pair. Exact for histories whose append texts are unique per key (as [`kv`] writes).
pub fn inject_lost_append(events: &mut [Event]) -> bool {
    let Ok(ops) = crate::history::pair(events, &[]) else {
        return false;
    };
    let until = |o: &crate::history::Operation| o.ret.unwrap_or(u64::MAX);
    for a in ops.iter().filter(|o| o.f == "append" && o.ret.is_some()) {
        let Some(text) = a.input.as_str().filter(|t| !t.is_empty()) else {
            continue;
        };
        let same_key = || ops.iter().filter(|o| o.key == a.key);
        if same_key()
            .filter(|o| o.input.as_str() == Some(text))
            .count()
            != 1
        {
            continue;
        }
        for g in same_key().filter(|o| o.f == "get" && o.ret.is_some()) {
            let after = g.call > until(a);
            // A put that may take effect between the append and the get could explain it.
            let put_between =
                same_key().any(|p| p.f == "put" && p.call < until(g) && until(p) > a.call);
            let result = g.output.as_ref().and_then(|v| v.as_str()).unwrap_or("");
            if !after || put_between || !result.contains(text) {
                continue;
            }
            let lost = result.replacen(text, "", 1);
            let Some(done) = events
                .iter_mut()
                .find(|e| Some(e.index) == g.complete_index)
            else {
                continue;
            };
            done.value = Value::String(lost);
            return true;
        }
    }
    false
}
