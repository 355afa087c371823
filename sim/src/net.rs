//! The simulated peer network: one directed link per ordered pair of nodes, each with its
//! own seeded random stream, so the k-th message on a link meets the same fate whatever
//! happens elsewhere (shrinking a counterexample then perturbs as little as possible).
//!
//! A message is dropped when its link is cut (a partition's grudge: `dst` drops traffic
//! from `src`) when it is sent or when it would arrive, or with the link's loss
//! probability; otherwise it arrives after a delay drawn from [`NetModel`], plus the added
//! delay and loss of a packet fault on either end. Links are FIFO like the TCP connections
//! kvnode uses, except that a message may, rarely, be reordered past earlier ones or
//! duplicated: the engines must tolerate both (they are specified for lossy, reordering
//! networks), and a simulation should not prove less than the protocol promises.

use crate::queue::{Nanos, MS};
use nemesis::Grudge;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Delay and misbehaviour of every link without faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetModel {
    /// Smallest one-way delay, µs.
    pub min_delay_us: u64,
    /// Mean of the exponentially distributed delay on top of the minimum, µs.
    pub mean_extra_us: u64,
    /// Probability that a message hits a slow path (a scheduler hiccup, a retransmission).
    pub tail_probability: f64,
    /// The slow path adds up to this much, ms (uniform).
    pub tail_max_ms: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message may overtake earlier ones on its link.
    pub reorder: f64,
    /// One-way delay between a client and a node, µs (clients are never partitioned, as in
    /// the local environment, where they reach nodes directly, not through the proxies).
    pub client_delay_us: u64,
}

impl Default for NetModel {
    fn default() -> Self {
        NetModel {
            min_delay_us: 100,
            mean_extra_us: 400,
            tail_probability: 0.01,
            tail_max_ms: 20,
            loss: 0.001,
            duplicate: 0.001,
            reorder: 0.01,
            client_delay_us: 150,
        }
    }
}

impl NetModel {
    /// Checks the probabilities.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("tail_probability", self.tail_probability),
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("net.{name} = {p} is not a probability in [0, 1]"));
            }
        }
        if self.mean_extra_us > 10_000_000 || self.min_delay_us > 10_000_000 {
            return Err("net delays above 10 s make no sense".into());
        }
        Ok(())
    }
}

struct Link {
    rng: ChaCha8Rng,
    /// Latest arrival scheduled so far (FIFO order).
    last_arrival: Nanos,
    cut: bool,
}

/// The added delay and loss of an active packet fault on one node's links.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct PacketFault {
    delay_ms: u64,
    loss: f64,
}

/// Every link of the cluster.
pub struct Network {
    model: NetModel,
    n: usize,
    links: Vec<Link>,
    packet: Vec<Option<PacketFault>>,
}

impl Network {
    /// `n` nodes, links seeded from `seed`.
    pub fn new(model: NetModel, n: usize, seed: u64) -> Network {
        let links = (0..n * n)
            .map(|i| Link {
                rng: ChaCha8Rng::seed_from_u64(
                    seed ^ 0x6e65_7477_6f72_6b00 ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ),
                last_arrival: 0,
                cut: false,
            })
            .collect();
        Network {
            model,
            n,
            links,
            packet: vec![None; n],
        }
    }

    /// True when `dst` drops traffic from `src`.
    pub fn is_cut(&self, src: usize, dst: usize) -> bool {
        self.links[src * self.n + dst].cut
    }

    /// Replaces every cut by the grudge's (`ids` names the node indices).
    pub fn set_grudge(&mut self, ids: &[String], grudge: &Grudge) {
        for l in &mut self.links {
            l.cut = false;
        }
        let index = |id: &str| ids.iter().position(|x| x == id);
        for (dst, srcs) in grudge {
            let Some(d) = index(dst) else { continue };
            for src in srcs {
                if let Some(s) = index(src) {
                    self.links[s * self.n + d].cut = true;
                }
            }
        }
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        self.set_grudge(&[], &Grudge::new());
    }

    /// Adds delay and loss to every link into and out of `nodes`.
    pub fn set_packet(&mut self, nodes: &[usize], delay_ms: u64, loss: f64) {
        for &i in nodes {
            if let Some(p) = self.packet.get_mut(i) {
                *p = Some(PacketFault {
                    delay_ms,
                    loss: loss.clamp(0.0, 1.0),
                });
            }
        }
    }

    /// Removes every packet fault.
    pub fn clear_packet(&mut self) {
        self.packet.iter_mut().for_each(|p| *p = None);
    }

    /// Sends one message from `src` to `dst` at `now`; returns when its copies arrive (none
    /// when it is dropped).
    pub fn transmit(&mut self, src: usize, dst: usize, now: Nanos) -> Vec<Nanos> {
        let fault = self.packet[src].or(self.packet[dst]);
        let m = &self.model;
        let link = &mut self.links[src * self.n + dst];
        if link.cut {
            return Vec::new();
        }
        let loss = 1.0 - (1.0 - m.loss) * (1.0 - fault.map_or(0.0, |f| f.loss));
        if loss > 0.0 && link.rng.gen_bool(loss.min(1.0)) {
            return Vec::new();
        }
        let copies = if m.duplicate > 0.0 && link.rng.gen_bool(m.duplicate) {
            2
        } else {
            1
        };
        let mut out = Vec::with_capacity(copies);
        for _ in 0..copies {
            let mut delay =
                m.min_delay_us * 1_000 + exponential(&mut link.rng, m.mean_extra_us * 1_000);
            if m.tail_probability > 0.0 && link.rng.gen_bool(m.tail_probability) {
                delay += link.rng.gen_range(0..=m.tail_max_ms * MS);
            }
            delay += fault.map_or(0, |f| f.delay_ms * MS);
            let mut at = now + delay;
            let reorder = m.reorder > 0.0 && link.rng.gen_bool(m.reorder);
            if !reorder {
                at = at.max(link.last_arrival);
            }
            link.last_arrival = link.last_arrival.max(at);
            out.push(at);
        }
        out
    }

    /// One-way delay between a client and a node.
    pub fn client_delay(&self) -> Nanos {
        self.model.client_delay_us * 1_000
    }
}

/// An exponentially distributed duration with the given mean, in whole nanoseconds.
fn exponential(rng: &mut ChaCha8Rng, mean: u64) -> u64 {
    if mean == 0 {
        return 0;
    }
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let x = -u.ln() * mean as f64;
    x.min(mean as f64 * 50.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn fifo_cut_and_packet_faults() {
        let model = NetModel {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            ..NetModel::default()
        };
        let mut net = Network::new(model, 3, 1);
        let mut last = 0;
        for i in 0..100 {
            let a = net.transmit(0, 1, i * 1000);
            assert_eq!(a.len(), 1);
            assert!(a[0] >= last, "FIFO");
            last = a[0];
        }
        let ids: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let mut g = Grudge::new();
        g.insert("n2".into(), BTreeSet::from(["n1".to_string()]));
        net.set_grudge(&ids, &g);
        assert!(net.transmit(0, 1, 0).is_empty(), "n2 drops n1");
        assert_eq!(net.transmit(1, 0, 0).len(), 1, "one-way");
        net.heal();
        net.set_packet(&[2], 100, 0.0);
        assert!(net.transmit(0, 2, 0)[0] >= 100 * MS);
        net.clear_packet();
        // A fresh link: on 0 -> 2 FIFO keeps later messages behind the delayed one.
        assert!(net.transmit(1, 2, 0)[0] < 100 * MS);
        assert!(net.transmit(0, 2, 0)[0] >= 100 * MS);
    }
}
