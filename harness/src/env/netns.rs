//! The netns environment: every node in its own Linux network namespace, all of them on one
//! bridge that lives in a namespace of its own; root only.
//!
//! ```text
//!   root namespace              faultline-<tag>-sw            faultline-<tag>-nK
//!   fl<tag> 198.18.S.254 ==veth== fl<tag>s -- br0 -- nK ==veth== eth0 198.18.S.K
//! ```
//!
//! Addresses come from 198.18.0.0/15, the range reserved for network benchmarks (RFC 2544),
//! which no real network uses: the run takes a free /24 (`S`), and the only route it adds to
//! the root namespace is that /24 on its own veth, so nothing the harness sends can leave the
//! namespaces it created. Nodes listen on their namespace address; the harness's clients reach
//! them through the bridge. Partitions are iptables DROPs inside each namespace, packet faults
//! tc netem on each namespace's `eth0` (real loss, not the proxy's stall), clock faults
//! libfaketime (the namespaces share one kernel clock).
//!
//! Everything is registered ([`super::registry`]) before it is created and removed at
//! teardown: processes in the namespaces, the namespaces (and with them every veth, rule and
//! qdisc inside), the root veth.

use super::procs::Children;
use super::registry::{self, Record};
use super::{CmdOutput, DaemonSpec, Env, EnvKind, Environment, Host};
use crate::inject::clock::{Faketime, NoClock};
use crate::inject::kernel::KernelNet;
use crate::inject::ClockFaults;
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Peer port every node listens on (each has its own address).
pub const PEER_PORT: u16 = 7000;
/// Client (HTTP) port every node listens on.
pub const CLIENT_PORT: u16 = 8000;

/// True when this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The namespaces, bridge and veths of one run.
#[derive(Debug)]
pub struct NsNetwork {
    /// The run's tag (names every resource).
    pub tag: String,
    /// Third octet of the run's 198.18.S.0/24.
    pub subnet: u8,
    /// One namespace per node, in node order.
    pub namespaces: Vec<String>,
    /// The bridge's namespace.
    pub switch: String,
    /// The root namespace's veth to the bridge.
    pub root_link: String,
    /// Set once torn down.
    gone: std::sync::atomic::AtomicBool,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = super::local::run_here(&[&["ip"], args].concat())?;
    if out.status != 0 {
        bail!("`ip {}` failed: {}", args.join(" "), out.stderr.trim());
    }
    Ok(())
}

/// Third octets of 198.18.S.0/24 subnets in use: by live runs, and by any address of the
/// root namespace in that range (a /16 on some interface rules out everything).
fn used_subnets() -> Result<Vec<u8>> {
    let mut used: Vec<u8> = registry::all().iter().filter_map(|r| r.subnet).collect();
    let out = super::local::run_here(&["ip", "-o", "-4", "addr", "show"])?;
    for w in out.stdout.split_whitespace() {
        if let Some(rest) = w.strip_prefix("198.18.") {
            if let Some(s) = rest.split('.').next().and_then(|o| o.parse().ok()) {
                used.push(s);
            }
        }
        if w.starts_with("198.1") && (w.ends_with("/16") || w.ends_with("/15")) {
            bail!("an interface of this machine has an address in 198.18.0.0/15 ({w}); the netns environment needs that range for itself");
        }
    }
    Ok(used)
}

