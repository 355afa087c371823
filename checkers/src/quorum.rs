//! Static quorum analysis and PBS staleness prediction for Dynamo-style N/W/R replication.
//!
//! This module answers "what should this configuration do?" without looking at a history; its
//! sibling [`crate::nwr`] answers "what did the run do?", and the report puts both on one plot.
//! Everything here follows Bailis, Venkataraman, Franklin, Hellerstein and Stoica,
//! "Probabilistically Bounded Staleness for Practical Partial Quorums" (VLDB 2012), "PBS":
//!
//! - [`StaticAnalysis`]: do read and write quorums intersect (`W + R > N`), is each operation
//!   still available with `f` nodes down, how many failures each tolerates.
//! - k-staleness (PBS Section 3.2, Equation 2): with read and write quorums drawn uniformly at
//!   random, a read misses one given write with probability `C(N-W, R) / C(N, R)`; it misses
//!   the last `k` independent versions with probability [`p_miss`] `= (C(N-W,R)/C(N,R))^k`, so
//!   it returns a value at most `k` versions old with probability [`p_within_k`] `= 1 - p_miss`.
//!   Worked example (the paper's numbers, checked in the tests): `N=3, R=W=1` gives
//!   `C(2,1)/C(3,1) = 2/3`, so within 2 versions `1 - (2/3)^2 = 5/9 ≈ 0.56`; `N=3, R=1, W=2`
//!   gives `C(1,1)/C(3,1) = 1/3`, so `k=1`: `1 - 1/3 = 2/3 ≈ 0.67`.
//! - t-visibility (PBS Section 4, the WARS model): [`t_visibility`] is a seeded Monte-Carlo
//!   estimate of `P(consistent | t)`, the probability that a read starting `t` ms after a
//!   write committed returns that write (or a newer one), from four latency distributions.
//!
//! The rendering lives in the `report` crate; the `faultline quorum` command prints tables.

use crate::history::Operation;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Why an N/W/R configuration or a latency description was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QuorumError {
    /// N must be at least 1.
    #[error("N (replicas per key) must be at least 1")]
    NoReplicas,
    /// W must lie in 1..=N.
    #[error("W = {w} is out of range: a write must wait for between 1 and N = {n} replicas")]
    WriteQuorum {
        /// The requested W.
        w: u32,
        /// The replica count.
        n: u32,
    },
    /// R must lie in 1..=N.
    #[error("R = {r} is out of range: a read must wait for between 1 and N = {n} replicas")]
    ReadQuorum {
        /// The requested R.
        r: u32,
        /// The replica count.
        n: u32,
    },
    /// More failed nodes than replicas.
    #[error("{failed} failed nodes is more than the N = {n} replicas")]
    TooManyFailed {
        /// The requested failure count.
        failed: u32,
        /// The replica count.
        n: u32,
    },
    /// A WARS leg has no usable latency.
    #[error("latency leg {leg:?}: {message}")]
    Latency {
        /// `w`, `a`, `r` or `s`.
        leg: String,
        /// What was wrong, in words.
        message: String,
    },
    /// The latency file is not valid JSON of the documented shape.
    #[error("latency file: {0}")]
    LatencyFile(String),
}

/// A replication configuration: N replicas per key, W write acks, R read replies, `failed`
/// replicas down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumConfig {
    /// Replicas per key.
    pub n: u32,
    /// Acknowledgements a write waits for.
    pub w: u32,
    /// Replies a read waits for.
    pub r: u32,
    /// Replicas currently down (for availability only; staleness formulas assume none).
    pub failed: u32,
}

impl QuorumConfig {
    /// Validates `1 <= W <= N`, `1 <= R <= N`, `failed <= N`.
    pub fn new(n: u32, w: u32, r: u32, failed: u32) -> Result<Self, QuorumError> {
        if n == 0 {
            return Err(QuorumError::NoReplicas);
        }
        if w == 0 || w > n {
            return Err(QuorumError::WriteQuorum { w, n });
        }
        if r == 0 || r > n {
            return Err(QuorumError::ReadQuorum { r, n });
        }
        if failed > n {
            return Err(QuorumError::TooManyFailed { failed, n });
        }
        Ok(QuorumConfig { n, w, r, failed })
    }
}

