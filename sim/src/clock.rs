//! Simulated clocks: every node reads its own monotonic clock (what drives its engine ticks)
//! and its own wall clock (what wall-clock leases and NWR's last-writer-wins read).
//!
//! A node's oscillator runs fast or slow by `drift_ppm` parts per million, which both clocks
//! share; its wall clock is also off true time by a small `skew_ms` from the start
//! (machines synchronised by NTP) and by whatever a clock fault sets (`fault_ms`: a bump or
//! the current phase of a strobe), exactly as libfaketime moves only the wall clock of a
//! real node (`FAKETIME_DONT_FAKE_MONOTONIC=1`). All arithmetic is integer, so every
//! machine computes the same readings.

use crate::queue::Nanos;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The wall clock of every node at simulated time 0, before skew: 2023-11-14T22:13:20Z.
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// The largest oscillator error modelled, ppm (10%: far beyond any real crystal).
pub const MAX_DRIFT_PPM: u64 = 100_000;

/// How far nodes' clocks differ without faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockModel {
    /// Largest offset of a node's wall clock from true time, ms (drawn per node).
    pub max_skew_ms: u64,
    /// Largest rate error of a node's oscillator, parts per million (drawn per node).
    pub max_drift_ppm: u64,
}

impl Default for ClockModel {
    fn default() -> Self {
        ClockModel {
            max_skew_ms: 5,
            max_drift_ppm: 200,
        }
    }
}

/// One node's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeClock {
    drift_ppm: i64,
    skew_ms: i64,
    /// Offset set by the current clock fault, ms.
    pub fault_ms: i64,
}

const PPM: i64 = 1_000_000;

impl NodeClock {
    /// A clock drawn from `model`.
    pub fn draw(model: &ClockModel, rng: &mut impl Rng) -> NodeClock {
        let d = model.max_drift_ppm.min(MAX_DRIFT_PPM) as i64;
        let s = model.max_skew_ms.min(86_400_000) as i64;
        NodeClock {
            drift_ppm: rng.gen_range(-d..=d),
            skew_ms: rng.gen_range(-s..=s),
            fault_ms: 0,
        }
    }

    /// Local time that passes on this node while `true_ns` passes in the simulation.
    pub fn local(&self, true_ns: Nanos) -> Nanos {
        // Whole microseconds times ppm stays far inside i64 for any simulated time (drift is
        // at most 10%); the sub-microsecond rest is scaled separately.
        let t = true_ns.min(i64::MAX as u64 / 2) as i64;
        let (us, ns) = (t / 1000, t % 1000);
        (t + us * self.drift_ppm / 1000 + ns * self.drift_ppm / PPM).max(0) as Nanos
    }

    /// The shortest true duration after which [`Self::local`] reaches `local_ns`.
    pub fn true_for(&self, local_ns: Nanos) -> Nanos {
        let rate = (PPM + self.drift_ppm) as f64 / PPM as f64;
        let mut t = (local_ns as f64 / rate) as Nanos;
        // The float estimate is within a few ns; integer steps make the result exact and
        // the same on every machine.
        while self.local(t) < local_ns {
            t += 1;
        }
        while t > 0 && self.local(t - 1) >= local_ns {
            t -= 1;
        }
        t
    }

    /// The wall clock (ms since the Unix epoch) at simulated time `now`.
    pub fn wall_ms(&self, now: Nanos) -> u64 {
        let ms =
            EPOCH_MS as i64 + (self.local(now) / 1_000_000) as i64 + self.skew_ms + self.fault_ms;
        ms.max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_and_its_inverse_agree() {
        for drift_ppm in [-100_000, -200, 0, 1, 200, 100_000] {
            let c = NodeClock {
                drift_ppm,
                skew_ms: 0,
                fault_ms: 0,
            };
            for local in [0, 1, 999, 10_000_000, 123_456_789_012] {
                let t = c.true_for(local);
                assert!(c.local(t) >= local, "{drift_ppm} {local}");
                assert!(t == 0 || c.local(t - 1) < local, "{drift_ppm} {local}");
            }
        }
    }

    #[test]
    fn faults_move_only_the_wall_clock() {
        let mut c = NodeClock {
            drift_ppm: 1000,
            skew_ms: -3,
            fault_ms: 0,
        };
        let before = (c.local(5_000_000_000), c.wall_ms(5_000_000_000));
        c.fault_ms = -2000;
        assert_eq!(c.local(5_000_000_000), before.0);
        assert_eq!(c.wall_ms(5_000_000_000), before.1 - 2000);
        assert_eq!(before.1, EPOCH_MS + 5005 - 3);
    }
}
