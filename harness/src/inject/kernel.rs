//! [`NetFaults`] for environments with a real network stack per node (netns, ssh): partitions
//! by [`super::iptables`]; packet faults by [`super::netem`] where the kernel has tc netem,
//! else by [`super::nfqueue`] (iptables loss + NFQUEUE delay), decided once per run by
//! trying netem on every host.

use super::{iptables, netem, nfqueue, NetFaults};
use crate::env::{for_each_host, Env};
use anyhow::Result;
use nemesis::Grudge;
use std::net::IpAddr;
use std::sync::Arc;

/// How packet faults are made on these hosts.
#[derive(Debug, Clone)]
pub enum PacketFaults {
    /// tc netem on each host's interface.
    Netem {
        /// The interface carrying each node's peer traffic.
        devs: Vec<String>,
    },
    /// iptables statistic loss and NFQUEUE delay through `faultline netdelay`.
    Nfqueue {
        /// The faultline binary on each host.
        helpers: Vec<String>,
    },
}

/// iptables + (netem or NFQUEUE) on every host.
pub struct KernelNet {
    env: Arc<dyn Env>,
    /// Each node's address, as its peers see it (the source address iptables matches).
    ips: Vec<IpAddr>,
    packet: PacketFaults,
}

impl KernelNet {
    /// Installs the iptables chains and picks the packet-fault mechanism. `helpers[i]` is the
    /// faultline binary on host `i` (for the NFQUEUE delay helper).
    pub fn install(env: Arc<dyn Env>, helpers: Vec<String>) -> Result<KernelNet> {
        let ips: Vec<IpAddr> = env.hosts().iter().map(|h| h.peer_listen.ip()).collect();
        let n = ips.len();
        let mut devs = Vec::with_capacity(n);
        for i in 0..n {
            // Any other node's address; a single node routes to itself over lo.
            let peer = ips[(i + 1) % n];
            devs.push(netem::interface(&*env, i, peer)?);
        }
        iptables::install(&*env)?;
        let netem_everywhere = for_each_host(&*env, |i| netem::probe(&*env, i, &devs[i])).is_ok();
        let packet = if netem_everywhere {
            PacketFaults::Netem { devs }
        } else {
            nfqueue::install(&*env)?;
            PacketFaults::Nfqueue { helpers }
        };
        Ok(KernelNet { env, ips, packet })
    }

    /// The packet-fault mechanism in use.
    pub fn packet_faults(&self) -> &PacketFaults {
        &self.packet
    }
}

impl NetFaults for KernelNet {
    fn partition(&self, grudge: &Grudge) -> Result<()> {
        iptables::partition(&*self.env, &self.ips, grudge)
    }

    fn heal(&self) -> Result<()> {
        iptables::heal(&*self.env)
    }

    fn packet(&self, nodes: &[usize], delay_ms: u64, loss: f64) -> Result<()> {
        match &self.packet {
            PacketFaults::Netem { devs } => netem::apply(&*self.env, devs, nodes, delay_ms, loss),
            PacketFaults::Nfqueue { helpers } => {
                nfqueue::apply(&*self.env, helpers, nodes, delay_ms, loss)
            }
        }
    }

    fn clear_packet(&self) -> Result<()> {
        match &self.packet {
            PacketFaults::Netem { devs } => netem::clear(&*self.env, devs),
            PacketFaults::Nfqueue { .. } => nfqueue::clear(&*self.env),
        }
    }

    fn describe(&self) -> String {
        match &self.packet {
            PacketFaults::Netem { .. } => "iptables partitions, tc netem packet faults".into(),
            PacketFaults::Nfqueue { .. } => "iptables partitions; packet faults by iptables \
                statistic loss and NFQUEUE delay (this kernel has no tc netem)"
                .into(),
        }
    }

    fn teardown(&self) {
        iptables::remove(&*self.env);
        match &self.packet {
            PacketFaults::Netem { devs } => {
                if let Err(e) = netem::clear(&*self.env, devs) {
                    eprintln!("faultline: teardown: {e:#}");
                }
            }
            PacketFaults::Nfqueue { .. } => nfqueue::remove(&*self.env),
        }
    }
}
