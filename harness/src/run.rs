//! The run loop: client workers and the nemesis on one tokio runtime, then the end phases.
//!
//! Phases, in order:
//! 1. main: `concurrency` workers pull ops from their seeded generators (rate limited,
//!    staggered), invoke them through the [`Client`] and record invoke/completion events; the
//!    nemesis task walks the [`Schedule`] and applies faults through the injector, recording a
//!    `<kind>-start` / `<kind>-stop` event for each. A worker whose op ends `info` continues
//!    under a fresh process id (`process + concurrency`): Jepsen's rule that a process with an
//!    unknown op never issues another.
//! 2. heal: every fault still active is stopped (and recorded as stopped).
//! 3. recovery: wait until the nodes agree on a leader, or for a leaderless engine (NWR)
//!    until every node answers (bounded).
//! 4. final reads: one read of every key on every node, under fresh process ids.
//!
//! Alongside the main phase a poller records `cluster-status` events (what each node says
//! about its role, term and leader) whenever they change.
//!
//! Workers and the nemesis stop at the deadline or when `stop` fires (Ctrl-C).

use crate::client::{Client, Outcome};
use crate::db::Db;
use crate::recorder::{Entry, Recorder};
use crate::testbed::{needs_leader, Testbed};
use checkers::cluster_state::{ClusterStatus, CLUSTER_STATUS_F};
use checkers::history::{EventType, Process};
use nemesis::{Fault, FaultKind, Schedule, StepAction};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use workloads::{Mix, Op, Workload};

/// What the workers need to know.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Workload.
    pub workload: Workload,
    /// Share of each operation kind.
    pub mix: Mix,
    /// Workers.
    pub concurrency: usize,
    /// Total target ops/s; 0 = unlimited.
    pub rate: f64,
    /// Seed.
    pub seed: u64,
    /// Number of nodes (workers are bound to `worker % nodes`).
    pub nodes: usize,
    /// Main phase length.
    pub duration: Duration,
    /// Stop after this many ops in total (benchmarks); `None` = time only.
    pub max_ops: Option<u64>,
}

/// Process ids handed out after `info` and for final reads.
pub struct ProcessIds(AtomicU64);

