//! DB adapters: everything the harness knows about one system under test — how to install
//! it on a host, the daemon each node runs, how to ask a node who leads, and the client the
//! workers use. The run loop, environments and injectors never name a system; adding one is
//! implementing [`Db`] and a [`crate::client::Client`] (docs/adding-a-system.md).

pub mod etcd;
pub mod kvnode;

use crate::client::Client;
use crate::env::{DaemonSpec, Env};
use anyhow::{bail, Result};
use std::future::Future;
use std::time::Duration;

/// What one node says about itself: the shape `cluster-status` events record (one shape,
/// owned by the checkers that read it back).
pub use checkers::cluster_state::NodeStatus;

/// A membership change the `member` fault asks a system for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add these fresh, already started nodes (as voters, once caught up).
    Add(Vec<cluster::membership::NewMember>),
    /// Remove these members.
    Remove(Vec<String>),
}

/// A system under test.
pub trait Db: Send + Sync + 'static {
    /// The client its workers use.
    type Client: Client;
    /// `kvnode`, `etcd`, ...
    fn name(&self) -> &'static str;
    /// What to record as its version in test.json and results.json.
    fn version(&self) -> String;
    /// True when there is no leader to wait for (every node serves).
    fn leaderless(&self) -> bool;
    /// Makes the system's binaries available on every host (checks they exist, uploads).
    fn install(&mut self, env: &dyn Env) -> Result<()>;
    /// The daemon node `i` runs (clock-fault environment variables are added by the caller).
    fn daemon(&self, env: &dyn Env, i: usize) -> Result<DaemonSpec>;
    /// Asks node `i` about itself; `None` when it does not answer.
    fn status(&self, i: usize) -> impl Future<Output = Option<NodeStatus>> + Send;
    /// A client for the workers, every op bounded by `op_timeout`.
    fn client(&self, op_timeout: Duration) -> Result<Self::Client>;

    /// How many of the environment's `hosts` run at the start; the others are fresh nodes
    /// for the `member` fault to add.
    fn initial_members(&self, hosts: usize) -> usize {
        hosts
    }

    /// How many nodes one membership change adds or removes (1: single-server changes);
    /// 0 when the system has no membership changes.
    fn member_step(&self) -> usize {
        0
    }

    /// The members (voters and learners) node `at` knows of; `None` when it does not say.
    fn configuration(&self, at: usize) -> impl Future<Output = Option<Vec<String>>> + Send {
        let _ = at;
        async { None }
    }

    /// Makes a membership change through node `leader` (following redirects); Ok once it is
    /// committed, an error when it was refused or its outcome is unknown.
    fn change_members(
        &self,
        leader: usize,
        change: MemberChange,
    ) -> impl Future<Output = Result<()>> + Send {
        let name = self.name();
        async move { bail!("{name} has no membership changes (asked at node {leader}: {change:?})") }
    }
}
