//! The kvnode adapter: the bundled replicated KV store (`cluster` crate) as a system under
//! test. By default the node binary is faultline itself (`faultline kvnode ...`), so one
//! binary is copied to SSH hosts; `--kvnode PATH` uses a standalone build.
//!
//! With the `member` fault only the first hosts form the cluster at the start; the others
//! are fresh nodes started with `--join` and added through the admin API (`POST
//! /admin/members` on the leader, then promoted once caught up), or members removed with
//! `DELETE /admin/members/{id}`.

use super::{Db, MemberChange, NodeStatus};
use crate::client::KvClient;
use crate::env::{DaemonSpec, Env};
use anyhow::{bail, Context, Result};
use checkers::cluster_state::Role;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How to run kvnode.
#[derive(Debug, Clone)]
pub struct KvnodeSpec {
    /// The binary on this machine.
    pub binary: PathBuf,
    /// True when `binary` is faultline (insert `kvnode` as the first argument).
    pub subcommand: bool,
    /// `--engine`.
    pub engine: String,
    /// Extra kvnode flags, verbatim.
    pub extra_args: Vec<String>,
    /// `--seed` for every node.
    pub seed: u64,
}

/// kvnode on an environment's hosts.
pub struct Kvnode {
    spec: KvnodeSpec,
    ids: Vec<String>,
    urls: Vec<String>,
    /// The binary's path on each host (after [`Db::install`]).
    programs: Vec<String>,
    http: reqwest::Client,
    /// Hosts running at the start (all when `None`).
    members: Option<usize>,
}

/// How long a membership change may take, redirects and retries included (a learner
/// catching up by snapshot under faults needs a while).
const CHANGE_DEADLINE: Duration = Duration::from_secs(10);

/// Refusals that only say "not now": retried until [`CHANGE_DEADLINE`].
const NOT_NOW: [&str; 3] = ["leader-not-ready", "change-in-progress", "learner-behind"];

impl Kvnode {
    /// The adapter for `env`'s hosts.
    pub fn new(spec: KvnodeSpec, env: &dyn Env) -> Result<Kvnode> {
        Ok(Kvnode {
            spec,
            ids: env.hosts().iter().map(|h| h.node.clone()).collect(),
            urls: env.hosts().iter().map(|h| h.client_url()).collect(),
            programs: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()?,
            members: None,
        })
    }

    /// Only the first `n` hosts form the cluster at the start; the others join later.
    pub fn with_members(mut self, n: usize) -> Kvnode {
        self.members = Some(n);
        self
    }

