//! The local environment: kvnode processes on 127.0.0.1, a proxy on every directed peer
//! link, faults by proxies, signals and libfaketime. No root needed.
//!
//! [`LocalCluster::start`] picks free ports, starts one proxy per link `i -> j` (forwarding
//! to `j`'s peer port) and spawns every node with `--peers` pointing at its outgoing proxies,
//! its own data dir `RUN/nK/data`, stderr and stdout appended to `RUN/nK/node.log`, and, when
//! clock faults are enabled, `LD_PRELOAD=libfaketime` with its own `RUN/nK/faketime` offset
//! file. It implements the nemesis injector: [`LocalCluster::apply`] / [`LocalCluster::undo`].
//!
//! Teardown is a guard: dropping the cluster (normal end, error, panic unwind, or the run
//! future being dropped on Ctrl-C) SIGCONTs paused nodes, SIGKILLs every process it started
//! by pid, reaps it, and stops the proxies. As a last resort against a SIGKILLed harness,
//! every child gets `PR_SET_PDEATHSIG = SIGKILL`.

use crate::plan::TestPlan;
use crate::proxy::Proxy;
use anyhow::{bail, Context, Result};
use nemesis::{ClockOp, Fault, FaultKind, NodeId};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to start the nodes.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Node ids.
    pub nodes: Vec<NodeId>,
    /// kvnode binary.
    pub kvnode: PathBuf,
    /// Insert `kvnode` as the first argument (the binary is faultline itself).
    pub kvnode_subcommand: bool,
    /// Engine name.
    pub engine: String,
    /// Extra kvnode args.
    pub extra_args: Vec<String>,
    /// libfaketime to preload (enables clock faults).
    pub faketime: Option<PathBuf>,
    /// Where node dirs go.
    pub dir: PathBuf,
    /// Seed passed to kvnode.
    pub seed: u64,
}

impl ClusterSpec {
    /// The spec a test plan asks for.
    pub fn from_plan(plan: &TestPlan) -> ClusterSpec {
        ClusterSpec {
            nodes: plan.nodes.clone(),
            kvnode: plan.kvnode.clone(),
            kvnode_subcommand: plan.kvnode_subcommand,
            engine: plan.engine.clone(),
            extra_args: plan
                .kvnode_args
                .iter()
                .cloned()
                .chain(plan.nwr.iter().flat_map(|n| n.kvnode_args()))
                .collect(),
            faketime: plan.faketime.clone(),
            dir: plan.run_dir.clone(),
            seed: plan.seed,
        }
    }
}

/// One node's fixed facts.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Id.
    pub id: NodeId,
    /// Peer listen address.
    pub peer_addr: SocketAddr,
    /// HTTP address.
    pub client_addr: SocketAddr,
    /// Node directory (`RUN/nK`).
    pub dir: PathBuf,
    /// Full argv (after the binary).
    pub args: Vec<String>,
}

/// Processes we started, by node index; shared with the guard.
#[derive(Default)]
struct Procs {
    children: BTreeMap<usize, Child>,
    paused: HashSet<usize>,
}

/// A running local cluster; dropping it tears everything down.
pub struct LocalCluster {
    spec: ClusterSpec,
    infos: Vec<NodeInfo>,
    procs: Arc<Mutex<Procs>>,
    /// `proxies[(i, j)]` carries i's traffic to j.
    proxies: BTreeMap<(usize, usize), Proxy>,
    http: reqwest::Client,
    /// Active strobe tasks, by node.
    strobes: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Nodes currently killed.
    killed: Mutex<HashSet<usize>>,
}

fn free_port() -> Result<SocketAddr> {
    cluster::ports::free_loopback_port().context("no free loopback port")
}

