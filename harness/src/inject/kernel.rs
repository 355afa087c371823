//! [`NetFaults`] for environments with a real network stack per node (netns, ssh): partitions
//! by [`super::iptables`], packet faults by [`super::netem`].

use super::{iptables, netem, NetFaults};
use crate::env::Env;
use anyhow::Result;
use nemesis::Grudge;
use std::net::IpAddr;
use std::sync::Arc;

/// iptables + netem on every host.
pub struct KernelNet {
    env: Arc<dyn Env>,
    /// Each node's address, as its peers see it (the source address iptables matches).
    ips: Vec<IpAddr>,
    /// The interface carrying each node's peer traffic.
    devs: Vec<String>,
}

impl KernelNet {
    /// Finds each host's interface and installs the iptables chain.
    pub fn install(env: Arc<dyn Env>) -> Result<KernelNet> {
        let ips: Vec<IpAddr> = env.hosts().iter().map(|h| h.peer_listen.ip()).collect();
        let n = ips.len();
        let mut devs = Vec::with_capacity(n);
        for i in 0..n {
            // Any other node's address; a single node routes to itself over lo.
            let peer = ips[(i + 1) % n];
            devs.push(netem::interface(&*env, i, peer)?);
        }
        iptables::install(&*env)?;
        Ok(KernelNet { env, ips, devs })
    }

    /// Removes the chain and any netem qdisc (teardown).
    pub fn remove(&self) {
        iptables::remove(&*self.env);
        if let Err(e) = netem::clear(&*self.env, &self.devs) {
            eprintln!("faultline: teardown: {e:#}");
        }
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
        netem::apply(&*self.env, &self.devs, nodes, delay_ms, loss)
    }

    fn clear_packet(&self) -> Result<()> {
        netem::clear(&*self.env, &self.devs)
    }

    fn teardown(&self) {
        self.remove();
    }
}
