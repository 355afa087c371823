//! The etcd adapter: a real system nobody here wrote (Debian's `etcd-server`, 3.4) under
//! test through the same [`Db`] and [`crate::client::Client`] seams as kvnode.
//!
//! Each node runs one etcd member named after the node, data in the host's data directory,
//! peer and client URLs from the environment, one static `--initial-cluster` for everybody.
//! etcd derives member and cluster ids from the peer URLs in that list, so every member must
//! name a peer by the same URL: on netns and SSH hosts that is the peer's own address; in the
//! local environment it is the peer's one shared proxy, which tells senders apart by the
//! `X-PeerURLs` header of etcd's raft requests ([`PEER_PROTOCOL`],
//! [`crate::inject::http_peers`]) — so partitions and packet faults work on loopback without
//! root, like kvnode's per-link proxies.
//!
//! Who leads comes from `POST /v3/maintenance/status` (the member's id, its leader's id, its
//! raft term); ids are mapped to node names with `/v3/cluster/member/list`. A killed member
//! restarts with the same flags: etcd ignores `--initial-cluster*` once its data directory
//! holds a member, and rejoins with its id.

use super::{Db, NodeStatus};
use crate::client::etcd::EtcdClient;
use crate::env::{DaemonSpec, Env, EnvKind};
use crate::inject::http_peers::PeerProtocol;
use anyhow::{bail, Context, Result};
use checkers::cluster_state::Role;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How etcd's peers name themselves: rafthttp sends the sender's advertised peer URLs as
/// `X-PeerURLs` on every raft request; a stream `GET /raft/stream/<type>/<sender id>` is
/// answered with the receiver's messages to the sender.
pub const PEER_PROTOCOL: PeerProtocol = PeerProtocol {
    sender_header: "X-PeerURLs",
    reverse_paths: &["/raft/stream/"],
};

/// What to say when etcd is missing.
pub const INSTALL_HINT: &str =
    "install it with `apt-get install -y etcd-server`, or set FAULTLINE_ETCD=/path/to/etcd";

/// The etcd binary on this machine: `$FAULTLINE_ETCD`, else `etcd` on `PATH`.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FAULTLINE_ETCD").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

/// The version an etcd binary reports (`etcd Version: 3.4.23` -> `3.4.23`).
pub fn parse_version(output: &str) -> Option<String> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Runs `binary --version` on this machine.
pub fn local_version(binary: &Path) -> Result<String> {
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", binary.display()))?;
    parse_version(&String::from_utf8_lossy(&out.stdout)).with_context(|| {
        format!(
            "{} --version does not say `etcd Version: ...`; is it etcd?",
            binary.display()
        )
    })
}

/// How to run etcd.
#[derive(Debug, Clone)]
pub struct EtcdSpec {
    /// The etcd binary on this machine; on SSH hosts it is uploaded, and without it the
    /// hosts' own `etcd` is used.
    pub binary: Option<PathBuf>,
    /// Reads served by the member asked, from its own state (`serializable`), instead of
    /// linearizable reads (a read-index round through the leader).
    pub serializable_reads: bool,
    /// `--initial-cluster-token` (member ids derive from it and the peer URLs).
    pub token: String,
}

/// etcd on an environment's hosts.
pub struct Etcd {
    spec: EtcdSpec,
    ids: Vec<String>,
    urls: Vec<String>,
    /// The binary's path on each host (after [`Db::install`]).
    programs: Vec<String>,
    version: String,
    http: reqwest::Client,
    /// Member id (decimal, as the gateway prints it) -> node name.
    names: Mutex<HashMap<String, String>>,
}

impl Etcd {
    /// The adapter for `env`'s hosts.
    pub fn new(spec: EtcdSpec, env: &dyn Env) -> Result<Etcd> {
        let version = match &spec.binary {
            Some(b) => local_version(b)?,
            None => "unknown".into(),
        };
        Ok(Etcd {
            spec,
            ids: env.hosts().iter().map(|h| h.node.clone()).collect(),
            urls: env.hosts().iter().map(|h| h.client_url()).collect(),
            programs: Vec::new(),
            version,
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()?,
            names: Mutex::default(),
        })
    }

    /// The URL every member uses for node `j`'s peer port. Fails when the environment gives
    /// different members different addresses for one peer (etcd would compute different
    /// cluster ids and refuse to talk).
    fn peer_urls(env: &dyn Env) -> Result<Vec<String>> {
        let n = env.hosts().len();
        (0..n)
            .map(|j| {
                let a = env.peer_addr(j, j);
                if let Some(i) = (0..n).find(|&i| env.peer_addr(i, j) != a) {
                    bail!(
                        "etcd needs every member to reach {} at one address, but the {} \
                         environment gives {} another ({} instead of {a}); build the local \
                         environment with PeerLinks::PerNode(etcd::PEER_PROTOCOL)",
                        env.hosts()[j].node,
                        env.kind().name(),
                        env.hosts()[i].node,
                        env.peer_addr(i, j)
                    );
                }
                Ok(format!("http://{a}"))
            })
            .collect()
    }

