//! Fault injectors: how a [`nemesis::Fault`] becomes real in an environment.
//!
//! Two kinds need an injector, because how they are cut depends on where the nodes run:
//! [`NetFaults`] (partitions, packet delay and loss) and [`ClockFaults`] (wall-clock offsets).
//! Kill and pause are signals, sent through [`crate::env::Env`] by the testbed.
//!
//! | environment | partitions | packet faults | clocks |
//! |---|---|---|---|
//! | local | userspace link proxies ([`proxies`]), or one proxy per node that learns senders from an HTTP peer protocol ([`http_peers`], etcd) | proxies (delay, TCP-style stall on loss) | libfaketime ([`clock`]) |
//! | netns | iptables in the namespaces ([`iptables`]) | tc netem ([`netem`]), or iptables loss + NFQUEUE delay ([`nfqueue`]) without netem | libfaketime (one kernel clock) |
//! | ssh   | iptables on each host ([`iptables`]) | as netns | the host's system clock, or libfaketime |
//!
//! Every injector undoes exactly what it did: heal restores every link, reset every clock;
//! the testbed calls them on every exit path.

pub mod clock;
pub mod http_peers;
pub mod iptables;
pub mod kernel;
pub mod netem;
pub mod nfqueue;
pub mod proxies;
pub mod proxy;

use anyhow::Result;
use nemesis::Grudge;

/// Partitions and packet faults.
pub trait NetFaults: Send + Sync {
    /// Cuts every link the grudge names (`dst` drops traffic from `src`), replacing the
    /// current partition.
    fn partition(&self, grudge: &Grudge) -> Result<()>;
    /// Heals every link.
    fn heal(&self) -> Result<()>;
    /// Adds `delay_ms` one-way delay and `loss` probability to traffic into and out of the
    /// hosts `nodes` (indices), replacing any current packet fault.
    fn packet(&self, nodes: &[usize], delay_ms: u64, loss: f64) -> Result<()>;
    /// Removes every delay and loss.
    fn clear_packet(&self) -> Result<()>;
    /// How faults are injected, for cluster.json and messages.
    fn describe(&self) -> String;
    /// Undoes everything this injector ever set up on the hosts (teardown; never fails,
    /// problems are printed).
    fn teardown(&self) {
        if let Err(e) = self.heal().and_then(|()| self.clear_packet()) {
            eprintln!("faultline: teardown: {e:#}");
        }
    }
}

/// Wall-clock faults.
pub trait ClockFaults: Send + Sync {
    /// Environment variables the node daemon needs for this mechanism (libfaketime's preload
    /// and offset file); empty for the system clock.
    fn daemon_env(&self, i: usize) -> Vec<(String, String)>;
    /// Sets host `i`'s wall clock to true time + `offset_ms` (0 = true time).
    fn set_offset(&self, i: usize, offset_ms: i64) -> Result<()>;
    /// Why clock faults cannot be injected here, when they cannot.
    fn unavailable(&self) -> Option<String>;
}
