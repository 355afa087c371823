//! The ssh environment: nodes on any hosts the harness can log in to — VMs (`--vagrant`),
//! machines, or sshd inside network namespaces (how CI exercises this path) — through the
//! `ssh2` crate (libssh2).
//!
//! Per host, one authenticated session, host key checked against known_hosts first. The
//! harness uploads its own binary (which contains kvnode and the `faultline clock` helper)
//! once per host, skipped when the remote sha256 matches, and runs each node as a daemon:
//! `setsid` so it outlives the SSH channel, output appended to `node.log`, pid in
//! `node.pid`, everything under `DIR/<node>/<run tag>/`. Kill, pause and resume are signals
//! by that pid. Partitions (iptables, chain `FAULTLINE`) and packet faults (tc netem) are
//! commands run through [`Env::exec`]; clock faults move the host's system clock with
//! `faultline clock offset` (or libfaketime where hosts share one kernel clock). At the end
//! logs and data sizes are copied into `results/<run>/nK/` and the run's remote directory is
//! removed (the uploaded binary stays, for the next run).
//!
//! Everything is blocking; hosts are handled in parallel threads ([`super::for_each_host`]),
//! so five hosts connect, upload and start as fast as one.

use super::hosts::{ClockMode, HostConfig, Hosts};
use super::registry::{self, Record};
use super::{for_each_host, CmdOutput, DaemonSpec, Env, EnvKind, Environment, Host};
use crate::inject::clock::{Faketime, SystemClock};
use crate::inject::kernel::KernelNet;
use crate::inject::{iptables, nfqueue, ClockFaults};
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;
use sha2::{Digest, Sha256};
use ssh2::{CheckResult, KnownHostFileKind, Session};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a blocking SSH operation may take before it fails.
const SSH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a TCP connection to port 22 may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serializes known_hosts updates from parallel connections.
static KNOWN_HOSTS: Mutex<()> = Mutex::new(());

/// Quotes one word for a POSIX shell.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn command_line(argv: &[&str]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// Connects and authenticates to one host; every failure names the host and the step.
pub fn connect(h: &HostConfig, known_hosts: &Path, accept_new: bool) -> Result<Session> {
    let who = format!("{}@{} ({})", h.user, h.ssh, h.name);
    let tcp = TcpStream::connect_timeout(&h.ssh, CONNECT_TIMEOUT)
        .with_context(|| format!("{who}: TCP connection to the SSH port failed"))?;
    let mut sess = Session::new().map_err(|e| anyhow!("{who}: libssh2: {e}"))?;
    sess.set_tcp_stream(tcp);
    sess.set_timeout(SSH_TIMEOUT.as_millis() as u32);
    sess.handshake()
        .with_context(|| format!("{who}: SSH handshake failed"))?;
    check_host_key(&sess, h, known_hosts, accept_new)
        .with_context(|| format!("{who}: host key"))?;
    match &h.key {
        Some(key) => sess
            .userauth_pubkey_file(&h.user, None, key, None)
            .with_context(|| format!("{who}: authentication with key {} failed", key.display()))?,
        None => sess
            .userauth_agent(&h.user)
            .with_context(|| format!("{who}: authentication through ssh-agent failed"))?,
    }
    if !sess.authenticated() {
        bail!("{who}: authentication failed");
    }
    // No libssh2 keepalive: a blocked call polls only until the next keepalive is due and
    // then fails ("Timed out waiting on socket") instead of sending it and waiting on, so
    // with keepalives every command on a long-lived session had a random deadline between
    // 0 s and the interval (clock faults on emulated VMs failed after 5-11 s). Blocked calls
    // are bounded by SSH_TIMEOUT alone.
    sess.set_keepalive(false, 0);
    Ok(sess)
}