/// What N, W, R and the failure count imply, without any latency model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticAnalysis {
    /// The configuration analysed.
    pub config: QuorumConfig,
    /// `W + R > N`: every read quorum intersects every write quorum (a "strict" quorum).
    pub strict: bool,
    /// `W > N / 2`: two write quorums always intersect (concurrent writes meet a common replica).
    pub write_quorums_intersect: bool,
    /// Writes can still gather W acks with `failed` replicas down (`W <= N - failed`).
    pub write_available: bool,
    /// Reads can still gather R replies with `failed` replicas down (`R <= N - failed`).
    pub read_available: bool,
    /// Replica failures a write survives: `N - W`.
    pub write_fault_tolerance: u32,
    /// Replica failures a read survives: `N - R`.
    pub read_fault_tolerance: u32,
    /// Failures both survive: `min(N - W, N - R)`.
    pub tolerated_failures: u32,
    /// Probability a read misses one given write: `C(N-W, R) / C(N, R)` (0 when strict).
    pub p_miss_one: f64,
}

/// Analyses a configuration (see [`StaticAnalysis`] for each figure).
pub fn analyze(config: QuorumConfig) -> StaticAnalysis {
    let QuorumConfig { n, w, r, failed } = config;
    let live = n - failed;
    StaticAnalysis {
        config,
        strict: w + r > n,
        write_quorums_intersect: 2 * w > n,
        write_available: w <= live,
        read_available: r <= live,
        write_fault_tolerance: n - w,
        read_fault_tolerance: n - r,
        tolerated_failures: (n - w).min(n - r),
        p_miss_one: p_miss(n, w, r, 1),
    }
}

/// The binomial coefficient `C(n, k)` (0 when `k > n`), exact for any realistic replica count.
pub fn binomial(n: u32, k: u32) -> u128 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut c: u128 = 1;
    for i in 0..k {
        // c * (n - i) is divisible by (i + 1) at every step: c is C(n, i) times i! / i!.
        c = c * u128::from(n - i) / u128::from(i + 1);
    }
    c
}

/// The exact fraction `C(N-W, R) / C(N, R)`: numerator and denominator.
pub fn p_miss_fraction(n: u32, w: u32, r: u32) -> (u128, u128) {
    (binomial(n.saturating_sub(w), r), binomial(n, r))
}

/// PBS k-staleness: the probability that a read misses all of the last `k` versions,
/// `(C(N-W, R) / C(N, R))^k` (Bailis et al., Equation 2). 0 whenever `W + R > N`.
pub fn p_miss(n: u32, w: u32, r: u32, k: u32) -> f64 {
    let (num, den) = p_miss_fraction(n, w, r);
    if den == 0 {
        return 0.0;
    }
    (num as f64 / den as f64).powi(k as i32)
}

/// PBS k-staleness: the probability that a read returns a value at most `k` versions old,
/// `1 - (C(N-W, R) / C(N, R))^k`. `N=3, R=W=1, k=2` gives `5/9 ≈ 0.56`.
pub fn p_within_k(n: u32, w: u32, r: u32, k: u32) -> f64 {
    1.0 - p_miss(n, w, r, k)
}

// ---------------------------------------------------------------------------------------------
// WARS Monte-Carlo (PBS Section 4).

/// A one-way latency distribution, in milliseconds.
///
/// In a latency file a leg is written either as a JSON array of samples in ms (resampled
/// uniformly), or as `{"exponential_mean_ms": 1.5}`, or as `{"constant_ms": 2}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LatencyDist {
    /// Empirical samples, drawn uniformly with replacement.
    Samples(Vec<f64>),
    /// Exponential with the given mean (PBS's synthetic experiments use exponentials).
    Exponential {
        /// Mean, ms.
        exponential_mean_ms: f64,
    },
    /// Always the same latency.
    Constant {
        /// The latency, ms.
        constant_ms: f64,
    },
}