impl NsNetwork {
    /// Creates `n` node namespaces on a bridge, with addresses 198.18.S.1..n, and a route to
    /// them from the root namespace. Cleans up leftovers of dead runs first.
    pub fn create(tag: &str, n: usize) -> Result<NsNetwork> {
        if !is_root() {
            bail!("--env netns needs root (network namespaces, iptables, tc); run as root or use --env local");
        }
        if n > 250 {
            bail!("--env netns supports at most 250 nodes");
        }
        clean_stale();
        let lock = registry::lock()?;
        let used = used_subnets()?;
        let start = rand::random::<u8>();
        let subnet = (0..=255u16)
            .map(|k| start.wrapping_add(k as u8))
            .find(|s| !used.contains(s))
            .context("no free /24 left in 198.18.0.0/16")?;
        let net = NsNetwork {
            tag: tag.to_string(),
            subnet,
            namespaces: (1..=n).map(|k| format!("faultline-{tag}-n{k}")).collect(),
            switch: format!("faultline-{tag}-sw"),
            root_link: format!("fl{tag}"),
            gone: Default::default(),
        };
        registry::save(&Record {
            tag: tag.to_string(),
            pid: std::process::id(),
            namespaces: net.all_namespaces(),
            links: vec![net.root_link.clone()],
            subnet: Some(subnet),
            ssh: None,
        })?;
        drop(lock);
        if let Err(e) = net.build() {
            net.destroy();
            return Err(e);
        }
        Ok(net)
    }

    fn all_namespaces(&self) -> Vec<String> {
        let mut v = self.namespaces.clone();
        v.push(self.switch.clone());
        v
    }

    fn build(&self) -> Result<()> {
        let (sw, tag) = (self.switch.as_str(), self.tag.as_str());
        ip(&["netns", "add", sw])?;
        ip(&["-n", sw, "link", "set", "lo", "up"])?;
        ip(&["-n", sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", sw, "link", "set", "br0", "up"])?;
        for (k, ns) in self.namespaces.iter().enumerate() {
            let (a, b) = (format!("f{tag}a{}", k + 1), format!("f{tag}b{}", k + 1));
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])?;
            ip(&["link", "set", &a, "netns", ns])?;
            ip(&["link", "set", &b, "netns", sw])?;
            ip(&["-n", ns, "link", "set", &a, "name", "eth0"])?;
            let addr = format!("{}/24", self.node_ip(k));
            ip(&["-n", ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", sw, "link", "set", &b, "master", "br0", "up"])?;
        }
        let peer = format!("{}s", self.root_link);
        ip(&[
            "link",
            "add",
            &self.root_link,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ])?;
        ip(&["link", "set", &peer, "netns", sw])?;
        ip(&["-n", sw, "link", "set", &peer, "master", "br0", "up"])?;
        let addr = format!("198.18.{}.254/24", self.subnet);
        ip(&["addr", "add", &addr, "dev", &self.root_link])?;
        ip(&["link", "set", &self.root_link, "up"])?;
        Ok(())
    }

    /// Node `k`'s (0-based) address.
    pub fn node_ip(&self, k: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, (k + 1) as u8)
    }

    /// The harness's address on the bridge.
    pub fn harness_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, 254)
    }

    /// `ip netns exec <node k's namespace>`, as an argv prefix.
    pub fn exec_prefix(&self, k: usize) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.namespaces[k].clone(),
        ]
    }

    /// Removes everything (idempotent): processes in the namespaces, the root veth, the
    /// namespaces, the record.
    pub fn destroy(&self) {
        if self.gone.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        remove(&Record {
            tag: self.tag.clone(),
            pid: std::process::id(),
            namespaces: self.all_namespaces(),
            links: vec![self.root_link.clone()],
            subnet: Some(self.subnet),
            ssh: None,
        });
    }
}

