//! The testbed: a system under test running on an environment, with its fault injectors —
//! everything the run loop touches, behind one type. It starts the nodes, says who leads,
//! applies and undoes [`nemesis::Fault`]s, heals everything, and tears down.
//!
//! How each fault is made real: partitions and packet faults by the environment's
//! [`NetFaults`], clock offsets by its [`ClockFaults`] (a strobe is a timer flipping the
//! offset), kill and pause by signals through the [`Env`], restarts by starting the DB
//! adapter's daemon again on the same data, membership changes by starting a fresh host
//! (new id, empty data dir) and asking the DB adapter to add it, or asking it to remove a
//! member and then stopping that node for good.
//!
//! Teardown is a guard: dropping the testbed (normal end, error, panic unwind, the run future
//! dropped on Ctrl-C) resets clocks, heals the network, removes every rule and qdisc, resumes
//! and kills every node, and removes what the environment created. It runs once.

use crate::db::{Db, MemberChange, NodeStatus};
use crate::env::{Env, Environment};
use crate::inject::{ClockFaults, NetFaults};
use anyhow::{anyhow, bail, Context, Result};
use checkers::cluster_state::Role;
use cluster::membership::{MemberAddr, NewMember};
use nemesis::{ClockOp, Fault, FaultKind, NodeId, Target};
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fault state the testbed must undo.
#[derive(Default)]
struct Undo {
    killed: BTreeSet<usize>,
    paused: BTreeSet<usize>,
    /// Hosts whose clock offset is not 0.
    skewed: BTreeSet<usize>,
    strobes: Vec<tokio::task::JoinHandle<()>>,
    /// Hosts that are not members: not added yet, or removed (and stopped for good).
    absent: BTreeSet<usize>,
    /// The first host never started: the next fresh node a membership change adds.
    fresh: usize,
}

/// A running system under test; see the module documentation.
pub struct Testbed<D: Db> {
    env: Arc<dyn Env>,
    net: Arc<dyn NetFaults>,
    clock: Arc<dyn ClockFaults>,
    db: D,
    ids: Vec<NodeId>,
    undo: Mutex<Undo>,
    /// Every node's last answer to a status request and when it came (what the
    /// `cluster-status` poller records): who leads when a fresh poll goes unanswered.
    seen: Mutex<Vec<Option<(Instant, NodeStatus)>>>,
    torn_down: AtomicBool,
    /// When the environment began to be built.
    started: Instant,
}

impl<D: Db> Testbed<D> {
    /// Installs the system on every host and starts every node (does not wait for them to
    /// serve; see [`Self::await_ready`]).
    pub async fn start(environment: Environment, mut db: D) -> Result<Testbed<D>> {
        let Environment {
            env,
            net,
            clock,
            started,
        } = environment;
        let env2 = env.clone();
        let db = tokio::task::spawn_blocking(move || db.install(&*env2).map(|()| db))
            .await
            .map_err(|e| anyhow!("install task failed: {e}"))??;
        let tb = Testbed {
            ids: env.hosts().iter().map(|h| h.node.clone()).collect(),
            env,
            net: Arc::from(net),
            clock: Arc::from(clock),
            db,
            undo: Mutex::new(Undo::default()),
            seen: Mutex::new(Vec::new()),
            torn_down: AtomicBool::new(false),
            started,
        };
        let hosts = tb.ids.len();
        let founders = tb.db.initial_members(hosts);
        {
            let mut u = tb.undo();
            u.absent = (founders..hosts).collect();
            u.fresh = founders;
        }
        // In parallel: five SSH hosts start as fast as one.
        let tb = tokio::task::spawn_blocking(move || {
            crate::env::for_each_host(&*tb.env, |i| {
                if i < founders {
                    tb.start_node(i)
                } else {
                    Ok(())
                }
            })
            .map(|()| tb)
        })
        .await
        .map_err(|e| anyhow!("start task failed: {e}"))??;
        Ok(tb)
    }

    /// The daemon host `i` runs, with the clock-fault environment.
    fn daemon_spec(&self, i: usize) -> Result<crate::env::DaemonSpec> {
        let mut spec = self.db.daemon(&*self.env, i)?;
        spec.env.extend(self.clock.daemon_env(i));
        Ok(spec)
    }

