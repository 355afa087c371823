//! The test side of `harness::env::sshd_hosts`: real sshd hosts in namespaces (provisioned by
//! the Vagrant VMs' script), plus what the tests inspect on them afterwards.

#![allow(dead_code)]

use harness::env::sshd_hosts::SshdHosts;
use std::process::Command;

/// Where uploads go on the test hosts (shared by every test, so the binary is uploaded once).
pub const REMOTE_DIR: &str = "/tmp/faultline-ssh-test-hosts";

/// Running sshd hosts and their scratch directory.
pub struct SshHosts {
    /// The hosts.
    pub hosts: SshdHosts,
    /// Keys, configs, logs.
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for SshHosts {
    type Target = SshdHosts;
    fn deref(&self) -> &SshdHosts {
        &self.hosts
    }
}

impl SshHosts {
    /// Provisions this machine, creates `n` namespaces, starts sshd in each.
    pub fn start(n: usize) -> SshHosts {
        let dir = tempfile::Builder::new()
            .prefix("faultline-ssh-hosts-")
            .tempdir()
            .unwrap();
        let hosts = SshdHosts::start(n, dir.path(), REMOTE_DIR).unwrap();
        SshHosts { hosts, dir }
    }

    /// Processes running in the namespaces other than sshd.
    pub fn strays(&self) -> Vec<String> {
        let sshd = self.hosts.sshd_pids();
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