impl LocalCluster {
    /// Starts proxies and nodes (does not wait for them to serve; see [`Self::await_ready`]).
    pub async fn start(spec: ClusterSpec) -> Result<LocalCluster> {
        let n = spec.nodes.len();
        let mut addrs = Vec::new();
        for _ in 0..n {
            addrs.push((free_port()?, free_port()?));
        }
        let mut proxies = BTreeMap::new();
        for i in 0..n {
            for (j, (peer, _)) in addrs.iter().enumerate() {
                if i != j {
                    let p = Proxy::start(*peer)
                        .await
                        .context("cannot start a link proxy")?;
                    proxies.insert((i, j), p);
                }
            }
        }
        let mut infos = Vec::new();
        for (i, id) in spec.nodes.iter().enumerate() {
            let dir = spec.dir.join(id);
            std::fs::create_dir_all(dir.join("data"))
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let peers: Vec<String> = (0..n)
                .filter(|&j| j != i)
                .map(|j| format!("{}={}", spec.nodes[j], proxies[&(i, j)].addr()))
                .collect();
            let mut args = vec![
                "--id".to_string(),
                id.clone(),
                "--peer-listen".into(),
                addrs[i].0.to_string(),
                "--client-listen".into(),
                addrs[i].1.to_string(),
                "--data-dir".into(),
                dir.join("data").display().to_string(),
                "--engine".into(),
                spec.engine.clone(),
                "--seed".into(),
                spec.seed.to_string(),
            ];
            if !peers.is_empty() {
                args.push("--peers".into());
                args.push(peers.join(","));
            }
            args.extend(spec.extra_args.iter().cloned());
            if spec.faketime.is_some() {
                std::fs::write(dir.join("faketime"), "+0\n")?;
            }
            infos.push(NodeInfo {
                id: id.clone(),
                peer_addr: addrs[i].0,
                client_addr: addrs[i].1,
                dir,
                args,
            });
        }
        let cluster = LocalCluster {
            spec,
            infos,
            procs: Arc::new(Mutex::new(Procs::default())),
            proxies,
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()?,
            strobes: Mutex::new(Vec::new()),
            killed: Mutex::new(HashSet::new()),
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// Node facts.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.infos
    }

    /// Node ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.infos.iter().map(|n| n.id.clone()).collect()
    }

    /// HTTP base URLs.
    pub fn urls(&self) -> Vec<String> {
        self.infos
            .iter()
            .map(|n| format!("http://{}", n.client_addr))
            .collect()
    }