impl LatencyDist {
    fn validate(&self, leg: &str) -> Result<(), QuorumError> {
        let bad = |message: String| QuorumError::Latency {
            leg: leg.to_owned(),
            message,
        };
        match self {
            LatencyDist::Samples(s) if s.is_empty() => Err(bad("no samples".into())),
            LatencyDist::Samples(s) => match s.iter().find(|x| !x.is_finite() || **x < 0.0) {
                Some(x) => Err(bad(format!(
                    "sample {x} is not a finite non-negative number"
                ))),
                None => Ok(()),
            },
            LatencyDist::Exponential {
                exponential_mean_ms: m,
            }
            | LatencyDist::Constant { constant_ms: m } => {
                if m.is_finite() && *m >= 0.0 {
                    Ok(())
                } else {
                    Err(bad(format!("{m} is not a finite non-negative number")))
                }
            }
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match self {
            LatencyDist::Samples(s) => s[rng.gen_range(0..s.len())],
            LatencyDist::Exponential {
                exponential_mean_ms,
            } => {
                let u: f64 = rng.gen();
                -exponential_mean_ms * (1.0 - u).ln()
            }
            LatencyDist::Constant { constant_ms } => *constant_ms,
        }
    }

    /// The mean of the distribution, ms.
    pub fn mean(&self) -> f64 {
        match self {
            LatencyDist::Samples(s) => s.iter().sum::<f64>() / s.len().max(1) as f64,
            LatencyDist::Exponential {
                exponential_mean_ms: m,
            }
            | LatencyDist::Constant { constant_ms: m } => *m,
        }
    }
}

/// The four WARS legs of PBS: `w` coordinator→replica write, `a` replica→coordinator ack,
/// `r` coordinator→replica read request, `s` replica→coordinator read response.
///
/// The latency file of `faultline quorum --latencies FILE` is this type as JSON, e.g.
/// `{"w": [0.4, 0.6, 2.1], "a": {"exponential_mean_ms": 0.5}, "r": [0.3], "s": {"constant_ms": 0.5}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarsLatencies {
    /// Write request, coordinator → replica.
    pub w: LatencyDist,
    /// Write acknowledgement, replica → coordinator.
    pub a: LatencyDist,
    /// Read request, coordinator → replica.
    pub r: LatencyDist,
    /// Read response, replica → coordinator.
    pub s: LatencyDist,
}

impl Default for WarsLatencies {
    /// The documented default when no latencies are given: every leg exponential with mean
    /// 1 ms (independent and identically distributed, as in PBS's synthetic exponential runs).
    fn default() -> Self {
        let e = LatencyDist::Exponential {
            exponential_mean_ms: 1.0,
        };
        WarsLatencies {
            w: e.clone(),
            a: e.clone(),
            r: e.clone(),
            s: e,
        }
    }
}

impl WarsLatencies {
    /// Parses the latency-file JSON (see the type doc) and validates every leg.
    pub fn from_json(text: &str) -> Result<Self, QuorumError> {
        let l: WarsLatencies =
            serde_json::from_str(text).map_err(|e| QuorumError::LatencyFile(e.to_string()))?;
        l.validate()?;
        Ok(l)
    }

    /// Checks that every leg is usable.
    pub fn validate(&self) -> Result<(), QuorumError> {
        self.w.validate("w")?;
        self.a.validate("a")?;
        self.r.validate("r")?;
        self.s.validate("s")
    }

    /// Builds WARS samples from a run's own history, so the prediction and the measurement in
    /// one report describe the same cluster. `None` without ok writes and ok reads.
    ///
    /// The naive approximation, stated plainly: the history only has client-observed round
    /// trips (invoke → ok), not per-replica legs. Every ok write latency `L` contributes `L/2`
    /// to both `w` and `a`, every ok read latency to `r` and `s`. With `W < N` this
    /// *understates* a typical replica (the client waited only for the W-th fastest of N), so
    /// the prediction is optimistic; the client↔coordinator hop pulls the other way. Prefer
    /// [`WarsLatencies::from_operations_for`] when N, W, R are known. Indeterminate and failed
    /// ops are ignored.
    pub fn from_operations(ops: &[Operation]) -> Option<Self> {
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        for op in ops {
            let Some(ret) = op.ret else { continue };
            let half_ms = (ret.saturating_sub(op.call)) as f64 / 2e6;
            match op.f.as_str() {
                "write" | "put" | "cas" => writes.push(half_ms),
                "read" | "get" => reads.push(half_ms),
                _ => {}
            }
        }
        if writes.is_empty() || reads.is_empty() {
            return None;
        }
        Some(WarsLatencies {
            w: LatencyDist::Samples(writes.clone()),
            a: LatencyDist::Samples(writes),
            r: LatencyDist::Samples(reads.clone()),
            s: LatencyDist::Samples(reads),
        })
    }
}

