//! Where the SSH hosts are and how to log in: `--hosts hosts.toml`, or `--vagrant [DIR]`,
//! which asks `vagrant ssh-config` and needs nothing else.
//!
//! ```toml
//! # Defaults for every host (each may be overridden per host).
//! user = "faultline"          # login user
//! key = "~/.ssh/id_ed25519"   # private key; or agent = true
//! sudo = true                 # privileged commands through `sudo -n` (false: the user is root)
//! clock = "system"            # clock faults: "system" (the host's own clock) or "faketime"
//! dir = "/tmp/faultline"      # where binaries, data and logs go on the host
//! peer_port = 7000            # the node's peer port
//! client_port = 8000          # the node's client (HTTP) port
//!
//! [[host]]
//! address = "192.168.56.11"   # the node's address: peers and (by default) the harness use it
//! ssh = "127.0.0.1:2222"      # optional, default address:22
//! client = "127.0.0.1:18081"  # optional: how the harness reaches the client port
//! ```
//!
//! Host keys are checked against `known_hosts` (default `~/.ssh/known_hosts`) unless
//! `--accept-new-host-keys` is given, which adds unknown ones (never changed ones).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// How a host's clock faults are injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockMode {
    /// The host's own system clock (VMs, machines): `faultline clock` with clock_settime.
    System,
    /// libfaketime (hosts that share one kernel clock, like sshd in network namespaces).
    Faketime,
}

/// One host, fully resolved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostConfig {
    /// Node id it runs.
    pub name: String,
    /// The node's address (peers dial it; iptables matches it).
    pub address: IpAddr,
    /// SSH endpoint.
    pub ssh: SocketAddr,
    /// How the harness reaches the node's client port.
    pub client: SocketAddr,
    /// Login user.
    pub user: String,
    /// Private key file; `None` = ssh-agent.
    pub key: Option<PathBuf>,
    /// Privileged commands through `sudo -n`.
    pub sudo: bool,
    /// Clock mechanism.
    pub clock: ClockMode,
    /// Base directory on the host.
    pub dir: String,
    /// libfaketime on the host (faketime clock mode).
    pub faketime_lib: String,
    /// Peer port.
    pub peer_port: u16,
    /// Client port.
    pub client_port: u16,
}

/// The hosts file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(flatten)]
    defaults: Options,
    #[serde(default)]
    host: Vec<Entry>,
    #[serde(default)]
    known_hosts: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    user: Option<String>,
    key: Option<PathBuf>,
    agent: Option<bool>,
    sudo: Option<bool>,
    clock: Option<ClockMode>,
    dir: Option<String>,
    faketime_lib: Option<String>,
    peer_port: Option<u16>,
    client_port: Option<u16>,
}

impl Options {
    /// These options, with `defaults` filling what is unset.
    fn over(&self, d: &Options) -> Options {
        Options {
            user: self.user.clone().or_else(|| d.user.clone()),
            key: self.key.clone().or_else(|| d.key.clone()),
            agent: self.agent.or(d.agent),
            sudo: self.sudo.or(d.sudo),
            clock: self.clock.or(d.clock),
            dir: self.dir.clone().or_else(|| d.dir.clone()),
            faketime_lib: self.faketime_lib.clone().or_else(|| d.faketime_lib.clone()),
            peer_port: self.peer_port.or(d.peer_port),
            client_port: self.client_port.or(d.client_port),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Option<String>,
    address: String,
    ssh: Option<String>,
    client: Option<String>,
    #[serde(flatten)]
    options: Options,
}

/// The hosts of a run and where their keys are checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hosts {
    /// One per node.
    pub hosts: Vec<HostConfig>,
    /// known_hosts file.
    pub known_hosts: PathBuf,
    /// Add unknown host keys instead of refusing them.
    pub accept_new: bool,
}

fn expand(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        Err(_) => p.to_path_buf(),
    }
}

fn default_known_hosts() -> PathBuf {
    expand(Path::new("~/.ssh/known_hosts"))
}

