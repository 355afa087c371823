//! The local environment: every node a process on 127.0.0.1, no root needed.
//!
//! Ports are picked free below the ephemeral range (`cluster::ports`). Peer traffic runs
//! through the harness's link proxies ([`crate::inject::proxies`]): node `i` is told to
//! reach node `j` at the proxy `i -> j`, so partitions and packet faults are cut there.
//! Systems whose members must all use one address per peer (etcd) get one proxy per node
//! instead, which learns each request's sender from the HTTP peer protocol
//! ([`crate::inject::http_peers`]); see [`PeerLinks`].
//! Clock faults use libfaketime when it is installed. Commands "on the host" run on this
//! machine.

use super::procs::Children;
use super::{CmdOutput, DaemonSpec, Env, EnvKind, Environment, Host};
use crate::inject::clock::{Faketime, NoClock};
use crate::inject::http_peers::{HttpPeerNet, PeerProtocol};
use crate::inject::proxies::ProxyNet;
use crate::inject::{ClockFaults, NetFaults};
use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Nodes as local processes.
pub struct LocalEnv {
    hosts: Vec<Host>,
    /// `peers[(i, j)]`: the address node i dials for node j (its proxy).
    peers: BTreeMap<(usize, usize), SocketAddr>,
    children: Children,
}

fn free_port() -> Result<SocketAddr> {
    cluster::ports::free_loopback_port().context("no free loopback port")
}

/// How peer links are proxied.
#[derive(Debug, Clone, Copy)]
pub enum PeerLinks {
    /// One proxy per directed link; each node gets its own address for every peer.
    PerLink,
    /// One proxy per node, its advertised peer address for every sender; senders are learned
    /// from the HTTP peer protocol.
    PerNode(PeerProtocol),
    /// No proxies: nodes dial each other's peer ports; no partitions or packet faults
    /// (benchmarks, which would otherwise measure the proxies too).
    Direct,
}

/// The network faults of an environment without proxies: there is nothing to cut.
struct NoNetFaults;

impl NetFaults for NoNetFaults {
    fn partition(&self, _grudge: &nemesis::Grudge) -> Result<()> {
        anyhow::bail!("this local environment has no peer proxies: partitions cannot be injected")
    }
    fn heal(&self) -> Result<()> {
        Ok(())
    }
    fn packet(&self, _nodes: &[usize], _delay_ms: u64, _loss: f64) -> Result<()> {
        anyhow::bail!(
            "this local environment has no peer proxies: packet faults cannot be injected"
        )
    }
    fn clear_packet(&self) -> Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "none (direct peer links)".into()
    }
}

/// Builds the local environment for `ids` under `run_dir`: ports, node directories, link
/// proxies, and libfaketime when `faketime` names it.
pub async fn build(
    ids: &[String],
    run_dir: &Path,
    faketime: Option<PathBuf>,
) -> Result<Environment> {
    build_with(ids, run_dir, faketime, PeerLinks::PerLink).await
}

/// [`build`] with the peer links proxied as `links` says.
pub async fn build_with(
    ids: &[String],
    run_dir: &Path,
    faketime: Option<PathBuf>,
    links: PeerLinks,
) -> Result<Environment> {
    let started = std::time::Instant::now();
    let mut hosts = Vec::new();
    for id in ids {
        let dir = run_dir.join(id);
        std::fs::create_dir_all(dir.join("data"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let client = free_port()?;
        hosts.push(Host {
            node: id.clone(),
            peer_listen: free_port()?,
            client_listen: client,
            client_addr: client,
            workdir: dir.display().to_string(),
            local_dir: dir,
            describe: format!("{id} (local)"),
        });
    }
    let listen: Vec<SocketAddr> = hosts.iter().map(|h| h.peer_listen).collect();
    let mut peers = BTreeMap::new();
    let net: Box<dyn NetFaults> = match links {
        PeerLinks::PerLink => {
            let net = ProxyNet::start(ids.to_vec(), &listen).await?;
            for i in 0..ids.len() {
                for j in 0..ids.len() {
                    if let Some(a) = net.addr(i, j) {
                        peers.insert((i, j), a);
                    }
                }
            }
            Box::new(net)
        }
        PeerLinks::PerNode(protocol) => {
            let net = HttpPeerNet::start(ids.to_vec(), &listen, protocol).await?;
            // Every node, the target itself included (it advertises the address), uses the
            // one proxy of the target.
            for i in 0..ids.len() {
                for j in 0..ids.len() {
                    if let Some(a) = net.addr(j) {
                        peers.insert((i, j), a);
                    }
                }
            }
            Box::new(net)
        }
        PeerLinks::Direct => Box::new(NoNetFaults),
    };
    let env: Arc<dyn Env> = Arc::new(LocalEnv {
        hosts,
        peers,
        children: Children::default(),
    });
    let clock: Box<dyn ClockFaults> = match faketime {
        Some(lib) => Box::new(Faketime::new(env.clone(), lib)?),
        None => Box::new(NoClock(
            "clock faults need libfaketime, which is not installed (apt-get install -y faketime)"
                .into(),
        )),
    };
    Ok(Environment {
        started,
        env,
        net,
        clock,
    })
}

/// Runs `argv` on this machine and collects its output.
pub fn run_here(argv: &[&str]) -> Result<CmdOutput> {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", argv.join(" ")))?;
    Ok(CmdOutput {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

impl Env for LocalEnv {
    fn kind(&self) -> EnvKind {
        EnvKind::Local
    }

    fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    fn peer_addr(&self, from: usize, to: usize) -> SocketAddr {
        self.peers
            .get(&(from, to))
            .copied()
            .unwrap_or(self.hosts[to].peer_listen)
    }

    fn exec(&self, _i: usize, argv: &[&str], _privileged: bool) -> Result<CmdOutput> {
        run_here(argv)
    }

    fn write_file(&self, _i: usize, path: &str, contents: &[u8]) -> Result<()> {
        std::fs::write(path, contents).with_context(|| format!("cannot write {path}"))
    }

    fn install(&self, _i: usize, local: &Path) -> Result<String> {
        Ok(local.display().to_string())
    }

    fn start(&self, i: usize, spec: &DaemonSpec) -> Result<()> {
        let log = PathBuf::from(self.hosts[i].log_path());
        self.children.spawn(i, &[], spec, &log)
    }

    fn signal(&self, i: usize, sig: Signal) -> Result<()> {
        self.children.signal(i, sig)
    }

    fn kill(&self, i: usize) -> Result<()> {
        self.children.kill(i)
    }

    fn pid(&self, i: usize) -> Option<u32> {
        self.children.pid(i)
    }

    fn exited(&self, i: usize) -> bool {
        self.children.exited(i)
    }

    fn collect(&self, _i: usize) -> Result<()> {
        Ok(())
    }

    fn teardown(&self) {
        self.children.kill_all();
    }
}