    /// Sends one admin request to node `at` and retries it (following 421 to the leader,
    /// waiting out [`NOT_NOW`] refusals and unreachable nodes) until it is answered 200 or
    /// refused for good, or `deadline` passes.
    async fn admin(
        &self,
        mut at: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        deadline: Instant,
    ) -> Result<usize> {
        loop {
            let mut rb = self
                .http
                .request(method.clone(), format!("{}{path}", self.urls[at]))
                .timeout(Duration::from_secs(10));
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let answer = match rb.send().await {
                Ok(r) => {
                    let code = r.status().as_u16();
                    Some((code, r.json::<Value>().await.unwrap_or(Value::Null)))
                }
                Err(e) if e.is_connect() => None,
                Err(e) => bail!("{method} {path} at {}: outcome unknown: {e}", self.ids[at]),
            };
            let slug = answer
                .as_ref()
                .and_then(|(_, v)| v.get("error")?.as_str().map(String::from));
            match answer {
                Some((200, _)) => return Ok(at),
                Some((421, v)) => {
                    let leader = v.get("leader").and_then(Value::as_str);
                    if let Some(l) = leader.and_then(|l| self.ids.iter().position(|i| i == l)) {
                        at = l;
                    }
                }
                Some((409, _)) if NOT_NOW.contains(&slug.as_deref().unwrap_or_default()) => {}
                Some((504, _)) => bail!("{method} {path}: outcome unknown (504)"),
                Some((code, v)) => bail!("{method} {path} refused ({code}): {v}"),
                None => {}
            }
            if Instant::now() > deadline {
                bail!("{method} {path}: not done within {CHANGE_DEADLINE:?} (last: {slug:?})");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Db for Kvnode {
    type Client = KvClient;

    fn name(&self) -> &'static str {
        "kvnode"
    }

    fn version(&self) -> String {
        format!(
            "{} ({} engine)",
            env!("CARGO_PKG_VERSION"),
            self.spec.engine
        )
    }

    fn leaderless(&self) -> bool {
        self.spec.engine == "nwr"
    }

    fn install(&mut self, env: &dyn Env) -> Result<()> {
        let n = env.hosts().len();
        let programs: Vec<std::sync::Mutex<String>> = (0..n).map(|_| Default::default()).collect();
        crate::env::for_each_host(env, |i| {
            let p = env
                .install(i, &self.spec.binary)
                .with_context(|| format!("cannot install kvnode on {}", env.hosts()[i].describe))?;
            *programs[i].lock().unwrap_or_else(|e| e.into_inner()) = p;
            Ok(())
        })?;
        self.programs = programs
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        Ok(())
    }

    fn daemon(&self, env: &dyn Env, i: usize) -> Result<DaemonSpec> {
        let hosts = env.hosts();
        let h = &hosts[i];
        let mut args = Vec::new();
        if self.spec.subcommand {
            args.push("kvnode".to_string());
        }
        args.extend([
            "--id".into(),
            h.node.clone(),
            "--peer-listen".into(),
            h.peer_listen.to_string(),
            "--client-listen".into(),
            h.client_listen.to_string(),
            "--data-dir".into(),
            h.data_dir(),
            "--engine".into(),
            self.spec.engine.clone(),
            "--seed".into(),
            self.spec.seed.to_string(),
        ]);
        // A joining node names every other host (they are only addresses to answer); a
        // founding member names the founders only, since they are its first configuration.
        let founders = self.members.unwrap_or(hosts.len());
        let joining = i >= founders;
        if joining {
            args.push("--join".into());
        }
        let peers: Vec<String> = (0..hosts.len())
            .filter(|&j| j != i && (joining || j < founders))
            .map(|j| format!("{}={}", hosts[j].node, env.peer_addr(i, j)))
            .collect();
        if !peers.is_empty() {
            args.push("--peers".into());
            args.push(peers.join(","));
        }
        args.extend(self.spec.extra_args.iter().cloned());
        let program = self
            .programs
            .get(i)
            .cloned()
            .unwrap_or_else(|| self.spec.binary.display().to_string());
        Ok(DaemonSpec {
            program,
            args,
            env: vec![(
                "RUST_LOG".into(),
                std::env::var("FAULTLINE_NODE_LOG").unwrap_or_else(|_| "info".into()),
            )],
        })
    }

    async fn status(&self, i: usize) -> Option<NodeStatus> {
        let url = format!("{}/status", self.urls.get(i)?);
        let v: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
        Some(NodeStatus {
            role: Role::from_word(v.get("role").and_then(Value::as_str)?),
            term: v.get("term").and_then(Value::as_u64).unwrap_or(0),
            leader: v.get("leader").and_then(Value::as_str).map(String::from),
        })
    }

    fn client(&self, op_timeout: Duration) -> Result<KvClient> {
        KvClient::new(self.ids.clone(), self.urls.clone(), op_timeout)
    }

    fn initial_members(&self, hosts: usize) -> usize {
        self.members.unwrap_or(hosts).min(hosts)
    }

    fn member_step(&self) -> usize {
        if self.spec.engine != "raft" {
            0
        } else if self
            .spec
            .extra_args
            .iter()
            .any(|a| a == "--unsafe-multi-server-change")
        {
            2
        } else {
            1
        }
    }

    async fn configuration(&self, at: usize) -> Option<Vec<String>> {
        let url = format!("{}/admin/members", self.urls.get(at)?);
        let v: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
        let ids = |k: &str| -> Option<Vec<String>> {
            let list = v.get(k)?.as_array()?;
            list.iter().map(|x| x.as_str().map(String::from)).collect()
        };
        Some([ids("voters")?, ids("learners")?].concat())
    }

    async fn change_members(&self, leader: usize, change: MemberChange) -> Result<()> {
        let deadline = Instant::now() + CHANGE_DEADLINE;
        match change {
            MemberChange::Add(mut nodes) if nodes.len() == 1 => {
                let node = nodes.remove(0);
                let body = serde_json::to_value(&node)?;
                let post = reqwest::Method::POST;
                let at = self
                    .admin(
                        leader,
                        post.clone(),
                        "/admin/members",
                        Some(&body),
                        deadline,
                    )
                    .await?;
                let promote = json!({"action": "promote", "id": node.id});
                self.admin(at, post, "/admin/members", Some(&promote), deadline)
                    .await?;
            }
            MemberChange::Add(nodes) => {
                let body = json!({"action": "add-voters", "members": nodes});
                self.admin(
                    leader,
                    reqwest::Method::POST,
                    "/admin/members",
                    Some(&body),
                    deadline,
                )
                .await?;
            }
            MemberChange::Remove(ids) => {
                let path = format!("/admin/members/{}", ids.join(","));
                self.admin(leader, reqwest::Method::DELETE, &path, None, deadline)
                    .await?;
            }
        }
        Ok(())
    }
}
