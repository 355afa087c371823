//! Test support for real-process kvnode clusters: free loopback ports, one temp dir per
//! test, a userspace proxy on every directed peer link (so tests can blackhole links the
//! way the harness does), and a guard that kills every child on drop, also on panic.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Picks a free loopback port outside the ephemeral range (see `cluster::ports`).
pub fn free_port() -> u16 {
    cluster::ports::free_loopback_port().unwrap().port()
}

/// A directed link i -> j through a pausable proxy.
pub struct Link {
    pub blocked: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a proxy on a free port forwarding to `target`; while `blocked`, bytes are held
/// (a blackhole: nothing is closed, nothing arrives). Returns (link, listen address).
async fn start_proxy(target: String) -> (Link, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let blocked = Arc::new(AtomicBool::new(false));
    let b = blocked.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let target = target.clone();
            let b = b.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(&target).await else {
                    return;
                };
                let mut buf = vec![0u8; 64 * 1024];
                let mut probe = [0u8; 1];
                loop {
                    // Only one direction matters (peer links are one-directional); the
                    // reverse direction is never used, but watch it for closure.
                    let n = tokio::select! {
                        r = inbound.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
                        _ = outbound.read(&mut probe) => return,
                    };
                    while b.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    if outbound.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (Link { blocked, task }, addr)
}

/// One kvnode process slot.
pub struct Node {
    pub id: String,
    pub peer_listen: String,
    pub client_addr: String,
    pub data_dir: PathBuf,
    pub args: Vec<String>,
    pub child: Option<Child>,
    pub log: PathBuf,
}

/// A cluster of real kvnode processes; kills all children on drop.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// links[i][j]: proxy for messages i -> j (None on the diagonal).
    pub links: Vec<Vec<Option<Link>>>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    restarts: usize,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                if let Ok(log) = std::fs::read_to_string(&n.log) {
                    let tail: Vec<&str> = log.lines().rev().take(30).collect();
                    eprintln!("---- {} log tail ----", n.id);
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
    }
}

/// Fast timing for tests: 10 ms ticks, 250-500 ms election timeout (short, yet robust to a
/// loaded machine stalling a process for a while).
pub const FAST: &[&str] = &[
    "--tick-ms",
    "10",
    "--election-ticks",
    "25",
    "--heartbeat-ticks",
    "4",
    "--request-timeout-ms",
    "1000",
];

/// A node's command line: identity, addresses, `peers` (`id=addr`), data dir, seed 1,
/// [`FAST`] timing and then `extra`.
fn node_args(
    id: &str,
    peer_listen: &str,
    client_addr: &str,
    peers: &[String],
    data_dir: &std::path::Path,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--id".into(),
        id.into(),
        "--peer-listen".into(),
        peer_listen.into(),
        "--client-listen".into(),
        client_addr.into(),
        "--peers".into(),
        peers.join(","),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--seed".into(),
        "1".into(),
    ];
    args.extend(FAST.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

impl Cluster {
    /// Starts `n` nodes with `extra` flags (plus [`FAST`]).
    pub async fn start(n: usize, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let peer_listen: Vec<String> = (0..n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let mut links: Vec<Vec<Option<Link>>> = (0..n).map(|_| Vec::new()).collect();
        let mut proxy_addr = vec![vec![String::new(); n]; n];
        for i in 0..n {
            for j in 0..n {
                if i == j {
                    links[i].push(None);
                } else {
                    let (l, a) = start_proxy(peer_listen[j].clone()).await;
                    links[i].push(Some(l));
                    proxy_addr[i][j] = a;
                }
            }
        }
        let mut nodes = Vec::new();
        for i in 0..n {
            let peers: Vec<String> = (0..n)
                .filter(|j| *j != i)
                .map(|j| format!("{}={}", ids[j], proxy_addr[i][j]))
                .collect();
            let client_addr = format!("127.0.0.1:{}", free_port());
            let data_dir = dir.path().join(&ids[i]);
            let args = node_args(
                &ids[i],
                &peer_listen[i],
                &client_addr,
                &peers,
                &data_dir,
                extra,
            );
            nodes.push(Node {
                id: ids[i].clone(),
                peer_listen: peer_listen[i].clone(),
                client_addr,
                log: dir.path().join(format!("{}.log", ids[i])),
                data_dir,
                args,
                child: None,
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(32)
            .build()
            .unwrap();
        let mut c = Cluster {
            nodes,
            links,
            dir,
            http,
            restarts: 0,
        };
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    /// (Re)starts node `i` with its original arguments and data dir.
    pub fn spawn(&mut self, i: usize) {
        self.spawn_with(i, |_| {});
    }

    /// Like [`Cluster::spawn`], letting the caller adjust the command first (e.g. limits).
    pub fn spawn_with(&mut self, i: usize, configure: impl FnOnce(&mut Command)) {
        self.restarts += 1;
        let n = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvnode"));
        cmd.args(&n.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        configure(&mut cmd);
        let child = cmd.spawn().expect("spawn kvnode");
        n.child = Some(child);
    }

    /// kill -9 of node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Blackholes every proxied link from and to node `i` (true) or heals them (false);
    /// nodes added by [`Cluster::add_joining`] talk directly and are not cut.
    pub fn isolate(&self, i: usize, blocked: bool) {
        for j in 0..self.nodes.len() {
            for link in [&self.links[i][j], &self.links[j][i]].into_iter().flatten() {
                link.blocked.store(blocked, Ordering::SeqCst);
            }
        }
    }

    /// Starts a fresh node (next id, empty data dir, `--join`) whose `--peers` name the
    /// current nodes directly, with `extra` flags (plus [`FAST`]); returns its index. It
    /// joins nothing until a leader is asked to add it (POST /admin/members).
    pub fn add_joining(&mut self, extra: &[&str]) -> usize {
        let i = self.nodes.len();
        let id = format!("n{}", i + 1);
        let peer_listen = format!("127.0.0.1:{}", free_port());
        let client_addr = format!("127.0.0.1:{}", free_port());
        let data_dir = self.dir.path().join(&id);
        let peers: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.id, n.peer_listen))
            .collect();
        let mut args = node_args(&id, &peer_listen, &client_addr, &peers, &data_dir, extra);
        args.push("--join".into());
        for row in &mut self.links {
            row.push(None);
        }
        self.links.push((0..=i).map(|_| None).collect());
        self.nodes.push(Node {
            log: self.dir.path().join(format!("{id}.log")),
            id,
            peer_listen,
            client_addr,
            data_dir,
            args,
            child: None,
        });
        self.spawn(i);
        i
    }

    /// The URL of `path` on node `i`.
    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{}", self.nodes[i].client_addr, path)
    }

    /// GET /status of node `i`.
    pub async fn status(&self, i: usize) -> Option<Value> {
        let r = self.http.get(self.url(i, "/status")).send().await.ok()?;
        r.json().await.ok()
    }

    /// Waits until all of `among` agree on one leader (in the same term); returns its index.
    pub async fn wait_leader(&self, among: &[usize], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            for &i in among {
                if let Some(s) = self.status(i).await {
                    leaders.push((s["leader"].as_str().map(String::from), s["term"].as_u64()));
                } else {
                    leaders.push((None, None));
                }
            }
            if let Some((Some(l), t)) = leaders.first().cloned() {
                if leaders.iter().all(|x| *x == (Some(l.clone()), t)) {
                    let idx = self.nodes.iter().position(|n| n.id == l).unwrap();
                    if among.contains(&idx) {
                        if let Some(s) = self.status(idx).await {
                            if s["role"] == "leader" {
                                return idx;
                            }
                        }
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {among:?}: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `i` answers /status.
    pub async fn wait_up(&self, i: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.status(i).await.is_none() {
            assert!(Instant::now() < deadline, "node {i} did not come up");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Raw request: (status code, JSON body).
    pub async fn request(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut rb = self.http.request(method, self.url(i, path));
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        match rb.send().await {
            Ok(r) => {
                let code = r.status().as_u16();
                let v = r.json().await.unwrap_or(Value::Null);
                (code, v)
            }
            Err(e) => (0, json!({"transport-error": e.to_string()})),
        }
    }

    /// PUT /kv/key on node `i`.
    pub async fn put(&self, i: usize, key: &str, value: Value) -> (u16, Value) {
        self.request(
            i,
            reqwest::Method::PUT,
            &format!("/kv/{key}"),
            Some(json!({ "value": value }).to_string()),
        )
        .await
    }

    /// GET /kv/key on node `i`.
    pub async fn get(&self, i: usize, key: &str) -> (u16, Value) {
        self.request(i, reqwest::Method::GET, &format!("/kv/{key}"), None)
            .await
    }

    /// Index of a node by id.
    pub fn index_of(&self, id: &str) -> usize {
        self.nodes.iter().position(|n| n.id == id).unwrap()
    }

    /// Sends a write to `i`, following 421 redirects until a leader answers; returns the final (code, body).
    pub async fn put_following(&self, i: usize, key: &str, value: Value) -> (u16, Value) {
        // A node that just restarted may not know the leader yet (421 without a
        // leader id): keep asking until it names one or the deadline passes.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, body) = self.put(i, key, value.clone()).await;
            if code != 421 {
                return (code, body);
            }
            if let Some(l) = body["leader"].as_str() {
                let (code, body) = self.put(self.index_of(l), key, value.clone()).await;
                if code != 421 || Instant::now() >= deadline {
                    return (code, body);
                }
            } else if Instant::now() >= deadline {
                return (code, body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads `key` through the leader among `among` (retrying until it answers 200).
    pub async fn read_linearizable(&self, among: &[usize], key: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let l = self.wait_leader(among, Duration::from_secs(10)).await;
            let (code, body) = self.get(l, key).await;
            if code == 200 {
                return body["value"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "read of {key} kept failing: {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