    /// The pid of node `i`, when running.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs.lock().unwrap().children.get(&i).map(|c| c.id())
    }

    /// Every pid we currently own.
    pub fn pids(&self) -> Vec<u32> {
        self.procs
            .lock()
            .unwrap()
            .children
            .values()
            .map(|c| c.id())
            .collect()
    }

    /// The proxy carrying `from`'s traffic to `to`.
    pub fn proxy(&self, from: usize, to: usize) -> Option<&Proxy> {
        self.proxies.get(&(from, to))
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.infos.iter().position(|n| n.id == id)
    }

    fn spawn(&self, i: usize) -> Result<()> {
        let info = &self.infos[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(info.dir.join("node.log"))
            .with_context(|| format!("cannot open {}/node.log", info.dir.display()))?;
        let mut cmd = Command::new(&self.spec.kvnode);
        if self.spec.kvnode_subcommand {
            cmd.arg("kvnode");
        }
        cmd.args(&info.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env(
                "RUST_LOG",
                std::env::var("FAULTLINE_NODE_LOG").unwrap_or_else(|_| "info".into()),
            );
        if let Some(lib) = &self.spec.faketime {
            cmd.env("LD_PRELOAD", lib)
                .env("FAKETIME_TIMESTAMP_FILE", info.dir.join("faketime"))
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| {
            format!(
                "cannot start {} for {}",
                self.spec.kvnode.display(),
                info.id
            )
        })?;
        self.procs.lock().unwrap().children.insert(i, child);
        Ok(())
    }

    /// Waits until every running node answers `/status`, or fails after `timeout` naming the
    /// nodes that did not (and the tail of their logs).
    pub async fn await_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut missing = Vec::new();
            for (i, n) in self.infos.iter().enumerate() {
                if self.status(i).await.is_none() {
                    missing.push(n.id.clone());
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            // A node that exited will never answer.
            {
                let mut procs = self.procs.lock().unwrap();
                for (i, c) in procs.children.iter_mut() {
                    if let Ok(Some(st)) = c.try_wait() {
                        let log = self.infos[*i].dir.join("node.log");
                        let tail = std::fs::read_to_string(&log).unwrap_or_default();
                        let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                        bail!(
                            "node {} exited at startup ({st}); last log lines:\n{}",
                            self.infos[*i].id,
                            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                        );
                    }
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

    /// `GET /status` of node `i`.
    pub async fn status(&self, i: usize) -> Option<Value> {
        let url = format!("http://{}/status", self.infos[i].client_addr);
        let r = self.http.get(url).send().await.ok()?;
        r.json::<Value>().await.ok()
    }

    /// The node that claims leadership with the highest term, among reachable nodes.
    pub async fn leader(&self) -> Option<NodeId> {
        let mut best: Option<(u64, NodeId)> = None;
        for i in 0..self.infos.len() {
            if let Some(s) = self.status(i).await {
                if s.get("role").and_then(Value::as_str) == Some("leader") {
                    let term = s.get("term").and_then(Value::as_u64).unwrap_or(0);
                    if best.as_ref().is_none_or(|(t, _)| term > *t) {
                        best = Some((term, self.infos[i].id.clone()));
                    }
                }
            }
        }
        best.map(|(_, id)| id)
    }

    /// Waits until the cluster can serve again after faults, up to `timeout`: a leader every
    /// node agrees on, or, for a leaderless engine, every node answering `/status` (nodes
    /// restarted by the heal are live again by then). Returns false on timeout.
    pub async fn await_recovery(&self, leaderless: bool, timeout: Duration) -> bool {
        if leaderless {
            self.await_ready(timeout).await.is_ok()
        } else {
            self.await_leader(timeout).await.is_some()
        }
    }

    /// Waits until a leader exists and every node agrees on it, up to `timeout`.
    pub async fn await_leader(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = HashSet::new();
            let mut all = true;
            for i in 0..self.infos.len() {
                match self
                    .status(i)
                    .await
                    .and_then(|s| s.get("leader").and_then(Value::as_str).map(String::from))
                {
                    Some(l) => {
                        leaders.insert(l);
                    }
                    None => all = false,
                }
            }
            if all && leaders.len() == 1 {
                return leaders.into_iter().next();
            }
            if Instant::now() > deadline {
                return self.leader().await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn set_links(&self, links: &[(usize, usize)], cut: bool) {
        for l in links {
            if let Some(p) = self.proxies.get(l) {
                p.set_cut(cut);
            }
        }
    }

    /// Cuts the links a grudge names: `dst` drops traffic from `src` (both directions of the
    /// TCP connection `src` dialed to `dst`).
    pub fn partition(&self, grudge: &nemesis::Grudge) {
        let links: Vec<(usize, usize)> = nemesis::partition::cut_links(grudge)
            .into_iter()
            .filter_map(|(s, d)| Some((self.index(&s)?, self.index(&d)?)))
            .collect();
        self.set_links(&links, true);
    }

    /// Heals every link and removes every delay and loss.
    pub fn heal_network(&self) {
        for p in self.proxies.values() {
            p.set_cut(false);
            p.set_delay(0);
            p.set_loss(0.0);
        }
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill_node(&self, i: usize) -> Result<()> {
        let child = self.procs.lock().unwrap().children.remove(&i);
        if let Some(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.procs.lock().unwrap().paused.remove(&i);
        self.killed.lock().unwrap().insert(i);
        Ok(())
    }

    /// Restarts a killed node with the same data dir.
    pub fn restart_node(&self, i: usize) -> Result<()> {
        if self.procs.lock().unwrap().children.contains_key(&i) {
            return Ok(());
        }
        self.killed.lock().unwrap().remove(&i);
        self.spawn(i)
    }

    fn signal(&self, i: usize, sig: Signal) {
        let mut procs = self.procs.lock().unwrap();
        if let Some(pid) = procs.children.get(&i).map(|c| c.id()) {
            let _ = kill(Pid::from_raw(pid as i32), sig);
            match sig {
                Signal::SIGSTOP => {
                    procs.paused.insert(i);
                }
                Signal::SIGCONT => {
                    procs.paused.remove(&i);
                }
                _ => {}
            }
        }
    }

    fn write_clock(dir: &Path, delta_ms: i64) {
        // libfaketime offsets are seconds; round away from zero so small bumps still count.
        let secs = if delta_ms == 0 {
            0
        } else {
            (delta_ms.abs() + 999) / 1000 * delta_ms.signum()
        };
        let _ = std::fs::write(dir.join("faketime"), format!("{secs:+}\n"));
    }

    fn nodes_of(&self, f: &Fault) -> Vec<usize> {
        f.nodes().iter().filter_map(|n| self.index(n)).collect()
    }

    /// Applies a fault (symbolic targets resolved against the current leader). Returns the
    /// resolved fault, which is what the history records.
    pub async fn apply(&self, fault: &Fault, fallback: usize) -> Result<Fault> {
        let needs_leader = matches!(
            fault,
            Fault::Partition {
                shape: nemesis::PartitionShape::IsolateLeader,
                ..
            } | Fault::Kill {
                target: nemesis::Target::Leader
            } | Fault::Pause {
                target: nemesis::Target::Leader
            } | Fault::Clock {
                target: nemesis::Target::Leader,
                ..
            } | Fault::Packet {
                target: nemesis::Target::Leader,
                ..
            }
        );
        let leader = if needs_leader {
            self.leader().await
        } else {
            None
        };
        let ids = self.ids();
        let fault = fault.resolve(&ids, leader.as_deref(), &ids[fallback % ids.len()]);
        match &fault {
            Fault::Partition { grudge, .. } => self.partition(grudge),
            Fault::Kill { .. } => {
                for i in self.nodes_of(&fault) {
                    self.kill_node(i)?;
                }
            }
            Fault::Pause { .. } => {
                for i in self.nodes_of(&fault) {
                    self.signal(i, Signal::SIGSTOP);
                }
            }
            Fault::Clock { op, .. } => {
                if self.spec.faketime.is_none() {
                    bail!("clock faults need libfaketime (apt-get install -y faketime)");
                }
                for i in self.nodes_of(&fault) {
                    let dir = self.infos[i].dir.clone();
                    match *op {
                        ClockOp::Bump { delta_ms } => Self::write_clock(&dir, delta_ms),
                        ClockOp::Strobe {
                            delta_ms,
                            period_ms,
                        } => {
                            let h = tokio::spawn(async move {
                                let mut on = false;
                                loop {
                                    on = !on;
                                    Self::write_clock(&dir, if on { delta_ms } else { 0 });
                                    tokio::time::sleep(Duration::from_millis(period_ms.max(10)))
                                        .await;
                                }
                            });
                            self.strobes.lock().unwrap().push(h);
                        }
                    }
                }
            }
            Fault::Packet { delay_ms, loss, .. } => {
                for i in self.nodes_of(&fault) {
                    for ((a, b), p) in &self.proxies {
                        if *a == i || *b == i {
                            p.set_delay(*delay_ms);
                            p.set_loss(*loss);
                        }
                    }
                }
            }
        }
        Ok(fault)
    }

    /// Undoes the active fault of `kind` (`fault` is what [`Self::apply`] returned).
    pub async fn undo(&self, fault: &Fault) -> Result<()> {
        match fault.kind() {
            FaultKind::Partition => {
                for p in self.proxies.values() {
                    p.set_cut(false);
                }
            }
            FaultKind::Kill => {
                for i in self.nodes_of(fault) {
                    self.restart_node(i)?;
                }
            }
            FaultKind::Pause => {
                for i in self.nodes_of(fault) {
                    self.signal(i, Signal::SIGCONT);
                }
            }
            FaultKind::Clock => self.reset_clocks(),
            FaultKind::Packet => {
                for p in self.proxies.values() {
                    p.set_delay(0);
                    p.set_loss(0.0);
                }
            }
        }
        Ok(())
    }

    fn reset_clocks(&self) {
        for h in self.strobes.lock().unwrap().drain(..) {
            h.abort();
        }
        if self.spec.faketime.is_some() {
            for n in &self.infos {
                Self::write_clock(&n.dir, 0);
            }
        }
    }

    /// Stops every fault: heal links, reset clocks, resume paused nodes, restart killed ones.
    pub fn heal_all(&self) -> Result<()> {
        self.heal_network();
        self.reset_clocks();
        let paused: Vec<usize> = self.procs.lock().unwrap().paused.iter().copied().collect();
        for i in paused {
            self.signal(i, Signal::SIGCONT);
        }
        let killed: Vec<usize> = self.killed.lock().unwrap().iter().copied().collect();
        for i in killed {
            self.restart_node(i)?;
        }
        Ok(())
    }

    /// Tears down now (also done on drop): resume, kill, reap.
    pub fn teardown(&self) {
        self.heal_network();
        for h in self.strobes.lock().unwrap().drain(..) {
            h.abort();
        }
        teardown_procs(&self.procs);
    }
}

fn teardown_procs(procs: &Mutex<Procs>) {
    let mut procs = procs.lock().unwrap_or_else(|p| p.into_inner());
    for (_, c) in procs.children.iter_mut() {
        let pid = Pid::from_raw(c.id() as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = kill(pid, Signal::SIGKILL);
    }
    for (_, mut c) in std::mem::take(&mut procs.children) {
        let _ = c.wait();
    }
    procs.paused.clear();
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.teardown();
    }
}