    async fn post(&self, i: usize, path: &str) -> Option<Value> {
        let url = format!("{}{path}", self.urls.get(i)?);
        let resp = self.http.post(url).json(&json!({})).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    /// The node name of member `id`, asking member `i` for the member list when unknown.
    async fn name_of(&self, i: usize, id: &str) -> Option<String> {
        if let Some(n) = self.lock_names().get(id) {
            return Some(n.clone());
        }
        let list = self.post(i, "/v3/cluster/member/list").await?;
        let mut names = self.lock_names();
        for m in list.get("members").and_then(Value::as_array)? {
            if let (Some(mid), Some(name)) = (
                m.get("ID").and_then(Value::as_str),
                m.get("name").and_then(Value::as_str),
            ) {
                names.insert(mid.to_string(), name.to_string());
            }
        }
        names.get(id).cloned()
    }

    fn lock_names(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Db for Etcd {
    type Client = EtcdClient;

    fn name(&self) -> &'static str {
        "etcd"
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn leaderless(&self) -> bool {
        false
    }

    fn install(&mut self, env: &dyn Env) -> Result<()> {
        let n = env.hosts().len();
        let found: Vec<Mutex<(String, String)>> = (0..n).map(|_| Default::default()).collect();
        crate::env::for_each_host(env, |i| {
            let host = &env.hosts()[i].describe;
            let program = match &self.spec.binary {
                Some(b) => env
                    .install(i, b)
                    .with_context(|| format!("cannot install etcd on {host}"))?,
                None if env.kind() == EnvKind::Ssh => {
                    let out = env.exec(i, &["sh", "-c", "command -v etcd"], false)?;
                    if out.status != 0 {
                        bail!("{host} has no etcd and this machine has none to upload: {INSTALL_HINT}");
                    }
                    out.stdout.trim().to_string()
                }
                None => bail!("etcd is not installed: {INSTALL_HINT}"),
            };
            let out = env.exec(i, &[&program, "--version"], false)?;
            let version = parse_version(&out.stdout).with_context(|| {
                format!("{host}: `{program} --version` does not name an etcd version")
            })?;
            *found[i].lock().unwrap_or_else(|p| p.into_inner()) = (program, version);
            Ok(())
        })?;
        let found: Vec<(String, String)> = found
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
            .collect();
        if let Some((i, (_, v))) = found.iter().enumerate().find(|(_, f)| f.1 != found[0].1) {
            bail!(
                "the hosts run different etcd versions ({} has {}, {} has {v})",
                env.hosts()[0].node,
                found[0].1,
                env.hosts()[i].node
            );
        }
        if let Some((_, v)) = found.first() {
            self.version = v.clone();
        }
        self.programs = found.into_iter().map(|(p, _)| p).collect();
        Ok(())
    }

    fn daemon(&self, env: &dyn Env, i: usize) -> Result<DaemonSpec> {
        let hosts = env.hosts();
        let h = &hosts[i];
        let peers = Self::peer_urls(env)?;
        let cluster: Vec<String> = hosts
            .iter()
            .zip(&peers)
            .map(|(h, u)| format!("{}={u}", h.node))
            .collect();
        let args = [
            ("--name", h.node.clone()),
            ("--data-dir", h.data_dir()),
            ("--listen-peer-urls", format!("http://{}", h.peer_listen)),
            ("--initial-advertise-peer-urls", peers[i].clone()),
            (
                "--listen-client-urls",
                format!("http://{}", h.client_listen),
            ),
            ("--advertise-client-urls", h.client_url()),
            ("--initial-cluster", cluster.join(",")),
            ("--initial-cluster-state", "new".into()),
            ("--initial-cluster-token", self.spec.token.clone()),
            // etcd's defaults, stated so the run records them.
            ("--heartbeat-interval", "100".into()),
            ("--election-timeout", "1000".into()),
            ("--logger", "zap".into()),
            ("--log-outputs", "stderr".into()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect();
        let program = match self.programs.get(i) {
            Some(p) => p.clone(),
            None => self
                .spec
                .binary
                .as_ref()
                .map(|b| b.display().to_string())
                .with_context(|| format!("etcd is not installed: {INSTALL_HINT}"))?,
        };
        Ok(DaemonSpec {
            program,
            args,
            env: Vec::new(),
        })
    }

    async fn status(&self, i: usize) -> Option<NodeStatus> {
        let st = self.post(i, "/v3/maintenance/status").await?;
        let me = st.get("header")?.get("member_id")?.as_str()?.to_string();
        let term = st
            .get("raftTerm")
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        // proto3 JSON omits a zero leader: none known (an election is running).
        let leader_id = st
            .get("leader")
            .and_then(Value::as_str)
            .filter(|l| *l != "0");
        let leader = match leader_id {
            Some(l) => self.name_of(i, l).await,
            None => None,
        };
        Some(NodeStatus {
            role: if leader_id == Some(me.as_str()) {
                Role::Leader
            } else {
                Role::Follower
            },
            term,
            leader,
        })
    }

    fn client(&self, op_timeout: Duration) -> Result<EtcdClient> {
        EtcdClient::new(
            self.ids.clone(),
            self.urls.clone(),
            op_timeout,
            self.spec.serializable_reads,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_what_etcd_prints() {
        let out = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(parse_version(out).as_deref(), Some("3.4.23"));
        assert_eq!(parse_version("etcd Version: \n"), None);
        assert_eq!(parse_version("kvnode 0.1.0"), None);
    }
}
