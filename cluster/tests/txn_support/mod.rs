//! Support for the transaction tests: a small `/txn` client that records a history in the
//! shape the checkers read (`checkers::txn`, `checkers::bank`), list-append and bank workers
//! over real kvnode processes, and an independent all-or-nothing check of the final state.
//!
//! The client classifies answers like the harness's: 200 ok; 400/409/421/501/503 and a
//! refused connection definitely not applied (fail); anything else unknown (info), after
//! which the process retires and a fresh one continues (Jepsen's rule).
#![allow(dead_code)]

use crate::common::Cluster;
use checkers::history::{Event, EventType, History, Process};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bank accounts of the tests and their initial balance (a missing key holds it).
pub const ACCOUNTS: &[&str] = &["acct0", "acct1", "acct2", "acct3", "acct4"];
/// Initial balance of each account.
pub const INITIAL: i64 = 20;

/// Records events with dense indices and test-relative times.
pub struct Recorder {
    start: Instant,
    events: Mutex<Vec<Event>>,
    next_process: AtomicU64,
}

impl Recorder {
    /// An empty history; fresh process ids start at `first_fresh`.
    pub fn new(first_fresh: u64) -> Arc<Recorder> {
        Arc::new(Recorder {
            start: Instant::now(),
            events: Mutex::new(Vec::new()),
            next_process: AtomicU64::new(first_fresh),
        })
    }

    /// A process id never used before.
    pub fn fresh(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// Appends one event.
    pub fn record(
        &self,
        process: u64,
        kind: EventType,
        f: &str,
        value: Value,
        error: Option<String>,
    ) {
        let mut ev = self.events.lock().unwrap();
        let index = ev.len() as u64;
        ev.push(Event {
            index,
            time: self.start.elapsed().as_nanos() as u64,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error,
        });
    }

    /// The history so far.
    pub fn history(&self) -> History {
        History::from_events(self.events.lock().unwrap().clone())
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Applied; the body.
    Ok(Value),
    /// Definitely not applied.
    Fail(String),
    /// Unknown.
    Info(String),
}

/// Sends `POST /txn {"txn": ops}` to node `i`, following 421 redirects (not proposed, so a
/// retry cannot apply twice), and classifies the answer.
pub async fn txn(c: &Cluster, i: usize, ops: &Value) -> Outcome {
    let mut node = i;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let url = format!("http://{}/txn", c.nodes[node].client_addr);
        let sent = c
            .http
            .post(url)
            .timeout(Duration::from_secs(2))
            .json(&json!({ "txn": ops }))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Outcome::Fail(format!("connection refused: {e}")),
            Err(e) => return Outcome::Info(format!("transport: {e}")),
        };
        let code = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match code {
            200 => return Outcome::Ok(body),
            421 => {
                let leader = body["leader"].as_str().map(|l| c.index_of(l));
                match leader {
                    Some(l) if l != node && Instant::now() < deadline => node = l,
                    _ if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    _ => return Outcome::Fail(format!("421 {body}")),
                }
            }
            400 | 409 | 501 | 503 => return Outcome::Fail(format!("{code} {body}")),
            _ => return Outcome::Info(format!("{code} {body}")),
        }
    }
}

/// Runs `ops` as process `process`, recording `f:"txn"` events (the completion value is the
/// node's answer, which is the history's shape). Returns whether the process must retire.
pub async fn recorded_txn(
    rec: &Recorder,
    c: &Cluster,
    node: usize,
    process: u64,
    ops: Value,
) -> bool {
    rec.record(process, EventType::Invoke, "txn", ops.clone(), None);
    match txn(c, node, &ops).await {
        Outcome::Ok(body) => {
            rec.record(process, EventType::Ok, "txn", body["txn"].clone(), None);
            false
        }
        Outcome::Fail(e) => {
            rec.record(process, EventType::Fail, "txn", ops, Some(e));
            false
        }
        Outcome::Info(e) => {
            rec.record(process, EventType::Info, "txn", ops, Some(e));
            true
        }
    }
}

