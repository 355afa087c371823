//! Partitions and packet faults in the local environment: every directed peer link `i -> j`
//! runs through a [`Proxy`] owned by the harness, so a cut or a delay needs no root.
//!
//! Node `i` is told to reach `j` at the proxy's address; the proxy forwards to `j`'s real
//! peer port. A grudge "`dst` drops traffic from `src`" cuts the proxy `src -> dst` in both
//! directions of its TCP connection, like a dropping firewall on `dst` would.

use super::proxy::Proxy;
use super::NetFaults;
use anyhow::{Context, Result};
use nemesis::Grudge;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The link proxies of a local cluster.
pub struct ProxyNet {
    ids: Vec<String>,
    /// `links[(i, j)]` carries i's traffic to j.
    links: BTreeMap<(usize, usize), Proxy>,
}

impl ProxyNet {
    /// Starts one proxy per directed link, forwarding to `peers[j]`.
    pub async fn start(ids: Vec<String>, peers: &[SocketAddr]) -> Result<ProxyNet> {
        let mut links = BTreeMap::new();
        for i in 0..peers.len() {
            for (j, peer) in peers.iter().enumerate() {
                if i != j {
                    let p = Proxy::start(*peer)
                        .await
                        .context("cannot start a link proxy")?;
                    links.insert((i, j), p);
                }
            }
        }
        Ok(ProxyNet { ids, links })
    }

    /// The address node `from` dials for node `to`.
    pub fn addr(&self, from: usize, to: usize) -> Option<SocketAddr> {
        self.links.get(&(from, to)).map(Proxy::addr)
    }

    /// The proxy carrying `from`'s traffic to `to`.
    pub fn link(&self, from: usize, to: usize) -> Option<&Proxy> {
        self.links.get(&(from, to))
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|n| n == id)
    }
}

impl NetFaults for ProxyNet {
    fn partition(&self, grudge: &Grudge) -> Result<()> {
        for p in self.links.values() {
            p.set_cut(false);
        }
        for (src, dst) in nemesis::partition::cut_links(grudge) {
            if let (Some(s), Some(d)) = (self.index(&src), self.index(&dst)) {
                if let Some(p) = self.links.get(&(s, d)) {
                    p.set_cut(true);
                }
            }
        }
        Ok(())
    }

    fn heal(&self) -> Result<()> {
        for p in self.links.values() {
            p.set_cut(false);
        }
        Ok(())
    }

    fn packet(&self, nodes: &[usize], delay_ms: u64, loss: f64) -> Result<()> {
        for ((a, b), p) in &self.links {
            let hit = nodes.contains(a) || nodes.contains(b);
            p.set_delay(if hit { delay_ms } else { 0 });
            p.set_loss(if hit { loss } else { 0.0 });
        }
        Ok(())
    }

    fn clear_packet(&self) -> Result<()> {
        for p in self.links.values() {
            p.set_delay(0);
            p.set_loss(0.0);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "userspace link proxies (partitions, delay, TCP-style stalls for loss)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_grudge_cuts_exactly_its_links_and_heal_restores_them() {
        let ids: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let targets: Vec<SocketAddr> = (0..3)
            .map(|_| cluster::ports::free_loopback_port().unwrap())
            .collect();
        let net = ProxyNet::start(ids.clone(), &targets).await.unwrap();
        net.partition(&nemesis::partition::isolate(&ids, "n2"))
            .unwrap();
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    let cut = net.link(i, j).unwrap().state().cut;
                    assert_eq!(cut, i == 1 || j == 1, "link {i}->{j}");
                }
            }
        }
        // A one-way grudge (n1 drops n3) cuts only n3 -> n1.
        let mut g = nemesis::Grudge::new();
        g.entry("n1".into()).or_default().insert("n3".into());
        net.partition(&g).unwrap();
        let cut: Vec<(usize, usize)> = (0..3)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .filter(|&(i, j)| i != j && net.link(i, j).unwrap().state().cut)
            .collect();
        assert_eq!(cut, vec![(2, 0)]);
        net.packet(&[0], 50, 0.1).unwrap();
        assert_eq!(net.link(0, 1).unwrap().state().delay_ms, 50);
        assert_eq!(net.link(1, 2).unwrap().state().delay_ms, 0);
        net.heal().unwrap();
        net.clear_packet().unwrap();
        assert!((0..3).all(|i| (0..3).filter(|&j| j != i).all(|j| net
            .link(i, j)
            .unwrap()
            .state()
            == Default::default())));
    }
}