    fn start_node(&self, i: usize) -> Result<()> {
        let spec = self.daemon_spec(i)?;
        self.env
            .start(i, &spec)
            .with_context(|| format!("cannot start {}", self.ids[i]))
    }

    /// Time since the environment began to be built (bring-up time, once it serves).
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// The environment.
    pub fn env(&self) -> &dyn Env {
        &*self.env
    }

    /// The system under test.
    pub fn db(&self) -> &D {
        &self.db
    }

    /// Node ids.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// The network injector (tests inspect it).
    pub fn net(&self) -> &dyn NetFaults {
        &*self.net
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|n| n == id)
    }

    /// Every node's answer to a status request, in parallel (`None` for hosts that are not
    /// members).
    pub async fn statuses(&self) -> Vec<Option<NodeStatus>> {
        let absent = self.undo().absent.clone();
        let st: Vec<Option<NodeStatus>> = futures::future::join_all((0..self.ids.len()).map(|i| {
            let skip = absent.contains(&i);
            async move {
                if skip {
                    None
                } else {
                    self.db.status(i).await
                }
            }
        }))
        .await;
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.resize(self.ids.len(), None);
        for (i, s) in st.iter().enumerate() {
            if let Some(s) = s {
                seen[i] = Some((now, s.clone()));
            }
        }
        st
    }

    /// Indices of the hosts that are members now (all of them without membership changes).
    fn member_indices(&self) -> Vec<usize> {
        let absent = self.undo().absent.clone();
        (0..self.ids.len())
            .filter(|i| !absent.contains(i))
            .collect()
    }

    /// Ids of the members now: what later faults are drawn among.
    pub fn members(&self) -> Vec<NodeId> {
        self.member_indices()
            .into_iter()
            .map(|i| self.ids[i].clone())
            .collect()
    }

    /// Waits until every node answers, or fails after `timeout` naming the nodes that did
    /// not, with the tail of the log of a node that exited.
    pub async fn await_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.statuses().await;
            let members = self.member_indices();
            let missing: Vec<&str> = members
                .iter()
                .filter(|&&i| st[i].is_none())
                .map(|&i| self.ids[i].as_str())
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            for i in members {
                if self.env.exited(i) {
                    let _ = self.env.collect(i);
                    let log = self.env.hosts()[i].local_dir.join("node.log");
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    bail!(
                        "node {} exited at startup; last log lines:\n{}",
                        self.ids[i],
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "nodes {} did not start serving within {timeout:?}",
                    missing.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The node that claims leadership with the highest term, among those that answer.
    pub async fn leader(&self) -> Option<NodeId> {
        let st = self.statuses().await;
        st.into_iter()
            .zip(&self.ids)
            .filter_map(|(s, id)| s.filter(|s| s.role == Role::Leader).map(|s| (s.term, id)))
            .max_by_key(|(t, _)| *t)
            .map(|(_, id)| id.clone())
    }

    /// The leader a fault aimed at "the leader" should hit: a fresh poll, and for every
    /// node that does not answer it in time (a status request is bounded; emulated VMs under
    /// load miss that bound often) its last answer of the last [`LEADER_MEMORY`] — what the
    /// `cluster-status` events recorded. A node claiming leadership counts, and so does a
    /// node others name as leader; the highest term wins, a claim over a mere naming. `None`
    /// when nothing of the last [`LEADER_MEMORY`] names a leader.
    pub async fn current_leader(&self) -> Option<NodeId> {
        self.statuses().await;
        let members = self.member_indices();
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let recent = members.iter().filter_map(|&i| match seen.get(i) {
            Some(Some((at, s))) if at.elapsed() <= LEADER_MEMORY => Some((i, s)),
            _ => None,
        });
        leader_of(recent.map(|(i, s)| (self.ids[i].as_str(), s)))
            .filter(|l| members.iter().any(|&i| self.ids[i] == *l))
    }

    /// Waits until a leader exists that every node names, up to `timeout`; then falls back
    /// to whoever claims leadership.
    pub async fn await_leader(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.statuses().await;
            let named: HashSet<Option<&str>> = self
                .member_indices()
                .into_iter()
                .map(|i| st[i].as_ref().and_then(|s| s.leader.as_deref()))
                .collect();
            if named.len() == 1 {
                if let Some(Some(l)) = named.into_iter().next() {
                    return Some(l.to_string());
                }
            }
            if Instant::now() > deadline {
                return self.leader().await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the system can serve again after faults: an agreed leader, or for a
    /// leaderless system every node answering. False on timeout.
    pub async fn await_recovery(&self, timeout: Duration) -> bool {
        if self.db.leaderless() {
            self.await_ready(timeout).await.is_ok()
        } else {
            self.await_leader(timeout).await.is_some()
        }
    }

    /// Runs a blocking injector call off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Arc<dyn Env>, Arc<dyn NetFaults>, Arc<dyn ClockFaults>) -> Result<T>
            + Send
            + 'static,
    ) -> Result<T> {
        let (env, net, clock) = (self.env.clone(), self.net.clone(), self.clock.clone());
        tokio::task::spawn_blocking(move || f(env, net, clock))
            .await
            .map_err(|e| anyhow!("injector task failed: {e}"))?
    }

    /// The member hosts a resolved fault targets (a fault drawn before a removal may name a
    /// node that is gone).
    fn nodes_of(&self, f: &Fault) -> Vec<usize> {
        let absent = self.undo().absent.clone();
        f.nodes()
            .iter()
            .filter_map(|n| self.index(n))
            .filter(|i| !absent.contains(i))
            .collect()
    }

    /// Applies a fault, resolving symbolic targets first to `leader` (the caller's
    /// [`Self::current_leader`]); returns the resolved fault, which is what the history
    /// records. `fallback` picks a node when none leads.
    pub async fn apply(
        &self,
        fault: &Fault,
        leader: Option<&str>,
        fallback: usize,
    ) -> Result<Fault> {
        if let Fault::Member { grow, target, .. } = fault {
            return self.change_membership(*grow, target, fallback).await;
        }
        // Among the members of the moment: a fresh node added later is on neither side of
        // the grudge (it reaches everyone), as a new machine may.
        let members = self.members();
        let fault = fault.resolve(&members, leader, &members[fallback % members.len()]);
        let nodes = self.nodes_of(&fault);
        match &fault {
            Fault::Partition { grudge, .. } => {
                let g = grudge.clone();
                self.blocking(move |_, net, _| net.partition(&g)).await?;
            }
            Fault::Kill { .. } => {
                for &i in &nodes {
                    self.kill_node(i).await?;
                }
            }
            Fault::Pause { .. } => {
                for &i in &nodes {
                    self.env.signal(i, Signal::SIGSTOP)?;
                    self.undo().paused.insert(i);
                }
            }
            Fault::Clock { op, .. } => {
                if let Some(why) = self.clock.unavailable() {
                    bail!("{why}");
                }
                for &i in &nodes {
                    self.undo().skewed.insert(i);
                    match *op {
                        ClockOp::Bump { delta_ms } => {
                            self.blocking(move |_, _, c| c.set_offset(i, delta_ms))
                                .await?;
                        }
                        ClockOp::Strobe {
                            delta_ms,
                            period_ms,
                        } => {
                            let clock = self.clock.clone();
                            let h = tokio::spawn(async move {
                                let mut on = false;
                                loop {
                                    on = !on;
                                    let c = clock.clone();
                                    let ms = if on { delta_ms } else { 0 };
                                    let _ =
                                        tokio::task::spawn_blocking(move || c.set_offset(i, ms))
                                            .await;
                                    tokio::time::sleep(Duration::from_millis(period_ms.max(10)))
                                        .await;
                                }
                            });
                            self.undo().strobes.push(h);
                        }
                    }
                }
            }
            Fault::Packet { delay_ms, loss, .. } => {
                let (d, l, ns) = (*delay_ms, *loss, nodes.clone());
                self.blocking(move |_, net, _| net.packet(&ns, d, l))
                    .await?;
            }
            // Returned early above; an error rather than a panic if that ever changes.
            Fault::Member { .. } => bail!("a membership change reached the fault switch"),
        }
        Ok(fault)
    }

    /// The `member` fault: grows (fresh hosts started and added) or shrinks (members removed,
    /// then stopped for good) the cluster by the DB's step, staying between 3 and 5 members.
    async fn change_membership(
        &self,
        grow: bool,
        target: &Target,
        fallback: usize,
    ) -> Result<Fault> {
        let step = self.db.member_step();
        if step == 0 {
            bail!("{} has no membership changes", self.db.name());
        }
        // (Bounded: right after a kill or a partition the cluster may be electing.)
        let deadline = Instant::now() + Duration::from_secs(3);
        let leader = loop {
            match self.leader().await.and_then(|l| self.index(&l)) {
                Some(l) => break l,
                None if Instant::now() > deadline => {
                    bail!("no leader to ask for a membership change (waited 3 s)")
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let members = self.sync_members(leader).await?;
        let grow = members.len() < 3 + step || (members.len() + step <= 5 && grow);
        if grow {
            let slots: Vec<usize> = {
                let mut u = self.undo();
                let first = u.fresh;
                if first + step > self.ids.len() {
                    bail!(
                        "no fresh node left to add: all {} node ids were used",
                        self.ids.len()
                    );
                }
                u.fresh += step;
                (first..first + step).collect()
            };
            let added: Vec<NodeId> = slots.iter().map(|&i| self.ids[i].clone()).collect();
            let mut new = Vec::new();
            for &i in &slots {
                self.undo().absent.remove(&i);
                self.blocking_start(i).await?;
                new.push(self.new_member(i));
            }
            self.db
                .change_members(leader, MemberChange::Add(new))
                .await
                .with_context(|| format!("adding {}", added.join(",")))?;
            return Ok(Fault::Member {
                grow,
                target: target.clone(),
                added,
                removed: Vec::new(),
            });
        }
        let first = match target {
            Target::Nodes(n) => n.first().and_then(|n| self.index(n)),
            Target::Leader => Some(leader),
        }
        .filter(|i| members.contains(i))
        .unwrap_or(members[fallback % members.len()]);
        let mut victims = vec![first];
        let mut k = fallback;
        while victims.len() < step {
            k = k.wrapping_add(1);
            let v = members[k % members.len()];
            if !victims.contains(&v) {
                victims.push(v);
            }
        }
        let removed: Vec<NodeId> = victims.iter().map(|&i| self.ids[i].clone()).collect();
        self.db
            .change_members(leader, MemberChange::Remove(removed.clone()))
            .await
            .with_context(|| format!("removing {}", removed.join(",")))?;
        for &i in &victims {
            self.retire(i).await?;
        }
        Ok(Fault::Member {
            grow,
            target: target.clone(),
            added: Vec::new(),
            removed,
        })
    }

    /// Takes the members from what `leader` says the configuration is (an earlier change
    /// whose outcome was unknown may have happened or not): hosts it names are members; a
    /// started host it does not name is stopped for good. Returns the members' indices.
    async fn sync_members(&self, leader: usize) -> Result<Vec<usize>> {
        let conf = self
            .db
            .configuration(leader)
            .await
            .with_context(|| format!("{} did not say who the members are", self.ids[leader]))?;
        let fresh = self.undo().fresh;
        for i in 0..fresh {
            let member = conf.contains(&self.ids[i]);
            let gone = self.undo().absent.contains(&i);
            if member {
                self.undo().absent.remove(&i);
            } else if !gone {
                self.retire(i).await?;
            }
        }
        Ok(self.member_indices())
    }

    /// Stops host `i` for good: it is no member, and no heal restarts it.
    async fn retire(&self, i: usize) -> Result<()> {
        if !self.undo().killed.contains(&i) {
            self.kill_node(i).await?;
        }
        let mut u = self.undo();
        u.killed.remove(&i);
        u.absent.insert(i);
        Ok(())
    }

    /// Starts host `i` off the async workers and waits (bounded) until it answers.
    async fn blocking_start(&self, i: usize) -> Result<()> {
        let env = self.env.clone();
        let spec = self.daemon_spec(i)?;
        let id = self.ids[i].clone();
        tokio::task::spawn_blocking(move || env.start(i, &spec))
            .await
            .map_err(|e| anyhow!("start task failed: {e}"))?
            .with_context(|| format!("cannot start {id}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.db.status(i).await.is_none() {
            if Instant::now() > deadline {
                bail!("fresh node {} did not answer within 10 s", self.ids[i]);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// How the members reach fresh host `i`: its own addresses, and per member the address
    /// that member dials (a link proxy in the local environment).
    fn new_member(&self, i: usize) -> NewMember {
        let hosts = self.env.hosts();
        NewMember {
            id: self.ids[i].clone(),
            addr: MemberAddr {
                peer_addr: hosts[i].peer_listen.to_string(),
                client_addr: Some(hosts[i].client_addr.to_string()),
                peer_addr_via: (0..hosts.len())
                    .filter(|&j| j != i)
                    .map(|j| (self.ids[j].clone(), self.env.peer_addr(j, i).to_string()))
                    .collect(),
            },
        }
    }

    /// Undoes the active fault `fault` (what [`Self::apply`] returned).
    pub async fn undo_fault(&self, fault: &Fault) -> Result<()> {
        match fault.kind() {
            FaultKind::Partition => self.blocking(|_, net, _| net.heal()).await,
            FaultKind::Kill => {
                for i in self.nodes_of(fault) {
                    self.restart_node(i)?;
                }
                Ok(())
            }
            FaultKind::Pause => {
                for i in self.nodes_of(fault) {
                    self.resume(i)?;
                }
                Ok(())
            }
            FaultKind::Clock => self.reset_clocks().await,
            FaultKind::Packet => self.blocking(|_, net, _| net.clear_packet()).await,
            // A membership change stays made.
            FaultKind::Member => Ok(()),
        }
    }

    fn undo(&self) -> std::sync::MutexGuard<'_, Undo> {
        self.undo.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SIGKILLs node `i` (it stays down until [`Self::restart_node`]).
    pub async fn kill_node(&self, i: usize) -> Result<()> {
        let env = self.env.clone();
        tokio::task::spawn_blocking(move || env.kill(i))
            .await
            .map_err(|e| anyhow!("kill task failed: {e}"))??;
        let mut u = self.undo();
        u.paused.remove(&i);
        u.killed.insert(i);
        Ok(())
    }

    /// Restarts a killed node on the same data.
    pub fn restart_node(&self, i: usize) -> Result<()> {
        if !self.undo().killed.remove(&i) {
            return Ok(());
        }
        self.start_node(i)
    }

    fn resume(&self, i: usize) -> Result<()> {
        if self.undo().paused.remove(&i) {
            self.env.signal(i, Signal::SIGCONT)?;
        }
        Ok(())
    }

    async fn reset_clocks(&self) -> Result<()> {
        let skewed: Vec<usize> = {
            let mut u = self.undo();
            for h in u.strobes.drain(..) {
                h.abort();
            }
            std::mem::take(&mut u.skewed).into_iter().collect()
        };
        self.blocking(move |_, _, clock| {
            for i in skewed {
                clock.set_offset(i, 0)?;
            }
            Ok(())
        })
        .await
    }

    /// Stops every fault: heals links, removes packet faults, resets clocks, resumes paused
    /// nodes, restarts killed ones.
    pub async fn heal_all(&self) -> Result<()> {
        self.blocking(|_, net, _| net.heal().and(net.clear_packet()))
            .await?;
        self.reset_clocks().await?;
        let (paused, killed): (Vec<usize>, Vec<usize>) = {
            let u = self.undo();
            (
                u.paused.iter().copied().collect(),
                u.killed.iter().copied().collect(),
            )
        };
        for i in paused {
            self.resume(i)?;
        }
        for i in killed {
            self.restart_node(i)?;
        }
        Ok(())
    }

    /// Node facts for `cluster.json`.
    pub fn describe(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .env
            .hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                serde_json::json!({
                    "id": h.node,
                    "host": h.describe,
                    "peer": h.peer_listen,
                    "client": h.client_addr,
                    "pid": self.env.pid(i),
                })
            })
            .collect();
        serde_json::json!({
            "env": self.env.kind().name(),
            "faults": self.net.describe(),
            "system": self.db.name(),
            "version": self.db.version(),
            "nodes": nodes,
        })
    }

    /// Copies every node's log (and data size) into the run directory.
    pub fn collect(&self) {
        let fresh = self.undo().fresh;
        let _ = crate::env::for_each_host(&*self.env, |i| {
            if i >= fresh {
                return Ok(()); // never started
            }
            if let Err(e) = self.env.collect(i) {
                eprintln!("faultline: could not collect {}'s log: {e:#}", self.ids[i]);
            }
            Ok(())
        });
    }

    /// Tears everything down now (also done on drop; runs once).
    pub fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let skewed: Vec<usize> = {
            let mut u = self.undo();
            for h in u.strobes.drain(..) {
                h.abort();
            }
            u.paused.clear();
            u.killed.clear();
            std::mem::take(&mut u.skewed).into_iter().collect()
        };
        // Clocks first: on VMs a jumped system clock outlives every process.
        for i in skewed {
            if let Err(e) = self.clock.set_offset(i, 0) {
                eprintln!(
                    "faultline: teardown: cannot reset {}'s clock: {e:#}",
                    self.ids[i]
                );
            }
        }
        self.net.teardown();
        self.env.teardown();
    }

    /// Pids of the nodes running now (tests check nothing survives teardown).
    pub fn pids(&self) -> BTreeMap<NodeId, u32> {
        (0..self.ids.len())
            .filter_map(|i| Some((self.ids[i].clone(), self.env.pid(i)?)))
            .collect()
    }
}

/// How old a node's last status answer may be to still say who leads (see
/// [`Testbed::current_leader`]): a few poll rounds even on emulated VMs, well under a
/// partition's hold.
pub const LEADER_MEMORY: Duration = Duration::from_secs(3);

/// The leader that `(node, its status)` answers point to: the highest term at which someone
/// claims leadership or is named leader; at equal terms a claim beats a naming.
fn leader_of<'a>(answers: impl Iterator<Item = (&'a str, &'a NodeStatus)>) -> Option<NodeId> {
    answers
        .flat_map(|(id, s)| {
            let claim = (s.role == Role::Leader).then(|| (s.term, 1, id.to_string()));
            let named = s.leader.clone().map(|l| (s.term, 0, l));
            claim.into_iter().chain(named)
        })
        .max()
        .map(|(_, _, id)| id)
}

/// True when the fault names the leader symbolically (resolved right before it applies).
pub fn needs_leader(fault: &Fault) -> bool {
    use nemesis::PartitionShape;
    match fault {
        Fault::Partition { shape, .. } => *shape == PartitionShape::IsolateLeader,
        Fault::Kill { target }
        | Fault::Pause { target }
        | Fault::Clock { target, .. }
        | Fault::Packet { target, .. } => *target == Target::Leader,
        Fault::Member { .. } => false,
    }
}

impl<D: Db> Drop for Testbed<D> {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(role: Role, term: u64, leader: Option<&str>) -> NodeStatus {
        NodeStatus {
            role,
            term,
            leader: leader.map(String::from),
        }
    }

    #[test]
    fn the_leader_is_the_highest_term_claimed_or_named() {
        let deposed = st(Role::Leader, 1, Some("n1"));
        let follower = st(Role::Follower, 2, Some("n2"));
        // The new leader did not answer in time: the others' naming of it still counts, and
        // beats the deposed leader's older claim.
        assert_eq!(
            leader_of([("n1", &deposed), ("n3", &follower)].into_iter()).as_deref(),
            Some("n2")
        );
        let claim = st(Role::Leader, 2, Some("n3"));
        let stale = st(Role::Follower, 2, Some("n2"));
        assert_eq!(
            leader_of([("n2", &stale), ("n3", &claim)].into_iter()).as_deref(),
            Some("n3")
        );
        let candidate = st(Role::Candidate, 3, None);
        assert_eq!(leader_of([("n1", &candidate)].into_iter()), None);
    }
}
