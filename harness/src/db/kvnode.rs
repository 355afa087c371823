//! The kvnode adapter: the bundled replicated KV store (`cluster` crate) as a system under
//! test. By default the node binary is faultline itself (`faultline kvnode ...`), so one
//! binary is copied to SSH hosts; `--kvnode PATH` uses a standalone build.

use super::{Db, NodeStatus};
use crate::client::KvClient;
use crate::env::{DaemonSpec, Env};
use anyhow::{Context, Result};
use checkers::cluster_state::Role;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

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
}

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
        })
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
        let peers: Vec<String> = (0..hosts.len())
            .filter(|&j| j != i)
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
}
