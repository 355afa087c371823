//! SSH test hosts for real: N network namespaces (the netns environment's own network
//! builder), each running OpenSSH's sshd on its namespace address, provisioned by
//! `harness/scripts/provision.sh` — the script the Vagrant VMs run — so `--env ssh` is
//! exercised end to end in CI exactly as on VMs. The namespaces share this machine's kernel
//! clock, so the hosts file selects libfaketime for clock faults.
//!
//! Traffic goes only to addresses inside the namespaces this helper created.

#![allow(dead_code)]

use harness::env::netns::NsNetwork;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where uploads go on the test hosts (shared by every test, so the binary is uploaded once).
pub const REMOTE_DIR: &str = "/tmp/faultline-ssh-test-hosts";

/// Running sshd hosts; dropped = sshd killed, namespaces removed.
pub struct SshHosts {
    /// The namespaces.
    pub net: NsNetwork,
    sshd: Vec<Child>,
    /// Keys, configs, logs.
    pub dir: tempfile::TempDir,
    /// The hosts file for `faultline test --env ssh --hosts`.
    pub hosts_file: PathBuf,
    /// The known_hosts file the hosts file names.
    pub known_hosts: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl SshHosts {
    /// Provisions this machine (idempotent), creates `n` namespaces and starts sshd in each.
    pub fn start(n: usize) -> SshHosts {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/provision.sh");
        run(Command::new("sh").arg(&script));
        let dir = tempfile::Builder::new()
            .prefix("faultline-ssh-hosts-")
            .tempdir()
            .unwrap();
        // sshd reads AuthorizedKeysFile as the login user: the directory must be readable.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let key = dir.path().join("id_ed25519");
        let host_key = dir.path().join("host_ed25519");
        for k in [&key, &host_key] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(k));
        }
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(key.with_extension("pub"), &authorized).unwrap();
        std::fs::set_permissions(
            &authorized,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let tag = format!("t{:x}", rand::random::<u32>() & 0xfffffff);
        let net = NsNetwork::create(&tag, n).unwrap();
        let mut sshd = Vec::new();
        for k in 0..n {
            let ip = net.node_ip(k);
            let log =
                std::fs::File::create(dir.path().join(format!("sshd-n{}.log", k + 1))).unwrap();
            let mut cmd = Command::new("ip");
            cmd.args([
                "netns",
                "exec",
                &net.namespaces[k],
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
                "/dev/null",
            ])
            .arg("-o")
            .arg(format!("ListenAddress={ip}:22"))
            .arg("-o")
            .arg(format!("HostKey={}", host_key.display()))
            .arg("-o")
            .arg(format!("AuthorizedKeysFile={}", authorized.display()))
            .args([
                "-o",
                "StrictModes=no",
                "-o",
                "UsePAM=no",
                "-o",
                "PasswordAuthentication=no",
            ])
            .args([
                "-o",
                "KbdInteractiveAuthentication=no",
                "-o",
                "PidFile=none",
            ])
            .args(["-o", "PermitRootLogin=no", "-o", "MaxStartups=100"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
            // SAFETY: prctl only sets a flag on the child.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            sshd.push(cmd.spawn().unwrap());
        }
        for k in 0..n {
            let addr = SocketAddr::new(net.node_ip(k).into(), 22);
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(Instant::now() < deadline, "sshd on {addr} did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let known_hosts = dir.path().join("known_hosts");
        let mut toml = format!(
            "user = \"faultline\"\nkey = \"{}\"\nsudo = true\nclock = \"faketime\"\ndir = \"{REMOTE_DIR}\"\nknown_hosts = \"{}\"\n",
            key.display(),
            known_hosts.display()
        );
        for k in 0..n {
            toml.push_str(&format!("\n[[host]]\naddress = \"{}\"\n", net.node_ip(k)));
        }
        let hosts_file = dir.path().join("hosts.toml");
        std::fs::write(&hosts_file, toml).unwrap();
        SshHosts {
            net,
            sshd,
            dir,
            hosts_file,
            known_hosts,
        }
    }

    /// Processes running in the namespaces other than sshd.
    pub fn strays(&self) -> Vec<String> {
        let sshd: Vec<u32> = self.sshd.iter().map(Child::id).collect();
        let mut out = Vec::new();
        for ns in &self.net.namespaces {
            let o = Command::new("ip")
                .args(["netns", "pids", ns])
                .output()
                .unwrap();
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let Ok(p) = pid.parse::<u32>() else { continue };
                if sshd.contains(&p) {
                    continue;
                }
                let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                // sshd's per-connection children are not ours to judge.
                if !cmd.is_empty() && !cmd.starts_with("sshd") {
                    out.push(format!("{ns}: {p} {cmd}"));
                }
            }
        }
        out
    }

    /// iptables rules and qdiscs faultline added, in any namespace.
    pub fn rules_left(&self) -> Vec<String> {
        let mut out = Vec::new();
        for ns in &self.net.namespaces {
            let o = Command::new("ip")
                .args(["netns", "exec", ns, "iptables", "-w", "-S"])
                .output()
                .unwrap();
            for l in String::from_utf8_lossy(&o.stdout).lines() {
                if l.contains("FAULTLINE") {
                    out.push(format!("{ns}: {l}"));
                }
            }
            let o = Command::new("ip")
                .args(["netns", "exec", ns, "tc", "qdisc", "show", "dev", "eth0"])
                .output()
                .unwrap();
            for l in String::from_utf8_lossy(&o.stdout).lines() {
                if l.contains("netem") {
                    out.push(format!("{ns}: {l}"));
                }
            }
        }
        out
    }
}

impl Drop for SshHosts {
    fn drop(&mut self) {
        for c in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.net.destroy();
    }
}