fn resolve(what: &str, s: &str, default_port: u16) -> Result<SocketAddr> {
    let with_port = if s.parse::<IpAddr>().is_ok() || !s.contains(':') {
        format!("{s}:{default_port}")
    } else {
        s.to_string()
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("{what} {s:?}: cannot resolve (DNS)"))?
        .next()
        .with_context(|| format!("{what} {s:?}: no address"))
}

impl Hosts {
    /// Reads a hosts file; errors name the file and the field.
    pub fn load(path: &Path, accept_new: bool) -> Result<Hosts> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--hosts {}: cannot read", path.display()))?;
        let file: File = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("--hosts {}: {e}", path.display()))?;
        if file.host.is_empty() {
            bail!("--hosts {}: no [[host]] entries", path.display());
        }
        let mut hosts = Vec::new();
        for (k, e) in file.host.iter().enumerate() {
            let o = e.options.over(&file.defaults);
            let name = e.name.clone().unwrap_or_else(|| format!("n{}", k + 1));
            let at = format!("--hosts {} host {name}", path.display());
            let address: IpAddr = resolve(&format!("{at}: address"), &e.address, 0)?.ip();
            let peer_port = o.peer_port.unwrap_or(7000);
            let client_port = o.client_port.unwrap_or(8000);
            let agent = o.agent.unwrap_or(false);
            let key = if agent {
                None
            } else {
                Some(expand(&o.key.clone().with_context(|| {
                    format!("{at}: no `key` (a private key file) and `agent = true` is not set")
                })?))
            };
            hosts.push(HostConfig {
                ssh: resolve(
                    &format!("{at}: ssh"),
                    e.ssh.as_deref().unwrap_or(&e.address),
                    22,
                )?,
                client: match &e.client {
                    Some(c) => resolve(&format!("{at}: client"), c, client_port)?,
                    None => SocketAddr::new(address, client_port),
                },
                name,
                address,
                user: o.user.clone().unwrap_or_else(|| "faultline".into()),
                key,
                sudo: o.sudo.unwrap_or(true),
                clock: o.clock.unwrap_or(ClockMode::System),
                dir: o.dir.clone().unwrap_or_else(|| "/tmp/faultline".into()),
                faketime_lib: o.faketime_lib.clone().unwrap_or_else(|| {
                    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1".into()
                }),
                peer_port,
                client_port,
            });
        }
        let mut names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            bail!("--hosts {}: host names must be unique", path.display());
        }
        Ok(Hosts {
            hosts,
            known_hosts: file
                .known_hosts
                .map(|p| expand(&p))
                .unwrap_or_else(default_known_hosts),
            accept_new,
        })
    }

    /// Asks `vagrant ssh-config` in `dir` for every running machine. Each node's address is
    /// the one it has on the private network, which `vagrant ssh-config` does not print: it is
    /// looked up on the machine when the environment connects (see `ssh::discover_address`).
    /// Vagrant's machines get throw-away host keys, so they are accepted into a known_hosts
    /// file of the project's own (`DIR/.vagrant/faultline_known_hosts`).
    pub fn vagrant(dir: &Path) -> Result<Hosts> {
        let out = std::process::Command::new("vagrant")
            .arg("ssh-config")
            .current_dir(dir)
            .output()
            .with_context(|| {
                "--vagrant: cannot run `vagrant ssh-config` (is vagrant installed? apt-get install -y vagrant)"
            })?;
        if !out.status.success() {
            bail!(
                "--vagrant: `vagrant ssh-config` in {} failed (run `vagrant up` first): {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let hosts = parse_ssh_config(&String::from_utf8_lossy(&out.stdout))?;
        Ok(Hosts {
            hosts,
            known_hosts: dir.join(".vagrant/faultline_known_hosts"),
            accept_new: true,
        })
    }
}

/// Parses `vagrant ssh-config` output (Host / HostName / Port / User / IdentityFile blocks).
/// The node address is left unspecified (0.0.0.0) until discovered on the machine.
pub fn parse_ssh_config(text: &str) -> Result<Vec<HostConfig>> {
    let mut hosts: Vec<HostConfig> = Vec::new();
    let mut cur: Option<(String, String, u16, String, Option<PathBuf>)> = None;
    let mut flush =
        |cur: &mut Option<(String, String, u16, String, Option<PathBuf>)>| -> Result<()> {
            if let Some((name, hostname, port, user, key)) = cur.take() {
                let ssh = resolve(
                    &format!("vagrant host {name}"),
                    &format!("{hostname}:{port}"),
                    port,
                )?;
                hosts.push(HostConfig {
                    name: format!("n{}", hosts.len() + 1),
                    address: IpAddr::from([0, 0, 0, 0]),
                    ssh,
                    client: ssh,
                    user,
                    key,
                    sudo: true,
                    clock: ClockMode::System,
                    dir: "/tmp/faultline".into(),
                    faketime_lib: "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1".into(),
                    peer_port: 7000,
                    client_port: 8000,
                });
            }
            Ok(())
        };
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(k), Some(v)) = (words.next(), words.next()) else {
            continue;
        };
        match k {
            "Host" => {
                flush(&mut cur)?;
                cur = Some((v.to_string(), String::new(), 22, "vagrant".into(), None));
            }
            "HostName" => {
                if let Some(c) = cur.as_mut() {
                    c.1 = v.to_string();
                }
            }
            "Port" => {
                if let Some(c) = cur.as_mut() {
                    c.2 = v
                        .parse()
                        .with_context(|| format!("vagrant ssh-config: bad Port {v}"))?;
                }
            }
            "User" => {
                if let Some(c) = cur.as_mut() {
                    c.3 = v.to_string();
                }
            }
            "IdentityFile" => {
                if let Some(c) = cur.as_mut() {
                    c.4 = Some(PathBuf::from(v.trim_matches('"')));
                }
            }
            _ => {}
        }
    }
    flush(&mut cur)?;
    if hosts.is_empty() {
        bail!("--vagrant: `vagrant ssh-config` listed no machines (run `vagrant up`)");
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_defaults_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts.toml");
        std::fs::write(
            &p,
            r#"
user = "u"
key = "/k"
clock = "faketime"
[[host]]
address = "127.0.0.2"
[[host]]
name = "db2"
address = "127.0.0.3"
ssh = "127.0.0.1:2202"
client = "127.0.0.1:18000"
sudo = false
"#,
        )
        .unwrap();
        let h = Hosts::load(&p, false).unwrap();
        assert_eq!(h.hosts.len(), 2);
        assert_eq!(h.hosts[0].name, "n1");
        assert_eq!(h.hosts[0].ssh.to_string(), "127.0.0.2:22");
        assert_eq!(h.hosts[0].client.to_string(), "127.0.0.2:8000");
        assert_eq!(h.hosts[1].name, "db2");
        assert!(!h.hosts[1].sudo && h.hosts[0].sudo);
        assert_eq!(h.hosts[1].client.to_string(), "127.0.0.1:18000");
        assert_eq!(h.hosts[0].clock, ClockMode::Faketime);
        std::fs::write(&p, "[[host]]\naddress = \"127.0.0.2\"\nbogus = 1\n").unwrap();
        let e = Hosts::load(&p, false).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        std::fs::write(&p, "[[host]]\naddress = \"127.0.0.2\"\n").unwrap();
        let e = format!("{:#}", Hosts::load(&p, false).unwrap_err());
        assert!(e.contains("key"), "{e}");
    }

    #[test]
    fn parses_vagrant_ssh_config() {
        let text = "Host n1\n  HostName 127.0.0.1\n  User vagrant\n  Port 2222\n  IdentityFile \"/v/.vagrant/machines/n1/virtualbox/private_key\"\n\nHost n2\n  HostName 127.0.0.1\n  User vagrant\n  Port 2200\n  IdentityFile /v/k2\n";
        let h = parse_ssh_config(text).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].ssh.to_string(), "127.0.0.1:2222");
        assert_eq!(h[1].ssh.port(), 2200);
        assert_eq!(h[1].key.as_deref(), Some(Path::new("/v/k2")));
    }
}
