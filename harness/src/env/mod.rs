//! Environments: where the nodes run, and the handful of things the harness does to a host.
//!
//! An [`Env`] is a set of hosts, one per node, and the operations a test needs on them: run a
//! command, write a file, install a binary, start the node's daemon, signal it, collect its
//! logs, clean everything up. Three implementations: [`local`] (processes on 127.0.0.1, peer
//! links through userspace proxies, no root), [`netns`] (one network namespace per node on a
//! bridge inside a namespace the run creates; root) and [`ssh`] (any hosts or VMs, via
//! `ssh2`). The environment knows nothing about kvnode or etcd (that is a [`crate::db`]
//! adapter's job) and nothing about faults beyond what it is asked to run (that is
//! [`crate::inject`]'s job, built on [`Env::exec`] and [`Env::write_file`]).
//!
//! Every method is blocking; async callers go through `spawn_blocking` or run hosts in
//! parallel threads ([`for_each_host`]). Each host runs exactly one daemon: the node.

pub mod hosts;
pub mod local;
pub mod netns;
pub mod procs;
pub mod registry;
pub mod ssh;
pub mod sshd_hosts;

use anyhow::{bail, Result};
use nix::sys::signal::Signal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::inject::{ClockFaults, NetFaults};

/// Which environment a run uses (`--env`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvKind {
    /// Processes on 127.0.0.1 behind userspace proxies.
    Local,
    /// One network namespace per node (root).
    Netns,
    /// SSH hosts (VMs, machines, or sshd inside namespaces).
    Ssh,
}

impl EnvKind {
    /// The `--env` name.
    pub fn name(self) -> &'static str {
        match self {
            EnvKind::Local => "local",
            EnvKind::Netns => "netns",
            EnvKind::Ssh => "ssh",
        }
    }
}

impl std::str::FromStr for EnvKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "local" => Ok(EnvKind::Local),
            "netns" => Ok(EnvKind::Netns),
            "ssh" => Ok(EnvKind::Ssh),
            _ => Err(format!(
                "unknown --env {s:?} (expected local, netns or ssh)"
            )),
        }
    }
}

/// One node's host, as the run loop and the DB adapter see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Host {
    /// The node id it runs (`n1`, ...).
    pub node: String,
    /// Where the node binds its peer port (an address of the host).
    pub peer_listen: SocketAddr,
    /// Where the node binds its client port.
    pub client_listen: SocketAddr,
    /// How the harness reaches the client port (differs from `client_listen` behind a
    /// forwarded port, e.g. VMs on user-mode networking).
    pub client_addr: SocketAddr,
    /// The node's directory on the host: data, log, pid file.
    pub workdir: String,
    /// `RUN/nK` on this machine: logs and sizes are collected here.
    pub local_dir: PathBuf,
    /// Where a person or tool would log in, for messages (`127.0.0.1`, `faultline@10.0.0.11:22`).
    pub describe: String,
}

impl Host {
    /// `http://client_addr`.
    pub fn client_url(&self) -> String {
        format!("http://{}", self.client_addr)
    }

    /// The node's log file on the host.
    pub fn log_path(&self) -> String {
        format!("{}/node.log", self.workdir)
    }

    /// The node's data directory on the host.
    pub fn data_dir(&self) -> String {
        format!("{}/data", self.workdir)
    }
}

/// The node's daemon: what to run on its host.
#[derive(Debug, Clone, Default)]
pub struct DaemonSpec {
    /// Program path on the host.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment variables (e.g. libfaketime's).
    pub env: Vec<(String, String)>,
}

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// Exit status (-1 when killed by a signal).
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CmdOutput {
    /// The output when the command succeeded, else an error with its stderr, naming the host.
    pub fn ok(self, host: &str, what: &str) -> Result<CmdOutput> {
        if self.status == 0 {
            Ok(self)
        } else {
            bail!(
                "{host}: `{what}` failed (exit {}): {}",
                self.status,
                self.stderr.trim()
            )
        }
    }
}

/// The operations a test needs on its hosts; see the module documentation.
pub trait Env: Send + Sync {
    /// `local`, `netns` or `ssh`.
    fn kind(&self) -> EnvKind;
    /// The hosts, index-aligned with the node ids.
    fn hosts(&self) -> &[Host];
    /// The address node `from` must dial to reach node `to`'s peer port.
    fn peer_addr(&self, from: usize, to: usize) -> SocketAddr;
    /// Runs `argv` on host `i` and waits for it; `privileged` runs it as root (sudo where the
    /// host is configured for it).
    fn exec(&self, i: usize, argv: &[&str], privileged: bool) -> Result<CmdOutput>;
    /// Writes a file on host `i`.
    fn write_file(&self, i: usize, path: &str, contents: &[u8]) -> Result<()>;
    /// Makes the local file `local` available on host `i` as an executable; returns its path
    /// there (unchanged on environments that share this machine's filesystem).
    fn install(&self, i: usize, local: &Path) -> Result<String>;
    /// Starts the node daemon on host `i`, its output appended to [`Host::log_path`].
    fn start(&self, i: usize, spec: &DaemonSpec) -> Result<()>;
    /// Sends `sig` to host `i`'s daemon, if it runs.
    fn signal(&self, i: usize, sig: Signal) -> Result<()>;
    /// SIGKILLs host `i`'s daemon and waits until it is gone.
    fn kill(&self, i: usize) -> Result<()>;
    /// The daemon's pid, while it runs.
    fn pid(&self, i: usize) -> Option<u32>;
    /// True when the daemon has exited on its own (crashed at startup, say).
    fn exited(&self, i: usize) -> bool;
    /// Copies host `i`'s log into [`Host::local_dir`] and records its data size; a no-op where
    /// they are already there.
    fn collect(&self, i: usize) -> Result<()>;
    /// Stops every daemon and removes everything the environment created; idempotent, never
    /// fails (problems are printed).
    fn teardown(&self);
}

/// An environment with the fault injectors that work in it.
pub struct Environment {
    /// The hosts.
    pub env: Arc<dyn Env>,
    /// Partitions and packet faults.
    pub net: Box<dyn NetFaults>,
    /// Clock faults.
    pub clock: Box<dyn ClockFaults>,
    /// When building it began (bring-up time is measured from here).
    pub started: std::time::Instant,
}

/// Runs `f` for every host in parallel threads (5 SSH hosts start as fast as one); returns
/// the first error, naming the host.
pub fn for_each_host<F>(env: &dyn Env, f: F) -> Result<()>
where
    F: Fn(usize) -> Result<()> + Sync,
{
    let n = env.hosts().len();
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..n).map(|i| s.spawn(move || f(i))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a host thread panicked")))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// A short id for this run's resources (namespaces, chains, remote dirs): the pid plus a
/// random part, so concurrent runs and reruns never share names.
pub fn run_tag() -> String {
    format!(
        "{:x}{:03x}",
        std::process::id() & 0xfffff,
        rand::random::<u16>() & 0xfff
    )
}