impl WarsLatencies {
    /// Like [`WarsLatencies::from_operations`], but undoes the order statistic: an ok write's
    /// latency is the W-th smallest of N per-replica round trips `W_i + A_i` (a read's, the
    /// R-th smallest of `R_i + S_i`). If one round trip has CDF `F`, the W-th smallest has CDF
    /// `G(x) = P(Binomial(N, F(x)) >= W)`, so the per-replica quantile at level `p` is the
    /// observed quantile at level `G = P(Binomial(N, p) >= W)`. We take 1000 levels `p`, read
    /// the matching observed quantiles (round trips `L`; the halving of `L` done by
    /// `from_operations` is undone). The history cannot tell the two legs of a round trip
    /// apart, so each is split at a fraction `u` spread evenly over (0, 1) (a Weyl sequence):
    /// `w = u·L`, `a = (1−u)·L`. For exponential legs this is exact — given the sum of two
    /// i.i.d. exponentials, the first's share is uniform — and for other shapes it keeps the
    /// spread that a fixed half would lose. Still approximate (legs assumed i.i.d. across
    /// replicas, client↔coordinator hop included).
    pub fn from_operations_for(ops: &[Operation], config: QuorumConfig) -> Option<Self> {
        let naive = WarsLatencies::from_operations(ops)?;
        let (LatencyDist::Samples(w), LatencyDist::Samples(r)) = (&naive.w, &naive.r) else {
            return None;
        };
        let invert = |halves: &[f64], k: u32| -> Vec<f64> {
            let mut sorted = halves.to_vec();
            sorted.sort_by(f64::total_cmp);
            let n = config.n;
            (0..1000)
                .map(|i| {
                    let p = (i as f64 + 0.5) / 1000.0;
                    let g: f64 = (k..=n)
                        .map(|j| {
                            binomial(n, j) as f64
                                * p.powi(j as i32)
                                * (1.0 - p).powi((n - j) as i32)
                        })
                        .sum();
                    let idx = ((g * sorted.len() as f64) as usize).min(sorted.len() - 1);
                    sorted[idx]
                })
                .collect()
        };
        // Samples are halves of round trips: double back, then split at u.
        let split = |round_trips: Vec<f64>| -> (Vec<f64>, Vec<f64>) {
            const GOLDEN: f64 = 0.618_033_988_749_894_9;
            round_trips
                .iter()
                .enumerate()
                .map(|(i, half)| {
                    let u = ((i as f64 + 0.5) * GOLDEN).fract();
                    (2.0 * half * u, 2.0 * half * (1.0 - u))
                })
                .unzip()
        };
        let (w, a) = split(invert(w, config.w));
        let (r, s) = split(invert(r, config.r));
        Some(WarsLatencies {
            w: LatencyDist::Samples(w),
            a: LatencyDist::Samples(a),
            r: LatencyDist::Samples(r),
            s: LatencyDist::Samples(s),
        })
    }
}

/// Monte-Carlo settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PbsOptions {
    /// Simulated write/read pairs.
    pub trials: usize,
    /// RNG seed: the same seed gives the same curve.
    pub seed: u64,
}

impl Default for PbsOptions {
    fn default() -> Self {
        PbsOptions {
            trials: 100_000,
            seed: 0x5eed,
        }
    }
}

/// One point of a t-visibility curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TPoint {
    /// Time since the write committed, ms.
    pub t_ms: f64,
    /// Probability that a read starting then returns the write (or newer).
    pub p_consistent: f64,
}