impl ProcessIds {
    /// Fresh ids start at `first`.
    pub fn new(first: u64) -> Self {
        ProcessIds(AtomicU64::new(first))
    }
    /// A fresh id.
    pub fn fresh(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

fn entry(process: u64, kind: EventType, op: &Op, value: serde_json::Value) -> Entry {
    Entry {
        process: Process::Client(process),
        kind,
        f: op.f().into(),
        key: op.key().map(String::from),
        value,
        node: None,
        error: None,
    }
}

/// Invokes `op` and records both events; returns true when the process must be retired.
pub async fn invoke<C: Client>(
    rec: &Recorder,
    client: &C,
    process: u64,
    seq: u64,
    node: usize,
    op: &Op,
) -> (bool, Option<i64>) {
    rec.record(entry(process, EventType::Invoke, op, op.invoke_value()));
    let outcome = client.invoke(process, seq, node, op).await;
    // What this worker now knows the register (or key) holds, so its next cas can target a
    // live value: a read's result, its own successful write or cas, or the current value a
    // failed cas was told about. Without the last two almost every cas fails.
    let mut observed = None;
    let (kind, value, node, error, retire) = match outcome {
        Outcome::Ok { value, node } => {
            observed = match op {
                Op::Read { .. } => value.as_i64(),
                Op::Write { value, .. } => Some(*value),
                Op::Cas { to, .. } => Some(*to),
                _ => None,
            };
            (EventType::Ok, value, Some(node), None, false)
        }
        Outcome::Fail { error, node } => {
            (EventType::Fail, op.invoke_value(), node, Some(error), false)
        }
        Outcome::Mismatch { current, node } => {
            observed = current.as_i64();
            let error = Some("cas-mismatch".to_string());
            (EventType::Fail, op.invoke_value(), Some(node), error, false)
        }
        Outcome::Info { error, node } => {
            (EventType::Info, op.invoke_value(), node, Some(error), true)
        }
    };
    let mut e = entry(process, kind, op, value);
    e.node = node;
    e.error = error;
    rec.record(e);
    (retire, observed)
}

/// Runs the workers until the deadline, `stop`, or `max_ops`; returns how many ops they
/// issued.
pub async fn run_workers<C: Client>(
    spec: &LoadSpec,
    client: Arc<C>,
    rec: Arc<Recorder>,
    ids: Arc<ProcessIds>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> u64 {
    let start = Instant::now();
    let deadline = start + spec.duration;
    let issued = Arc::new(AtomicU64::new(0));
    // The freshest value any worker learned per key. A cas compares against it rather than
    // against what its own worker saw last: with ten workers writing, a worker's own view is
    // usually several writes old and nearly every cas would fail, testing nothing.
    let latest: Arc<std::sync::Mutex<HashMap<Option<String>, i64>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let conc = spec.concurrency as u64;
    let period = if spec.rate > 0.0 {
        Some(Duration::from_secs_f64(spec.concurrency as f64 / spec.rate))
    } else {
        None
    };
    for w in 0..conc {
        let client = client.clone();
        let rec = rec.clone();
        let ids = ids.clone();
        let issued = issued.clone();
        let latest = latest.clone();
        let mut stop = stop.clone();
        let max_ops = spec.max_ops;
        let node = (w as usize) % spec.nodes.max(1);
        let mut gen = spec.workload.generator_with(spec.seed, w, conc, spec.mix);
        tasks.spawn(async move {
            let mut process = w;
            let mut seq = 0u64;
            let mut next =
                start + period.map_or(Duration::ZERO, |p| p.mul_f64(w as f64 / conc as f64));
            loop {
                if Instant::now() >= deadline || *stop.borrow() {
                    return;
                }
                if let Some(p) = period {
                    tokio::select! {
                        _ = tokio::time::sleep_until(next.min(deadline)) => {}
                        _ = stop.changed() => return,
                    }
                    if Instant::now() >= deadline {
                        return;
                    }
                    next += p;
                    // Don't burst to catch up after a long op.
                    let now = Instant::now();
                    if next < now {
                        next = now;
                    }
                }
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if max_ops.is_some_and(|m| n >= m) {
                    return;
                }
                let mut op = gen.next_op();
                if let Op::Cas { key, from, .. } = &mut op {
                    if let Some(v) = latest.lock().unwrap().get(key) {
                        *from = *v;
                    }
                }
                seq += 1;
                let (retire, observed) = tokio::select! {
                    r = invoke(&rec, &*client, process, seq, node, &op) => r,
                    // On Ctrl-C the op is abandoned: it stays an open invoke (unknown).
                    _ = stop.wait_for(|s| *s) => return,
                };
                if let Some(v) = observed {
                    latest
                        .lock()
                        .unwrap()
                        .insert(op.key().map(str::to_string), v);
                }
                if retire {
                    process = ids.fresh();
                    seq = 0;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    // With `max_ops` the counter overshoots by one per worker that stopped on it.
    let n = issued.load(Ordering::Relaxed);
    spec.max_ops.map_or(n, |m| n.min(m))
}

/// Faults applied so far, by kind (for the summary).
pub type FaultCounts = BTreeMap<String, u64>;

fn nemesis_entry(f: String, value: serde_json::Value, error: Option<String>) -> Entry {
    Entry {
        process: Process::Nemesis,
        kind: EventType::Info,
        f,
        key: None,
        value,
        node: None,
        error,
    }
}

/// Walks the schedule until `duration` has passed or `stop` fires; then stops every active
/// fault (the heal phase). Returns how many faults of each kind were applied.
///
/// Steps scheduled for the same instant are one nemesis step: "the leader" is resolved once
/// for all of them (and so is the fallback node when none leads), so a leader isolation and
/// the clock bump paired with it (see [`nemesis::schedule`]) hit the same node even though
/// the first of them may already have moved leadership when the second applies.
///
/// A step that takes long to apply delays the ones after it rather than shortening them:
/// the schedule's holds and waits are kept as drawn (see `lag` below).
pub async fn run_nemesis<D: Db>(
    cluster: &Testbed<D>,
    mut schedule: Schedule,
    duration: Duration,
    rec: &Recorder,
    mut stop: tokio::sync::watch::Receiver<bool>,
    seed: u64,
) -> FaultCounts {
    let start = Instant::now();
    let mut active: BTreeMap<FaultKind, Fault> = BTreeMap::new();
    let mut counts = FaultCounts::new();
    let mut fallback = seed as usize;
    // The instant whose leader was resolved, and what it resolved to.
    let mut pinned: Option<(Duration, Option<String>)> = None;
    // How far the schedule runs behind: every step is due `lag` after its time. On slow
    // hosts (emulated VMs: a second or more per SSH command) applying a fault eats into its
    // hold and the next wait; shifting what follows keeps every hold and wait as long as
    // drawn, and no fault starts after the main phase, at the cost of fewer faults per run.
    let mut lag = Duration::ZERO;
    while let Some(step) = schedule.next_step() {
        // A step past the main phase ends the walk, but only once the main phase is over:
        // the faults still active are held to its end (healing them now would cut the last
        // fault of every run short, to microseconds when its stop falls past the limit).
        let due = step.at + lag;
        let last = due >= duration;
        tokio::select! {
            _ = tokio::time::sleep_until(start + due.min(duration)) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if last {
            break;
        }
        match step.action {
            StepAction::Start(fault) => {
                let same_instant = pinned.as_ref().is_some_and(|(at, _)| *at == step.at);
                if !same_instant {
                    fallback = fallback.wrapping_add(1);
                    pinned = None;
                }
                let leader = match &pinned {
                    Some((_, leader)) => leader.clone(),
                    None if needs_leader(&fault) => {
                        let leader = cluster.current_leader().await;
                        pinned = Some((step.at, leader.clone()));
                        leader
                    }
                    None => None,
                };
                let kind = fault.kind();
                let applied = cluster.apply(&fault, leader.as_deref(), fallback).await;
                if kind == FaultKind::Member {
                    // Later partitions and kills are drawn among the members of the day.
                    schedule.set_nodes(cluster.members());
                }
                match applied {
                    Ok(resolved) => {
                        let v = serde_json::to_value(&resolved).unwrap_or_default();
                        rec.record(nemesis_entry(kind.start_f(), v, None));
                        *counts.entry(kind.name().to_string()).or_default() += 1;
                        active.insert(kind, resolved);
                    }
                    Err(e) => {
                        let v = serde_json::to_value(&fault).unwrap_or_default();
                        rec.record(nemesis_entry(
                            format!("{}-failed", kind.name()),
                            v,
                            Some(format!("{e:#}")),
                        ));
                    }
                }
            }
            StepAction::Stop(kind) => {
                if let Some(f) = active.remove(&kind) {
                    let r = cluster.undo_fault(&f).await;
                    let v = serde_json::to_value(&f).unwrap_or_default();
                    rec.record(nemesis_entry(
                        kind.stop_f(),
                        v,
                        r.err().map(|e| format!("{e:#}")),
                    ));
                }
            }
        }
        lag = lag.max(start.elapsed().saturating_sub(step.at));
    }
    // Heal phase: stop whatever is still active, then make sure everything is healed.
    for (kind, f) in std::mem::take(&mut active) {
        let r = cluster.undo_fault(&f).await;
        let v = serde_json::to_value(&f).unwrap_or_default();
        rec.record(nemesis_entry(
            kind.stop_f(),
            v,
            r.err().map(|e| format!("{e:#}")),
        ));
    }
    if let Err(e) = cluster.heal_all().await {
        rec.record(nemesis_entry(
            "heal-failed".into(),
            serde_json::Value::Null,
            Some(format!("{e:#}")),
        ));
    }
    counts
}

/// Polls every node's status while the main phase runs and records a `cluster-status`
/// nemesis event whenever what the nodes say changes (who is up, roles, terms, leaders), so
/// the report can draw the cluster's state and leader over time. Bounded: one poll round
/// every 200 ms until the deadline or `stop`.
pub async fn poll_status<D: Db>(
    testbed: &Testbed<D>,
    rec: &Recorder,
    duration: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < duration && !*stop.borrow() {
        let st = testbed.statuses().await;
        if last.as_ref() != Some(&st) {
            let status = ClusterStatus {
                nodes: testbed
                    .ids()
                    .iter()
                    .cloned()
                    .zip(st.iter().cloned())
                    .collect(),
            };
            rec.record(nemesis_entry(
                CLUSTER_STATUS_F.into(),
                serde_json::to_value(&status).unwrap_or_default(),
                None,
            ));
            last = Some(st);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Final phase: the workload's final reads ([`Workload::final_ops`] after `issued` ops) on
/// every node, under fresh process ids.
pub async fn final_reads<C: Client>(
    client: &C,
    rec: &Recorder,
    ids: &ProcessIds,
    workload: Workload,
    nodes: usize,
    issued: u64,
) {
    let mut tasks = Vec::new();
    for node in 0..nodes {
        for op in workload.final_ops(issued) {
            let process = ids.fresh();
            tasks.push(async move {
                invoke(rec, client, process, 1, node, &op).await;
            });
        }
    }
    futures::future::join_all(tasks).await;
}
