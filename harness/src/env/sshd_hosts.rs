//! SSH hosts on this machine, for real: N network namespaces (the netns environment's network
//! builder), each running OpenSSH's sshd on its namespace address, this machine provisioned by
//! `harness/scripts/provision.sh` — the script the Vagrant VMs run. CI tests `--env ssh`
//! against them, and `faultline env hosts` gives a person the same hosts to try the ssh
//! environment without VMs. The namespaces share this machine's kernel clock, so the hosts
//! file they come with selects libfaketime for clock faults.
//!
//! Traffic goes only to addresses inside the namespaces this module created.

use super::netns::NsNetwork;
use super::procs::Children;
use super::DaemonSpec;
use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The provisioning script, embedded so the binary can prepare hosts wherever it runs.
pub const PROVISION_SH: &str = include_str!("../../scripts/provision.sh");

/// Running sshd hosts; dropped = sshd killed, namespaces removed.
pub struct SshdHosts {
    /// The namespaces.
    pub net: NsNetwork,
    sshd: Children,
    /// The hosts file for `faultline test --env ssh --hosts`.
    pub hosts_file: PathBuf,
    /// The known_hosts file the hosts file names (empty at first).
    pub known_hosts: PathBuf,
    /// The directory holding keys, configs and sshd logs.
    pub dir: PathBuf,
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl SshdHosts {
    /// Provisions this machine (idempotent), creates `n` namespaces and starts sshd in each;
    /// keys, configs and logs go to `dir`, uploads on the hosts to `remote_dir`.
    pub fn start(n: usize, dir: &Path, remote_dir: &str) -> Result<SshdHosts> {
        let sshd_bin = Path::new("/usr/sbin/sshd");
        if !sshd_bin.is_file() {
            bail!("sshd is not installed (apt-get install -y openssh-server)");
        }
        std::fs::create_dir_all(dir)?;
        let script = dir.join("provision.sh");
        std::fs::write(&script, PROVISION_SH)?;
        run(Command::new("sh").arg(&script))?;
        // sshd reads AuthorizedKeysFile as the login user: the directory must be readable.
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let key = dir.join("id_ed25519");
        let host_key = dir.join("host_ed25519");
        for k in [&key, &host_key] {
            let _ = std::fs::remove_file(k);
            let _ = std::fs::remove_file(k.with_extension("pub"));
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(k))?;
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(key.with_extension("pub"), &authorized)?;
        std::fs::set_permissions(
            &authorized,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )?;
        std::fs::create_dir_all("/run/sshd")?;
        let tag = format!("h{:x}", rand::random::<u32>() & 0xfffffff);
        let net = NsNetwork::create(&tag, n)?;
        let sshd = Children::default();
        for k in 0..n {
            let ip = net.node_ip(k);
            let spec = DaemonSpec {
                program: sshd_bin.display().to_string(),
                args: [
                    "-D".to_string(),
                    "-e".into(),
                    "-f".into(),
                    "/dev/null".into(),
                    "-o".into(),
                    format!("ListenAddress={ip}:22"),
                    "-o".into(),
                    format!("HostKey={}", host_key.display()),
                    "-o".into(),
                    format!("AuthorizedKeysFile={}", authorized.display()),
                ]
                .into_iter()
                .chain(
                    [
                        "StrictModes=no",
                        "UsePAM=no",
                        "PasswordAuthentication=no",
                        "KbdInteractiveAuthentication=no",
                        "PidFile=none",
                        "PermitRootLogin=no",
                        "MaxStartups=100",
                    ]
                    .iter()
                    .flat_map(|o| ["-o".to_string(), o.to_string()]),
                )
                .collect(),
                env: Vec::new(),
            };
            let log = dir.join(format!("sshd-n{}.log", k + 1));
            sshd.spawn(k, &net.exec_prefix(k), &spec, &log)?;
        }
        for k in 0..n {
            let addr = SocketAddr::new(net.node_ip(k).into(), 22);
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if Instant::now() > deadline {
                    bail!(
                        "sshd on {addr} did not start (see {}/sshd-n{}.log)",
                        dir.display(),
                        k + 1
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let known_hosts = dir.join("known_hosts");
        let mut toml = format!(
            "# sshd in network namespaces on this machine (faultline env hosts); one kernel clock,\n\
             # so clock faults use libfaketime.\n\
             user = \"faultline\"\nkey = \"{}\"\nsudo = true\nclock = \"faketime\"\ndir = \"{remote_dir}\"\nknown_hosts = \"{}\"\n",
            key.display(),
            known_hosts.display()
        );
        for k in 0..n {
            toml.push_str(&format!("\n[[host]]\naddress = \"{}\"\n", net.node_ip(k)));
        }
        let hosts_file = dir.join("hosts.toml");
        std::fs::write(&hosts_file, toml)?;
        Ok(SshdHosts {
            net,
            sshd,
            hosts_file,
            known_hosts,
            dir: dir.to_path_buf(),
        })
    }

    /// Pids of the sshd daemons.
    pub fn sshd_pids(&self) -> Vec<u32> {
        self.sshd.pids()
    }
}

impl Drop for SshdHosts {
    fn drop(&mut self) {
        self.sshd.kill_all();
        self.net.destroy();
    }
}