impl Drop for NsNetwork {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// Removes what a record names: kills every process in its namespaces, deletes its root
/// links and namespaces, then the record.
pub fn remove(r: &Record) {
    for ns in &r.namespaces {
        if let Ok(out) = super::local::run_here(&["ip", "netns", "pids", ns]) {
            for pid in out
                .stdout
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
        }
    }
    for l in &r.links {
        let _ = super::local::run_here(&["ip", "link", "del", l]);
    }
    for ns in &r.namespaces {
        // A namespace can only go once its processes are gone; SIGKILL takes a moment.
        for _ in 0..50 {
            let out = super::local::run_here(&["ip", "netns", "del", ns]);
            let exists = Path::new("/run/netns").join(ns).exists();
            if out.is_ok() && !exists {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    registry::remove(&r.tag);
}

/// Removes the leftovers of every run whose harness is no longer running (a SIGKILLed run);
/// returns how many runs were cleaned.
pub fn clean_stale() -> usize {
    let stale: Vec<Record> = registry::all()
        .into_iter()
        .filter(|r| !registry::owner_alive(r) && (!r.namespaces.is_empty() || !r.links.is_empty()))
        .collect();
    for r in &stale {
        eprintln!(
            "faultline: removing leftovers of run {} (pid {} is gone): {} namespaces",
            r.tag,
            r.pid,
            r.namespaces.len()
        );
        remove(r);
    }
    stale.len()
}

/// Nodes in network namespaces.
pub struct NetnsEnv {
    net: NsNetwork,
    hosts: Vec<Host>,
    children: Children,
}

/// Builds the netns environment for `ids` under `run_dir`, with libfaketime when
/// `faketime` names it; `faultline` is the binary that runs helpers (packet delay).
pub fn build(
    ids: &[String],
    run_dir: &Path,
    faketime: Option<PathBuf>,
    faultline: &Path,
) -> Result<Environment> {
    let started = std::time::Instant::now();
    let tag = super::run_tag();
    let net = NsNetwork::create(&tag, ids.len())?;
    let mut hosts = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        let dir = run_dir.join(id);
        std::fs::create_dir_all(dir.join("data"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let addr = IpAddr::V4(net.node_ip(k));
        hosts.push(Host {
            node: id.clone(),
            peer_listen: SocketAddr::new(addr, PEER_PORT),
            client_listen: SocketAddr::new(addr, CLIENT_PORT),
            client_addr: SocketAddr::new(addr, CLIENT_PORT),
            workdir: dir.display().to_string(),
            local_dir: dir,
            describe: format!("{id} (netns {}, {addr})", net.namespaces[k]),
        });
    }
    let env: Arc<NetnsEnv> = Arc::new(NetnsEnv {
        net,
        hosts,
        children: Children::default(),
    });
    let env: Arc<dyn Env> = env;
    let helpers = vec![faultline.display().to_string(); ids.len()];
    let kernel = KernelNet::install(env.clone(), helpers)?;
    let clock: Box<dyn ClockFaults> = match faketime {
        Some(lib) => Box::new(Faketime::new(env.clone(), lib)?),
        None => Box::new(NoClock(
            "clock faults need libfaketime, which is not installed (apt-get install -y faketime); \
             the namespaces share this machine's clock"
                .into(),
        )),
    };
    Ok(Environment {
        started,
        env,
        net: Box::new(kernel),
        clock,
    })
}

impl Env for NetnsEnv {
    fn kind(&self) -> EnvKind {
        EnvKind::Netns
    }

    fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    fn peer_addr(&self, _from: usize, to: usize) -> SocketAddr {
        self.hosts[to].peer_listen
    }

    fn exec(&self, i: usize, argv: &[&str], _privileged: bool) -> Result<CmdOutput> {
        let prefix = self.net.exec_prefix(i);
        let full: Vec<&str> = prefix
            .iter()
            .map(String::as_str)
            .chain(argv.iter().copied())
            .collect();
        super::local::run_here(&full)
    }

    fn write_file(&self, _i: usize, path: &str, contents: &[u8]) -> Result<()> {
        std::fs::write(path, contents).with_context(|| format!("cannot write {path}"))
    }

    fn install(&self, _i: usize, local: &Path) -> Result<String> {
        Ok(local.display().to_string())
    }

    fn start(&self, i: usize, spec: &DaemonSpec) -> Result<()> {
        let log = PathBuf::from(self.hosts[i].log_path());
        self.children.spawn(i, &self.net.exec_prefix(i), spec, &log)
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
        self.net.destroy();
    }
}
