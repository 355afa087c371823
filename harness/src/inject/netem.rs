//! Packet faults with `tc netem` (real delay and real loss: TCP retransmits what is lost),
//! inside network namespaces and on SSH hosts and VMs.
//!
//! The qdisc goes on the egress of the interface that carries the node's peer traffic (found
//! with `ip route get` towards another node), so everything the node sends — to peers and
//! its replies to clients — is delayed or dropped, as on a congested link. Teardown deletes
//! the root qdisc it added; a host's own qdisc is only touched on the interface faultline
//! uses while a packet fault is active.

use crate::env::{for_each_host, Env};
use anyhow::{anyhow, Result};
use std::net::IpAddr;

/// The interface host `i` uses to reach `peer`.
pub fn interface(env: &dyn Env, i: usize, peer: IpAddr) -> Result<String> {
    let out = env
        .exec(i, &["ip", "-o", "route", "get", &peer.to_string()], true)?
        .ok(&env.hosts()[i].describe, "ip route get")?;
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "dev")
        .and_then(|p| words.get(p + 1))
        .map(|d| d.to_string())
        .ok_or_else(|| {
            anyhow!(
                "{}: cannot tell which interface reaches {peer} from `ip route get`: {}",
                env.hosts()[i].describe,
                out.stdout.trim()
            )
        })
}

/// Succeeds when host `i`'s kernel has tc netem (tries a zero delay and removes it).
pub fn probe(env: &dyn Env, i: usize, dev: &str) -> Result<()> {
    let script =
        format!("tc qdisc replace dev {dev} root netem delay 0ms && tc qdisc del dev {dev} root");
    env.exec(i, &["sh", "-c", &script], true)?
        .ok(&env.hosts()[i].describe, "tc netem")?;
    Ok(())
}

/// Sets netem on the hosts in `nodes` and removes it from the others.
pub fn apply(
    env: &dyn Env,
    devs: &[String],
    nodes: &[usize],
    delay_ms: u64,
    loss: f64,
) -> Result<()> {
    let loss_pct = (loss.clamp(0.0, 1.0) * 100.0 * 100.0).round() / 100.0;
    for_each_host(env, |i| {
        let dev = &devs[i];
        let script = if nodes.contains(&i) {
            format!("tc qdisc replace dev {dev} root netem delay {delay_ms}ms loss {loss_pct}%")
        } else {
            format!("tc qdisc del dev {dev} root 2>/dev/null; true")
        };
        env.exec(i, &["sh", "-c", &script], true)?
            .ok(&env.hosts()[i].describe, "tc netem")?;
        Ok(())
    })
}

/// Removes netem from every host.
pub fn clear(env: &dyn Env, devs: &[String]) -> Result<()> {
    for_each_host(env, |i| {
        let script = format!("tc qdisc del dev {} root 2>/dev/null; true", devs[i]);
        env.exec(i, &["sh", "-c", &script], true)?
            .ok(&env.hosts()[i].describe, "tc qdisc del")?;
        Ok(())
    })
}