/// A PBS t-visibility prediction: `P(consistent | t)`, a non-decreasing step function of `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TVisibility {
    /// The configuration simulated.
    pub n: u32,
    /// Write quorum.
    pub w: u32,
    /// Read quorum.
    pub r: u32,
    /// Monte-Carlo trials and seed.
    pub options: PbsOptions,
    /// The curve: `p_consistent` at `t_ms`, ascending; the first point is `t = 0`. Between
    /// points the curve is read as a step (the value at the nearest point at or below `t`),
    /// which never overstates consistency.
    pub points: Vec<TPoint>,
}

impl TVisibility {
    /// `P(consistent | t)` for a read starting `t_ms` after commit.
    pub fn p_consistent(&self, t_ms: f64) -> f64 {
        let i = self.points.partition_point(|p| p.t_ms <= t_ms);
        if i == 0 {
            0.0
        } else {
            self.points[i - 1].p_consistent
        }
    }

    /// The smallest `t` (ms) at which `P(consistent | t) >= p`; `None` if never on the curve.
    pub fn t_for(&self, p: f64) -> Option<f64> {
        self.points
            .iter()
            .find(|pt| pt.p_consistent >= p)
            .map(|pt| pt.t_ms)
    }
}

/// PBS WARS Monte-Carlo estimate of t-visibility (Bailis et al., Section 4.1).
///
/// One trial: for each of the N replicas draw `W_i, A_i, R_i, S_i`. The write leaves the
/// coordinator at time 0, reaches replica `i` at `W_i` and its ack returns at `W_i + A_i`; it
/// commits at `c`, the W-th smallest ack time. A read issued at `c + t` reaches replica `i` at
/// `c + t + R_i`, which answers with the write iff `W_i <= c + t + R_i`; the coordinator uses
/// the first R responses by arrival `R_i + S_i`. The read is consistent iff one of those R
/// replicas had the write, i.e. iff `t >= min over them of (W_i - R_i - c)`. Each trial
/// therefore yields one threshold, and `P(consistent | t)` is the empirical CDF of the
/// thresholds (clamped at 0) — one simulation serves every `t`. With `W + R > N` one of the
/// first R responders acked the write before commit, so the threshold is `<= 0` and the
/// curve is 1 at `t = 0`.
pub fn t_visibility(
    config: QuorumConfig,
    lat: &WarsLatencies,
    opts: PbsOptions,
) -> Result<TVisibility, QuorumError> {
    lat.validate()?;
    let n = config.n as usize;
    let (w, r) = (config.w as usize, config.r as usize);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let trials = opts.trials.max(1);
    let mut thresholds = Vec::with_capacity(trials);
    let mut wi = vec![0.0; n];
    let mut ri = vec![0.0; n];
    let mut acks = vec![0.0; n];
    let mut order: Vec<usize> = (0..n).collect();
    let mut resp = vec![0.0; n];
    for _ in 0..trials {
        for i in 0..n {
            wi[i] = lat.w.sample(&mut rng);
            acks[i] = wi[i] + lat.a.sample(&mut rng);
            ri[i] = lat.r.sample(&mut rng);
            resp[i] = ri[i] + lat.s.sample(&mut rng);
        }
        acks.sort_by(f64::total_cmp);
        let commit = acks[w - 1];
        order.sort_by(|&a, &b| resp[a].total_cmp(&resp[b]));
        let th = order[..r]
            .iter()
            .map(|&i| wi[i] - ri[i] - commit)
            .fold(f64::INFINITY, f64::min);
        thresholds.push(th.max(0.0));
    }
    thresholds.sort_by(f64::total_cmp);
    // Keep the curve compact but exact at the points it keeps: 500 evenly spaced probability
    // levels plus a fine tail (0.99 to 1 in steps of 0.0001), where "when is it 99.9%
    // consistent" is decided. Each kept point is the empirical CDF at one threshold.
    let total = thresholds.len() as f64;
    let mut points = vec![TPoint {
        t_ms: 0.0,
        p_consistent: thresholds.partition_point(|&x| x <= 0.0) as f64 / total,
    }];
    let mut levels: Vec<f64> = (1..=500).map(|i| i as f64 / 500.0).collect();
    levels.extend((0..=100).map(|i| 0.99 + i as f64 * 0.0001));
    levels.sort_by(f64::total_cmp);
    for q in levels {
        let idx = ((q * total).ceil() as usize).clamp(1, thresholds.len()) - 1;
        let t = thresholds[idx];
        let p = thresholds.partition_point(|&x| x <= t) as f64 / total;
        let last = points.last().expect("non-empty");
        if t > last.t_ms && p > last.p_consistent {
            points.push(TPoint {
                t_ms: t,
                p_consistent: p,
            });
        }
    }
    Ok(TVisibility {
        n: config.n,
        w: config.w,
        r: config.r,
        options: PbsOptions { trials, ..opts },
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: u32, w: u32, r: u32) -> QuorumConfig {
        QuorumConfig::new(n, w, r, 0).unwrap()
    }

    #[test]
    fn paper_n3_r1_w1_within_two_versions_is_five_ninths() {
        // PBS Section 3.2: N=3, R=W=1 → 1 - (2/3)^2 = 5/9 ≈ 0.56.
        assert_eq!(p_miss_fraction(3, 1, 1), (2, 3));
        let p = p_within_k(3, 1, 1, 2);
        assert!((p - 5.0 / 9.0).abs() < 1e-12, "{p}");
        assert_eq!(format!("{p:.2}"), "0.56");
    }

    #[test]
    fn paper_n3_r1_w2_k1_is_two_thirds() {
        assert_eq!(p_miss_fraction(3, 2, 1), (1, 3));
        let p = p_within_k(3, 2, 1, 1);
        assert!((p - 2.0 / 3.0).abs() < 1e-12, "{p}");
        assert_eq!(format!("{p:.2}"), "0.67");
    }

    #[test]
    fn strict_quorums_never_miss() {
        for n in 1..=9 {
            for w in 1..=n {
                for r in 1..=n {
                    let a = analyze(cfg(n, w, r));
                    assert_eq!(a.strict, w + r > n);
                    if a.strict {
                        assert_eq!(p_miss(n, w, r, 1), 0.0, "N={n} W={w} R={r}");
                    } else {
                        assert!(p_miss(n, w, r, 1) > 0.0);
                    }
                }
            }
        }
    }

    /// Quorum arithmetic as a text table (raft-rs keeps its quorum cases as data the same way):
    /// N W R F | strict, writes available, reads available, tolerated, P(miss) for k=1.
    const TABLE: &str = "
        # n w r f  strict wavail ravail tol  pmiss
          3 1 1 0  no     yes    yes    2    2/3
          3 2 1 0  no     yes    yes    1    1/3
          3 2 2 0  yes    yes    yes    1    0/3
          3 2 2 2  yes    no     no     1    0/3
          5 2 2 0  no     yes    yes    3    3/10
          5 1 3 1  no     yes    yes    2    4/10
          5 3 3 2  yes    yes    yes    2    0/10
          5 3 3 3  yes    no     no     2    0/10
          5 1 1 4  no     yes    yes    4    4/5
          7 4 4 0  yes    yes    yes    3    0/35
          7 2 2 0  no     yes    yes    5    10/21
    ";

    #[test]
    fn quorum_table() {
        for line in TABLE.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| f[i].parse::<u32>().unwrap();
            let a = analyze(QuorumConfig::new(num(0), num(1), num(2), num(3)).unwrap());
            let yn = |b: bool| if b { "yes" } else { "no" };
            let (pn, pd) = p_miss_fraction(num(0), num(1), num(2));
            let got = format!(
                "{} {} {} {} {}/{}",
                yn(a.strict),
                yn(a.write_available),
                yn(a.read_available),
                a.tolerated_failures,
                pn,
                pd
            );
            assert_eq!(got, f[4..].join(" "), "row: {line}");
        }
    }

    #[test]
    fn binomials_and_availability() {
        assert_eq!(binomial(5, 2), 10);
        assert_eq!(binomial(60, 30), 118_264_581_564_861_424);
        assert_eq!(binomial(2, 3), 0);
        let a = analyze(QuorumConfig::new(5, 2, 2, 3).unwrap());
        assert!(a.write_available && a.read_available && !a.strict);
        assert_eq!((a.write_fault_tolerance, a.tolerated_failures), (3, 3));
        let a = analyze(QuorumConfig::new(5, 3, 3, 3).unwrap());
        assert!(!a.write_available && !a.read_available && a.strict);
        assert!(QuorumConfig::new(3, 4, 1, 0).is_err());
        assert!(QuorumConfig::new(3, 0, 1, 0).is_err());
        assert!(QuorumConfig::new(3, 1, 4, 0).is_err());
        assert!(QuorumConfig::new(3, 1, 1, 4).is_err());
    }

    #[test]
    fn monte_carlo_strict_is_consistent_at_zero() {
        let opts = PbsOptions {
            trials: 20_000,
            seed: 1,
        };
        for (n, w, r) in [(3, 2, 2), (5, 3, 3), (5, 1, 5), (3, 3, 1)] {
            let tv = t_visibility(cfg(n, w, r), &WarsLatencies::default(), opts).unwrap();
            assert_eq!(tv.p_consistent(0.0), 1.0, "N={n} W={w} R={r}");
        }
    }

    #[test]
    fn monte_carlo_partial_quorum_improves_with_t_and_is_seeded() {
        let opts = PbsOptions {
            trials: 50_000,
            seed: 7,
        };
        let l = WarsLatencies::default();
        let tv = t_visibility(cfg(3, 1, 1), &l, opts).unwrap();
        let again = t_visibility(cfg(3, 1, 1), &l, opts).unwrap();
        assert_eq!(tv, again);
        let p0 = tv.p_consistent(0.0);
        // At t=0 the write has reached at least the acking replica; P(consistent) lies between
        // the k-staleness bound 1 - 2/3 = 1/3 (no propagation at all) and 1.
        assert!(p0 > 1.0 / 3.0 && p0 < 1.0, "{p0}");
        let mut last = 0.0;
        for t in [0.0, 0.5, 1.0, 2.0, 5.0, 10.0] {
            let p = tv.p_consistent(t);
            assert!(p >= last);
            last = p;
        }
        assert!(tv.p_consistent(20.0) > 0.999);
        assert!(tv.t_for(0.99).unwrap() > 0.0);
    }

    #[test]
    fn monte_carlo_matches_a_closed_form() {
        // N=3, W=R=1. Each replica's write leg is 0 ms with probability q = 1/6 and 1e9 ms
        // otherwise; acks, read requests are instant, responses i.i.d. so the single read
        // replica is uniform. At t=0 the read is consistent iff its replica is fast (q), or it
        // is slow and so are both others (then the commit waited 1e9 ms for the slow write):
        // P = q + (1-q)^3 = 1/6 + 125/216 = 161/216 ≈ 0.745.
        let lat = WarsLatencies {
            w: LatencyDist::Samples(vec![0.0, 1e9, 1e9, 1e9, 1e9, 1e9]),
            a: LatencyDist::Constant { constant_ms: 0.0 },
            r: LatencyDist::Constant { constant_ms: 0.0 },
            s: LatencyDist::Exponential {
                exponential_mean_ms: 1.0,
            },
        };
        let opts = PbsOptions {
            trials: 60_000,
            seed: 3,
        };
        let tv = t_visibility(cfg(3, 1, 1), &lat, opts).unwrap();
        let expect = 161.0 / 216.0;
        for t in [0.0, 1.0, 1000.0] {
            let p = tv.p_consistent(t);
            assert!((p - expect).abs() < 0.01, "t={t}: {p} vs {expect}");
        }
    }

    #[test]
    fn latency_file_shapes() {
        let l = WarsLatencies::from_json(
            r#"{"w":[1,2,3],"a":{"exponential_mean_ms":0.5},"r":[0.5],"s":{"constant_ms":2}}"#,
        )
        .unwrap();
        assert_eq!(l.w.mean(), 2.0);
        assert!(WarsLatencies::from_json(r#"{"w":[],"a":[1],"r":[1],"s":[1]}"#).is_err());
        assert!(WarsLatencies::from_json(r#"{"w":[-1],"a":[1],"r":[1],"s":[1]}"#).is_err());
        assert!(WarsLatencies::from_json("{}").is_err());
    }
}