fn check_host_key(sess: &Session, h: &HostConfig, file: &Path, accept_new: bool) -> Result<()> {
    let _g = KNOWN_HOSTS.lock().unwrap_or_else(|p| p.into_inner());
    let (key, ktype) = sess.host_key().context("the server sent no host key")?;
    let mut kh = sess.known_hosts()?;
    if file.exists() {
        kh.read_file(file, KnownHostFileKind::OpenSSH)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    let ip = h.ssh.ip().to_string();
    match kh.check_port(&ip, h.ssh.port(), key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => bail!(
            "the host key of {} differs from the one in {} (a reinstalled host, or someone in \
             the middle); remove the old entry with `ssh-keygen -R '[{ip}]:{}'` if you trust it",
            h.ssh,
            file.display(),
            h.ssh.port()
        ),
        CheckResult::NotFound if accept_new => {
            let name = if h.ssh.port() == 22 {
                ip.clone()
            } else {
                format!("[{ip}]:{}", h.ssh.port())
            };
            kh.add(&name, key, "added by faultline", ktype.into())?;
            if let Some(d) = file.parent() {
                std::fs::create_dir_all(d)?;
            }
            kh.write_file(file, KnownHostFileKind::OpenSSH)
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!(
                "faultline: added the host key of {} to {}",
                h.ssh,
                file.display()
            );
            Ok(())
        }
        CheckResult::NotFound => bail!(
            "{} is not in {} (add it with `ssh-keyscan -p {} {ip} >> {}`, or pass \
             --accept-new-host-keys)",
            h.ssh,
            file.display(),
            h.ssh.port(),
            file.display()
        ),
        CheckResult::Failure => bail!("checking {} failed", file.display()),
    }
}

/// Runs `cmd` (a shell command line) on `sess`, feeding `stdin`.
fn run(sess: &Session, cmd: &str, stdin: Option<&[u8]>) -> Result<CmdOutput> {
    let mut ch = sess.channel_session()?;
    ch.exec(cmd)?;
    if let Some(data) = stdin {
        ch.write_all(data)?;
    }
    ch.send_eof()?;
    let mut out = Vec::new();
    ch.read_to_end(&mut out)?;
    let mut err = Vec::new();
    ch.stderr().read_to_end(&mut err)?;
    ch.wait_close()?;
    Ok(CmdOutput {
        status: ch.exit_status()?,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// The node's address on a machine that did not say (Vagrant): the first global IPv4 address
/// on an interface other than the one holding the default route (which is the NAT
/// interface on Vagrant's machines; the private network is the other one).
fn discover_address(sess: &Session, who: &str) -> Result<IpAddr> {
    let route = run(sess, "ip -o -4 route show default", None)?;
    let default_dev = route
        .stdout
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or("")
        .to_string();
    let addrs = run(sess, "ip -o -4 addr show scope global", None)?;
    for line in addrs.stdout.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() > 3 && w[1] != default_dev && w[2] == "inet" {
            if let Some(ip) = w[3].split('/').next().and_then(|a| a.parse().ok()) {
                return Ok(ip);
            }
        }
    }
    bail!("{who}: cannot tell the node's private-network address from `ip addr`; list the hosts in a --hosts file instead")
}

/// A shell test that is true once `pid` has exited. A killed process stays a zombie until
/// its new parent (init, after the starting shell is gone) reaps it — on some hosts seconds
/// later — and `kill -0` succeeds on zombies, so the process state is read instead.
fn is_dead(pid: &str) -> String {
    format!("! grep -qv '^[^)]*) Z' /proc/{pid}/stat 2>/dev/null")
}

/// A bounded (10 s) shell loop that waits until `pid` has exited.
fn wait_dead(pid: &str) -> String {
    format!(
        "n=0; while ! {{ {dead}; }} && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done",
        dead = is_dead(pid)
    )
}

/// Nodes on SSH hosts.
pub struct SshEnv {
    tag: String,
    config: Hosts,
    hosts: Vec<Host>,
    sessions: Vec<Mutex<Session>>,
    /// sha256 of local files already computed.
    digests: Mutex<HashMap<PathBuf, String>>,
    /// Files already installed this run: (host, local file) -> remote path.
    installed: Mutex<HashMap<(usize, PathBuf), String>>,
    pids: Mutex<Vec<Option<u32>>>,
}

impl SshEnv {
    /// Connects to every host in parallel; `run_dir` is the local run directory.
    pub fn connect(tag: &str, mut config: Hosts, run_dir: &Path) -> Result<SshEnv> {
        let n = config.hosts.len();
        let slots: Vec<Mutex<Option<Session>>> = (0..n).map(|_| Mutex::new(None)).collect();
        let addrs: Vec<Mutex<Option<IpAddr>>> = (0..n).map(|_| Mutex::new(None)).collect();
        {
            let cfg = &config;
            std::thread::scope(|s| -> Result<()> {
                let handles: Vec<_> = (0..n)
                    .map(|i| {
                        let (slots, addrs) = (&slots, &addrs);
                        s.spawn(move || -> Result<()> {
                            let h = &cfg.hosts[i];
                            let sess = connect(h, &cfg.known_hosts, cfg.accept_new)?;
                            // The node's directory exists before anything (the clock's offset
                            // file, the daemon) is written into it.
                            let wd = format!("{}/{}/{tag}/data", h.dir, h.name);
                            run(&sess, &format!("mkdir -p {}", quote(&wd)), None)?
                                .ok(&h.name, "create the node's directory")?;
                            if h.address.is_unspecified() {
                                *addrs[i].lock().unwrap_or_else(|p| p.into_inner()) =
                                    Some(discover_address(&sess, &h.name)?);
                            }
                            *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(sess);
                            Ok(())
                        })
                    })
                    .collect();
                for h in handles {
                    h.join()
                        .map_err(|_| anyhow!("a connection thread panicked"))??;
                }
                Ok(())
            })?;
        }
        for (h, a) in config.hosts.iter_mut().zip(&addrs) {
            if let Some(ip) = *a.lock().unwrap_or_else(|p| p.into_inner()) {
                h.address = ip;
                if h.client.ip().is_unspecified() || h.client == h.ssh {
                    h.client = SocketAddr::new(ip, h.client_port);
                }
            }
        }
        let hosts = config
            .hosts
            .iter()
            .map(|h| {
                let dir = run_dir.join(&h.name);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                Ok(Host {
                    node: h.name.clone(),
                    peer_listen: SocketAddr::new(h.address, h.peer_port),
                    client_listen: SocketAddr::new(h.address, h.client_port),
                    client_addr: h.client,
                    workdir: format!("{}/{}/{tag}", h.dir, h.name),
                    local_dir: dir,
                    describe: format!("{} ({}@{})", h.name, h.user, h.ssh),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let sessions = slots
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .map(Mutex::new)
                    .context("a host did not connect")
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SshEnv {
            tag: tag.to_string(),
            config,
            hosts,
            sessions,
            digests: Mutex::default(),
            installed: Mutex::default(),
            pids: Mutex::new(vec![None; n]),
        })
    }

    fn session(&self, i: usize) -> std::sync::MutexGuard<'_, Session> {
        self.sessions[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sh(&self, i: usize, script: &str) -> Result<CmdOutput> {
        run(&self.session(i), &format!("sh -c {}", quote(script)), None)
            .with_context(|| format!("{}: ssh command failed", self.hosts[i].describe))
    }

    fn digest(&self, local: &Path) -> Result<String> {
        if let Some(d) = self
            .digests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(local)
        {
            return Ok(d.clone());
        }
        let mut f = std::fs::File::open(local)
            .with_context(|| format!("cannot read {}", local.display()))?;
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h)?;
        let d = format!("{:x}", h.finalize());
        self.digests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(local.to_path_buf(), d.clone());
        Ok(d)
    }

    fn pid_file(&self, i: usize) -> String {
        format!("{}/node.pid", self.hosts[i].workdir)
    }

    /// The registry record of this run.
    pub fn record(&self) -> Record {
        Record {
            tag: self.tag.clone(),
            pid: std::process::id(),
            ssh: Some(self.config.clone()),
            ..Record::default()
        }
    }

    /// Stops host `i`'s daemon (by its pid file) and removes the run's remote directory.
    fn clean_host(&self, i: usize) -> Result<()> {
        let wd = &self.hosts[i].workdir;
        let script = format!(
            "if [ -f {pf} ]; then pid=$(cat {pf}); kill -CONT $pid 2>/dev/null; kill -9 $pid 2>/dev/null; \
             {wait}; fi; rm -rf {wd}",
            wait = wait_dead("$pid"),
            pf = quote(&self.pid_file(i)),
            wd = quote(wd)
        );
        self.sh(i, &script)?.ok(
            &self.hosts[i].describe,
            "stop the node and remove its directory",
        )?;
        Ok(())
    }

    /// Uploads `local` to host `i` unless the remote copy's sha256 already matches;
    /// returns the remote path.
    fn upload(&self, i: usize, local: &Path) -> Result<String> {
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .context("the binary has no file name")?;
        let bin = format!("{}/{}/bin", self.config.hosts[i].dir, self.hosts[i].node);
        let remote = format!("{bin}/{name}");
        let want = self.digest(local)?;
        let size = std::fs::metadata(local)?.len();
        // The digest is kept beside the binary at upload, so checking a 100 MB binary costs
        // a `cat`, not a hash; the size guards against a binary replaced by hand.
        let have = self.sh(
            i,
            &format!(
                "mkdir -p {b} && [ \"$(stat -c %s {r} 2>/dev/null)\" = {size} ] && cat {r}.sha256 2>/dev/null",
                b = quote(&bin),
                r = quote(&remote)
            ),
        )?;
        if have.stdout.trim() == want {
            return Ok(remote);
        }
        let tmp = format!("{remote}.upload");
        {
            let sess = self.session(i);
            let mut ch = sess
                .scp_send(Path::new(&tmp), 0o755, size, None)
                .with_context(|| format!("{}: cannot upload to {tmp}", self.hosts[i].describe))?;
            let mut f = std::fs::File::open(local)?;
            std::io::copy(&mut f, &mut ch).with_context(|| {
                format!(
                    "{}: upload of {} failed",
                    self.hosts[i].describe,
                    local.display()
                )
            })?;
            ch.send_eof()?;
            ch.wait_eof()?;
            ch.close()?;
            ch.wait_close()?;
        }
        self.sh(
            i,
            &format!(
                "chmod 755 {t} && [ \"$(sha256sum {t} | cut -d' ' -f1)\" = {want} ] && mv -f {t} {r} && echo {want} > {r}.sha256",
                t = quote(&tmp),
                r = quote(&remote)
            ),
        )?
        .ok(&self.hosts[i].describe, "install the binary")?;
        Ok(remote)
    }
}

impl Env for SshEnv {
    fn kind(&self) -> EnvKind {
        EnvKind::Ssh
    }

    fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    fn peer_addr(&self, _from: usize, to: usize) -> SocketAddr {
        self.hosts[to].peer_listen
    }

    fn exec(&self, i: usize, argv: &[&str], privileged: bool) -> Result<CmdOutput> {
        let mut cmd = command_line(argv);
        if privileged && self.config.hosts[i].sudo {
            cmd = format!("sudo -n {cmd}");
        }
        run(&self.session(i), &cmd, None)
            .with_context(|| format!("{}: ssh command failed", self.hosts[i].describe))
    }

    fn write_file(&self, i: usize, path: &str, contents: &[u8]) -> Result<()> {
        run(
            &self.session(i),
            &format!("cat > {}", quote(path)),
            Some(contents),
        )?
        .ok(&self.hosts[i].describe, &format!("write {path}"))?;
        Ok(())
    }

    fn install(&self, i: usize, local: &Path) -> Result<String> {
        let key = (i, local.to_path_buf());
        if let Some(r) = self
            .installed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(r.clone());
        }
        let remote = self.upload(i, local)?;
        self.installed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, remote.clone());
        Ok(remote)
    }

    fn start(&self, i: usize, spec: &DaemonSpec) -> Result<()> {
        let h = &self.hosts[i];
        let envs: Vec<String> = spec
            .env
            .iter()
            .map(|(k, v)| quote(&format!("{k}={v}")))
            .collect();
        let argv: Vec<&str> = std::iter::once(spec.program.as_str())
            .chain(spec.args.iter().map(String::as_str))
            .collect();
        let script = format!(
            "mkdir -p {data} && cd {wd} && (env {envs} setsid {cmd} >> {log} 2>&1 < /dev/null & echo $! > {pf}) && cat {pf}",
            data = quote(&h.data_dir()),
            wd = quote(&h.workdir),
            envs = envs.join(" "),
            cmd = command_line(&argv),
            log = quote(&h.log_path()),
            pf = quote(&self.pid_file(i)),
        );
        let out = self.sh(i, &script)?.ok(&h.describe, "start the node")?;
        let pid: u32 = out.stdout.trim().parse().with_context(|| {
            format!(
                "{}: no pid from the start script: {:?}",
                h.describe, out.stdout
            )
        })?;
        self.pids.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(pid);
        Ok(())
    }

    fn signal(&self, i: usize, sig: Signal) -> Result<()> {
        let Some(pid) = self.pid(i) else {
            return Ok(());
        };
        let name = sig.as_str().trim_start_matches("SIG");
        self.sh(i, &format!("kill -{name} {pid}"))?
            .ok(&self.hosts[i].describe, &format!("kill -{name}"))?;
        Ok(())
    }

    fn kill(&self, i: usize) -> Result<()> {
        let Some(pid) = self.pids.lock().unwrap_or_else(|p| p.into_inner())[i].take() else {
            return Ok(());
        };
        let script = format!(
            "kill -CONT {pid} 2>/dev/null; kill -9 {pid} 2>/dev/null; {wait}; rm -f {pf}; {gone}",
            wait = wait_dead(&pid.to_string()),
            gone = is_dead(&pid.to_string()),
            pf = quote(&self.pid_file(i))
        );
        self.sh(i, &script)?
            .ok(&self.hosts[i].describe, "kill -9 the node")?;
        Ok(())
    }

    fn pid(&self, i: usize) -> Option<u32> {
        self.pids.lock().unwrap_or_else(|p| p.into_inner())[i]
    }

    fn exited(&self, i: usize) -> bool {
        let Some(pid) = self.pid(i) else {
            return false;
        };
        self.sh(i, &is_dead(&pid.to_string()))
            .is_ok_and(|o| o.status == 0)
    }

    fn collect(&self, i: usize) -> Result<()> {
        let h = &self.hosts[i];
        let log = self.sh(
            i,
            &format!("cat {} 2>/dev/null; true", quote(&h.log_path())),
        )?;
        std::fs::write(h.local_dir.join("node.log"), log.stdout)?;
        let du = self.sh(
            i,
            &format!("du -sb {} 2>/dev/null | cut -f1", quote(&h.data_dir())),
        )?;
        std::fs::write(h.local_dir.join("data-bytes.txt"), du.stdout)?;
        Ok(())
    }

    fn teardown(&self) {
        let _ = for_each_host(self, |i| {
            if let Err(e) = self.clean_host(i) {
                eprintln!("faultline: teardown: {e:#}");
            }
            Ok(())
        });
        self.pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter_mut()
            .for_each(|p| *p = None);
        registry::remove(&self.tag);
    }
}

/// Builds the ssh environment on `config`'s hosts: connects, registers the run (so a
/// SIGKILLed run can be cleaned), uploads `faultline` (the clock and packet-delay helpers),
/// installs the iptables chains and the clock mechanism.
pub fn build(config: Hosts, run_dir: &Path, faultline: &Path) -> Result<Environment> {
    let started = std::time::Instant::now();
    clean_stale();
    let tag = super::run_tag();
    let modes: Vec<ClockMode> = config.hosts.iter().map(|h| h.clock).collect();
    if modes.iter().any(|m| *m != modes[0]) {
        bail!("--hosts: every host must use the same clock mode (system or faketime)");
    }
    let ssh = SshEnv::connect(&tag, config, run_dir)?;
    registry::save(&ssh.record())?;
    let lib = PathBuf::from(&ssh.config.hosts[0].faketime_lib);
    let env: Arc<dyn Env> = Arc::new(ssh);
    // The harness's own binary goes to every host: the clock helper and the packet-delay
    // helper live in it (and, for kvnode, the node itself).
    let exe = faultline.to_path_buf();
    let helpers: Vec<Mutex<String>> = (0..env.hosts().len()).map(|_| Mutex::default()).collect();
    for_each_host(&*env, |i| {
        *helpers[i].lock().unwrap_or_else(|p| p.into_inner()) = env.install(i, &exe)?;
        Ok(())
    })?;
    let helpers: Vec<String> = helpers
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect();
    let kernel = KernelNet::install(env.clone(), helpers.clone())?;
    let clock: Box<dyn ClockFaults> = match modes[0] {
        ClockMode::Faketime => Box::new(Faketime::new(env.clone(), lib)?),
        ClockMode::System => Box::new(SystemClock::new(env.clone(), helpers)),
    };
    Ok(Environment {
        started,
        env,
        net: Box::new(kernel),
        clock,
    })
}

/// Cleans the remote leftovers of every ssh run whose harness is gone: stops its daemons,
/// removes its directories, the FAULTLINE chain and netem, and resets system clocks.
/// Returns how many runs were cleaned.
pub fn clean_stale() -> usize {
    let stale: Vec<Record> = registry::all()
        .into_iter()
        .filter(|r| r.ssh.is_some() && !registry::owner_alive(r))
        .collect();
    let mut cleaned = 0;
    for r in stale {
        let Some(config) = r.ssh.clone() else {
            continue;
        };
        eprintln!(
            "faultline: removing leftovers of run {} on {} ssh host(s)",
            r.tag,
            config.hosts.len()
        );
        let system = config.hosts.iter().all(|h| h.clock == ClockMode::System);
        let tmp = std::env::temp_dir().join(format!("faultline-clean-{}", r.tag));
        let env = match SshEnv::connect(&r.tag, config, &tmp) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("faultline: cannot clean run {}: {e:#}", r.tag);
                continue;
            }
        };
        let _ = for_each_host(&env, |i| {
            let _ = env.exec(i, &["sh", "-c", &iptables::remove_script()], true);
            let _ = env.exec(i, &["sh", "-c", &nfqueue::remove_script(&env, i)], true);
            if let Ok(dev) = env
                .hosts
                .get((i + 1) % env.hosts.len())
                .map_or(Err(anyhow!("no peer")), |p| {
                    crate::inject::netem::interface(&env, i, p.peer_listen.ip())
                })
            {
                let _ = env.exec(
                    i,
                    &[
                        "sh",
                        "-c",
                        &format!("tc qdisc del dev {dev} root 2>/dev/null; true"),
                    ],
                    true,
                );
            }
            if system {
                let helper = format!(
                    "{}/{}/bin/faultline",
                    env.config.hosts[i].dir, env.hosts[i].node
                );
                let _ = env.exec(i, &[&helper, "clock", "offset", "--ms", "0"], true);
            }
            let _ = env.clean_host(i);
            Ok(())
        });
        let _ = std::fs::remove_dir_all(&tmp);
        registry::remove(&r.tag);
        cleaned += 1;
    }
    cleaned
}
