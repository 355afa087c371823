//! Partitions with iptables, on any host the harness can run a command on: inside network
//! namespaces (`--env netns`) and on SSH hosts and VMs (`--env ssh`). This is where a
//! partition is cut on a VM.
//!
//! Each host gets a chain of its own, `FAULTLINE`, jumped to from the top of `INPUT`; a grudge
//! "`dst` drops traffic from `src`" becomes `-A FAULTLINE -s <src's address> -j DROP` on
//! `dst` — a dropping firewall, like Jepsen's. The chain holds nothing else, so a new
//! partition flushes it and teardown removes exactly what was added (the jump, the rules, the
//! chain) and nothing of the host's own rules. Packets from the harness (clients, SSH) come
//! from other addresses and are never dropped.

use crate::env::{for_each_host, Env};
use anyhow::Result;
use nemesis::Grudge;
use std::net::IpAddr;

/// The chain faultline owns on every host.
pub const CHAIN: &str = "FAULTLINE";

/// Creates the chain and the jump on every host (idempotent).
pub fn install(env: &dyn Env) -> Result<()> {
    for_each_host(env, |i| {
        let script = format!(
            "iptables -w -N {CHAIN} 2>/dev/null; iptables -w -F {CHAIN} && \
             (iptables -w -C INPUT -j {CHAIN} 2>/dev/null || iptables -w -I INPUT 1 -j {CHAIN})"
        );
        run(env, i, &script, "install the FAULTLINE iptables chain")
    })
}

/// Applies `grudge` (replacing the current partition) given each node's address.
pub fn partition(env: &dyn Env, ips: &[IpAddr], grudge: &Grudge) -> Result<()> {
    let hosts = env.hosts();
    for_each_host(env, |i| {
        let mut script = format!("iptables -w -F {CHAIN}");
        if let Some(srcs) = grudge.get(&hosts[i].node) {
            for src in srcs {
                if let Some(j) = hosts.iter().position(|h| &h.node == src) {
                    script.push_str(&format!(" && iptables -w -A {CHAIN} -s {} -j DROP", ips[j]));
                }
            }
        }
        run(env, i, &script, "cut links with iptables")
    })
}

/// Flushes the chain on every host: every link heals.
pub fn heal(env: &dyn Env) -> Result<()> {
    for_each_host(env, |i| {
        run(env, i, &format!("iptables -w -F {CHAIN}"), "heal links")
    })
}

/// The shell line that removes the jump, the rules and the chain (teardown, `env clean`).
pub fn remove_script() -> String {
    format!(
        "while iptables -w -D INPUT -j {CHAIN} 2>/dev/null; do :; done; \
         iptables -w -F {CHAIN} 2>/dev/null; iptables -w -X {CHAIN} 2>/dev/null; true"
    )
}

/// Removes the chain from every host; problems are printed, not returned (teardown).
pub fn remove(env: &dyn Env) {
    let _ = for_each_host(env, |i| {
        if let Err(e) = run(env, i, &remove_script(), "remove the FAULTLINE chain") {
            eprintln!("faultline: teardown: {e:#}");
        }
        Ok(())
    });
}

fn run(env: &dyn Env, i: usize, script: &str, what: &str) -> Result<()> {
    env.exec(i, &["sh", "-c", script], true)?
        .ok(&env.hosts()[i].describe, what)?;
    Ok(())
}