/// List-append traffic: `workers` processes for `dur`, random transactions of 1–3 micro-ops
/// (appends of unique values, reads) over `keys`; worker `w` talks to node `w % nodes`.
pub async fn list_append(
    c: &Arc<Cluster>,
    rec: &Arc<Recorder>,
    workers: u64,
    dur: Duration,
    keys: &[&str],
) {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (c, rec, keys) = (c.clone(), rec.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(w);
            let mut process = w;
            let mut next = w + 1;
            let end = Instant::now() + dur;
            while Instant::now() < end {
                let n = rng.gen_range(1..=3);
                let ops: Vec<Value> = (0..n)
                    .map(|_| {
                        let k = &keys[rng.gen_range(0..keys.len())];
                        if rng.gen_bool(0.5) {
                            let v = next;
                            next += workers;
                            json!(["append", k, v])
                        } else {
                            json!(["r", k, null])
                        }
                    })
                    .collect();
                let node = (w as usize) % c.nodes.len();
                if recorded_txn(&rec, &c, node, process, Value::Array(ops)).await {
                    process = rec.fresh();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A read-only transaction of every key in `keys` through node `i` (retrying for a while);
/// the values read by key.
pub async fn read_all(c: &Cluster, i: usize, keys: &[&str]) -> BTreeMap<String, Value> {
    let ops: Vec<Value> = keys.iter().map(|k| json!(["r", k, null])).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Outcome::Ok(body) = txn(c, i, &Value::Array(ops.clone())).await {
            return body["txn"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m[1].as_str().unwrap().to_string(), m[2].clone()))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "final read of {keys:?} kept failing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One bank transfer as two transactions: read both balances, then write both new ones
/// guarded by `expect`s of what was read (so the write applies only to that snapshot).
/// Returns (outcome, whether the process must retire).
async fn transfer(c: &Cluster, node: usize, from: &str, to: &str, amount: i64) -> Outcome {
    let read = json!([["r", from, null], ["r", to, null]]);
    let body = match txn(c, node, &read).await {
        Outcome::Ok(b) => b,
        // A read that failed or timed out changed nothing: the transfer definitely did not
        // happen.
        Outcome::Fail(e) | Outcome::Info(e) => return Outcome::Fail(format!("read: {e}")),
    };
    let raw_from = body["txn"][0][2].clone();
    let raw_to = body["txn"][1][2].clone();
    let bal = |v: &Value| v.as_i64().unwrap_or(INITIAL);
    let (bf, bt) = (bal(&raw_from), bal(&raw_to));
    if bf < amount {
        return Outcome::Fail("insufficient funds".into());
    }
    let write = json!([
        ["expect", from, raw_from],
        ["expect", to, raw_to],
        ["w", from, bf - amount],
        ["w", to, bt + amount]
    ]);
    txn(c, node, &write).await
}

/// Bank traffic: transfers between [`ACCOUNTS`] and reads of all of them as one
/// transaction, recorded in the bank checker's shape.
pub async fn bank(c: &Arc<Cluster>, rec: &Arc<Recorder>, workers: u64, dur: Duration) {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (c, rec) = (c.clone(), rec.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(100 + w);
            let mut process = w;
            let end = Instant::now() + dur;
            let node = (w as usize) % c.nodes.len();
            while Instant::now() < end {
                if rng.gen_bool(0.3) {
                    rec.record(process, EventType::Invoke, "read", Value::Null, None);
                    let balances = read_balances(&c, node).await;
                    match balances {
                        Outcome::Ok(v) => rec.record(process, EventType::Ok, "read", v, None),
                        Outcome::Fail(e) => {
                            rec.record(process, EventType::Fail, "read", Value::Null, Some(e))
                        }
                        Outcome::Info(e) => {
                            rec.record(process, EventType::Fail, "read", Value::Null, Some(e))
                        }
                    }
                    continue;
                }
                let from = ACCOUNTS[rng.gen_range(0..ACCOUNTS.len())];
                let mut to = from;
                while to == from {
                    to = ACCOUNTS[rng.gen_range(0..ACCOUNTS.len())];
                }
                let amount = rng.gen_range(1..=5);
                let value = json!({"from": from, "to": to, "amount": amount});
                rec.record(process, EventType::Invoke, "transfer", value.clone(), None);
                match transfer(&c, node, from, to, amount).await {
                    Outcome::Ok(_) => rec.record(process, EventType::Ok, "transfer", value, None),
                    Outcome::Fail(e) => {
                        rec.record(process, EventType::Fail, "transfer", value, Some(e))
                    }
                    Outcome::Info(e) => {
                        rec.record(process, EventType::Info, "transfer", value, Some(e));
                        process = rec.fresh();
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Reads every account in one transaction: `{account: balance}` (missing = [`INITIAL`]).
pub async fn read_balances(c: &Cluster, node: usize) -> Outcome {
    let ops: Vec<Value> = ACCOUNTS.iter().map(|a| json!(["r", a, null])).collect();
    match txn(c, node, &Value::Array(ops)).await {
        Outcome::Ok(body) => {
            let map: serde_json::Map<String, Value> = body["txn"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let v = m[2].as_i64().unwrap_or(INITIAL);
                    (m[1].as_str().unwrap().to_string(), json!(v))
                })
                .collect();
            Outcome::Ok(Value::Object(map))
        }
        other => other,
    }
}

/// Checks the list-append history against the final lists, independently of Elle: every
/// appended value of a committed transaction is there, none of an aborted one is, and an
/// unknown transaction's appends are all there or all missing. Returns the violations.
pub fn all_or_nothing(h: &History, finals: &BTreeMap<String, Value>) -> Vec<String> {
    let present: BTreeSet<(String, i64)> = finals
        .iter()
        .flat_map(|(k, v)| {
            let l = v.as_array().cloned().unwrap_or_default();
            l.into_iter().map(move |e| (k.clone(), e.as_i64().unwrap()))
        })
        .collect();
    let mut bad = Vec::new();
    let mut invokes: BTreeMap<u64, &Event> = BTreeMap::new();
    for e in &h.events {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            invokes.insert(p, e);
            continue;
        }
        let Some(inv) = invokes.remove(&p) else {
            continue;
        };
        let appends = appends_of(inv);
        if appends.is_empty() {
            continue;
        }
        let seen = appends.iter().filter(|a| present.contains(*a)).count();
        let ok = match e.kind {
            EventType::Ok => seen == appends.len(),
            EventType::Fail => seen == 0,
            _ => seen == 0 || seen == appends.len(),
        };
        if !ok {
            bad.push(format!(
                "{:?} txn at index {} appended {appends:?}; {seen} of them are in the final state",
                e.kind, e.index
            ));
        }
    }
    // Invocations that never completed are unknown: all or nothing as well.
    for inv in invokes.values() {
        let appends = appends_of(inv);
        let seen = appends.iter().filter(|a| present.contains(*a)).count();
        if seen != 0 && seen != appends.len() {
            bad.push(format!("open txn at index {} is partly applied", inv.index));
        }
    }
    bad
}

/// The (key, value) pairs a transaction's invoke appends.
fn appends_of(inv: &Event) -> Vec<(String, i64)> {
    inv.value
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m[0] == "append")
        .map(|m| (m[1].as_str().unwrap().to_string(), m[2].as_i64().unwrap()))
        .collect()
}

/// The leader of every group of a sharded cluster, once all nodes agree on each.
pub async fn shard_leaders(c: &Cluster, shards: usize, timeout: Duration) -> Vec<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut views = Vec::new();
        for i in 0..c.nodes.len() {
            views.push(c.status(i).await);
        }
        let leaders: Option<Vec<usize>> = (0..shards)
            .map(|g| {
                let names: BTreeSet<Option<String>> = views
                    .iter()
                    .map(|v| {
                        v.as_ref()
                            .and_then(|v| v["shards"][g]["leader"].as_str().map(String::from))
                    })
                    .collect();
                match names.into_iter().collect::<Vec<_>>().as_slice() {
                    [Some(l)] => Some(c.index_of(l)),
                    _ => None,
                }
            })
            .collect();
        if let Some(l) = leaders {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "groups did not agree on leaders: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
