//! Measured staleness of a quorum-replicated register or key-value store, from a history.
//!
//! Linearizability answers yes or no; a Dynamo-style N/W/R store is *expected* to answer no
//! when `W + R <= N`, and the interesting question is how stale it is. This module measures
//! what Bailis et al., "Probabilistically Bounded Staleness for Practical Partial Quorums"
//! (VLDB 2012, "PBS") predict: for every ok read, whether it was fresh, and if not how many
//! versions behind (k-staleness) and for how long the newer value had been acknowledged
//! (t-visibility). It also finds lost writes, per-process session anomalies, and new-old
//! inversions, each with a sentence saying exactly what happened, so a report can say *which*
//! anomaly made a quorum history non-linearizable. The prediction side lives in
//! [`crate::quorum`]; the plot in the `report` crate (`nwr-staleness.png`).
//!
//! # Input
//! Register or kv histories with unique write values per key (`write`/`put`, and `cas`, whose
//! new value counts as a write; `read`/`get`). `fail` ops did not happen; an `info` write may
//! have taken effect at any time after its invoke, so it is never "older" than anything.
//!
//! # Version order (the rule every figure below uses)
//! Each write `v` has an interval `[v.call, v.ret]` (`ret = +∞` when indeterminate); the
//! initial value (nil) is older than every write. Write `u` is **older** than write `v`
//! (`u ≺ v`) iff `u.ret < v.call`: `u` was acknowledged before `v` began, so every
//! linearization orders `u` first. Writes whose intervals overlap are **concurrent** and
//! neither is older: a read returning either is fresh. For example, with `w1 = [0, 10]`,
//! `w2 = [5, 20]`, `w3 = [30, 40]`, a read starting at 50 is fresh if it returns `w3` (or a
//! write still in flight), stale with `k = 1` if it returns `w1` or `w2` (only `w3`
//! supersedes them), and stale with `k = 3` if it returns nil.
//!
//! For a read `r` that returned `v`, let `A` be the writes acknowledged before `r` began
//! (`w.ret < r.call`). Then `k(r) = |{w ∈ A : v ≺ w}|` — the acknowledged versions the read
//! is behind — and `r` is **fresh** iff `k = 0`. For a stale read, `t` is how long after the
//! first superseding write was acknowledged the read began. The measured t-visibility curve
//! instead buckets every read by the time since the *last* acknowledged write on its key
//! (`r.call − max_{w∈A} w.ret`), which is PBS's "t after commit" for the newest version.
//!
//! # Anomalies
//! - **stale read**: `k > 0`.
//! - **lost write**: an acknowledged write `w` such that the key's *final reads* — ok reads
//!   that began after every write on the key finished (indeterminate writes: after their
//!   invoke) — all returned values older than `w`. Keys without final reads are counted as
//!   undecided, never as lost.
//! - **monotonic-read violation**: a process reads `v2` after having read `v1` with `v2 ≺ v1`.
//! - **read-your-writes violation**: a process reads `v ≺ w` after its own write `w` was acked.
//! - **new-old inversion**: read `r1` returned `v1`, a read `r2` that began after `r1` ended
//!   returned `v2 ≺ v1` (any processes). This is the anomaly that makes strict quorums
//!   (`W + R > N`) non-linearizable without read repair: `r1` saw an in-flight write on one
//!   replica, `r2` asked other replicas. Counts overlap (a stale read can also be an inversion).
//! - **unexplained read**: a value that no non-failed write on that key wrote, or one whose
//!   write began after the read completed. Not counted as fresh or stale.

use crate::explain::{op_claim, Claim, Field, Sentence};
use crate::history::{History, HistoryError, Operation, Process};
use crate::quorum::{self, PbsOptions, QuorumConfig, QuorumError, StaticAnalysis, TVisibility};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const NEG: i64 = i64::MIN;
const POS: i64 = i64::MAX;

/// Settings of [`analyze`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NwrOptions {
    /// Lower edges (ms) of the t-visibility buckets, ascending; the last bucket is open-ended.
    pub bucket_edges_ms: Vec<f64>,
    /// At most this many described examples per anomaly kind.
    pub max_examples: usize,
    /// Buckets with fewer reads are ignored when comparing with a prediction.
    pub min_bucket_reads: u64,
}

impl Default for NwrOptions {
    fn default() -> Self {
        let mut edges = vec![0.0];
        let mut decade = 0.1;
        while decade < 20_000.0 {
            for m in [1.0, 2.0, 5.0] {
                edges.push(decade * m);
            }
            decade *= 10.0;
        }
        NwrOptions {
            bucket_edges_ms: edges,
            max_examples: 20,
            min_bucket_reads: 20,
        }
    }
}

/// Which anomaly an [`Anomaly`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// A read returned a value older than an acknowledged write.
    StaleRead,
    /// An acknowledged write that final reads never returned.
    LostWrite,
    /// A process read an older value after a newer one.
    MonotonicRead,
    /// A process did not see its own acknowledged write.
    ReadYourWrites,
    /// A read saw a write that a strictly later read did not.
    NewOldInversion,
    /// A read returned a value nobody (successfully) wrote, or before it was written.
    UnexplainedRead,
}

impl AnomalyKind {
    /// The name used in reports, in words.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::StaleRead => "stale read",
            AnomalyKind::LostWrite => "lost write",
            AnomalyKind::MonotonicRead => "monotonic-read violation",
            AnomalyKind::ReadYourWrites => "read-your-writes violation",
            AnomalyKind::NewOldInversion => "new-old inversion",
            AnomalyKind::UnexplainedRead => "unexplained read",
        }
    }
}

/// One described example of an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What kind.
    pub kind: AnomalyKind,
    /// The key, for multi-key histories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Ids ([`Operation::id`]) of the operations involved, the anomalous one last.
    pub ops: Vec<usize>,
    /// When it happened (the anomalous op's invoke), ns since the test started.
    pub time: u64,
    /// A plain-language account, naming processes, values and times (the sentence's text).
    pub description: String,
    /// The same account with the claims it makes, each checkable against the history.
    #[serde(default)]
    pub sentence: Sentence,
}

impl Anomaly {
    fn new(
        kind: AnomalyKind,
        key: &Option<String>,
        ops: Vec<usize>,
        time: i64,
        s: Sentence,
    ) -> Self {
        Anomaly {
            kind,
            key: key.clone(),
            ops,
            time: time.max(0) as u64,
            description: s.text.clone(),
            sentence: s,
        }
    }
}

/// Reads that were `k` versions behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KCount {
    /// Versions behind (≥ 1).
    pub k: u64,
    /// Stale reads that far behind.
    pub reads: u64,
}

/// One bucket of the measured t-visibility curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TBucket {
    /// Lower edge, ms since the last acknowledged write on the read's key (inclusive).
    pub t_lo_ms: f64,
    /// Upper edge (exclusive); `None` for the open last bucket.
    pub t_hi_ms: Option<f64>,
    /// Mean `t` of the reads in the bucket, ms (where the bucket is plotted and compared).
    pub t_mean_ms: f64,
    /// Reads in the bucket.
    pub reads: u64,
    /// Fresh reads among them.
    pub fresh: u64,
    /// `fresh / reads`.
    pub p_fresh: f64,
    /// Lower end of the 95 % Wilson score interval of `p_fresh`: with 1–6 reads a bucket's
    /// fraction says little, and the plot shows how little instead of zigzagging.
    #[serde(default)]
    pub ci_lo: f64,
    /// Upper end of that interval.
    #[serde(default = "one")]
    pub ci_hi: f64,
}

fn one() -> f64 {
    1.0
}

/// The 95 % Wilson score interval of `k` successes in `n` trials.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p, z) = (n as f64, k as f64 / n as f64, 1.96f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Session-guarantee violations of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessViolations {
    /// The process.
    pub process: Process,
    /// Monotonic-read violations.
    pub monotonic_reads: u64,
    /// Read-your-writes violations.
    pub read_your_writes: u64,
}

/// How far the measured t-visibility curve is from a PBS prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurveDistance {
    /// Largest `|measured − predicted|` over compared buckets.
    pub max_abs: f64,
    /// Mean `|measured − predicted|`, weighted by reads per bucket.
    pub mean_abs: f64,
    /// Buckets compared (those with at least `min_bucket_reads` reads).
    pub buckets: usize,
}

/// A PBS prediction for the run's configuration, stored next to the measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NwrPrediction {
    /// N, W, R, failures and what they imply.
    pub static_analysis: StaticAnalysis,
    /// `P(miss)` for k = 1..=5 (index 0 is k = 1).
    pub p_miss_k: Vec<f64>,
    /// The WARS Monte-Carlo curve.
    pub t_visibility: TVisibility,
    /// Where the latencies came from (`"history"`, a file name, `"default"`).
    pub latency_source: String,
    /// The smallest t (ms) with predicted `P(consistent) >= 0.99`.
    pub t99_ms: Option<f64>,
}

/// Builds a prediction for `config` from latencies (see [`quorum::t_visibility`]).
pub fn predict(
    config: QuorumConfig,
    latencies: &quorum::WarsLatencies,
    latency_source: &str,
    opts: PbsOptions,
) -> Result<NwrPrediction, QuorumError> {
    let tv = quorum::t_visibility(config, latencies, opts)?;
    Ok(NwrPrediction {
        static_analysis: quorum::analyze(config),
        p_miss_k: (1..=5)
            .map(|k| quorum::p_miss(config.n, config.w, config.r, k))
            .collect(),
        t99_ms: tv.t_for(0.99),
        t_visibility: tv,
        latency_source: latency_source.to_owned(),
    })
}

/// Everything measured about staleness in one history; the `nwr` section of `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NwrAnalysis {
    /// One paragraph in words: the headline figures and the worst anomaly, with an example.
    pub summary: String,
    /// Ok reads whose value could be attributed (fresh + stale).
    pub reads: u64,
    /// Fresh reads.
    pub fresh: u64,
    /// Stale reads.
    pub stale: u64,
    /// `stale / reads` (0 without reads).
    pub stale_fraction: f64,
    /// The largest k of any stale read (0 if none).
    pub max_k: u64,
    /// Stale reads by k, ascending.
    pub k_histogram: Vec<KCount>,
    /// Smallest t (ms since the last acknowledged write) at which a read is fresh with
    /// probability ≥ 0.99, on the isotonic (non-decreasing) least-squares fit of fresh/stale
    /// against t — the maximum-likelihood `P(fresh | t)` under PBS's assumption that waiting
    /// longer never hurts, computed by pool-adjacent-violators. Pointwise, like the predicted
    /// `t99_ms`, so the two compare directly. `None` without reads or if never reached.
    pub t99_fresh_ms: Option<f64>,
    /// The measured t-visibility curve, `P(fresh | t)`, empty buckets omitted.
    pub t_visibility: Vec<TBucket>,
    /// Reads that returned unattributable values (see the module doc).
    pub unexplained_reads: u64,
    /// Acknowledged writes.
    pub acknowledged_writes: u64,
    /// Acknowledged writes lost (see the module doc).
    pub lost_writes: u64,
    /// Keys with acknowledged writes but no final read, where loss cannot be decided.
    pub keys_without_final_reads: u64,
    /// Monotonic-read violations, all processes.
    pub monotonic_read_violations: u64,
    /// Read-your-writes violations, all processes.
    pub read_your_writes_violations: u64,
    /// Reads that missed a value an earlier-completed read had seen.
    pub new_old_inversions: u64,
    /// Processes with at least one session violation.
    pub per_process: Vec<ProcessViolations>,
    /// Described examples, at most `max_examples` per kind, in time order within a kind.
    pub anomalies: Vec<Anomaly>,
    /// The PBS prediction for this run, when the caller attached one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<NwrPrediction>,
    /// Distance between the measured curve and `prediction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve_distance: Option<CurveDistance>,
    /// The settings used.
    pub options: NwrOptions,
}

impl NwrAnalysis {
    /// Attaches a prediction, computes [`NwrAnalysis::curve_distance`] and refreshes the summary.
    pub fn with_prediction(mut self, prediction: NwrPrediction) -> Self {
        self.curve_distance = curve_distance(
            &self.t_visibility,
            &prediction.t_visibility,
            self.options.min_bucket_reads,
        );
        self.prediction = Some(prediction);
        self.summary = self.summarize();
        self
    }

    /// Serializes for the `nwr` slot of `results.json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Reads back the `nwr` slot of `results.json`.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, serde_json::Error> {
        NwrAnalysis::deserialize(v)
    }

    /// The first example of each anomaly kind present, most severe first (lost write,
    /// new-old inversion, stale read, read-your-writes, monotonic read, unexplained).
    pub fn worst_examples(&self) -> Vec<&Anomaly> {
        use AnomalyKind::*;
        [
            LostWrite,
            NewOldInversion,
            StaleRead,
            ReadYourWrites,
            MonotonicRead,
            UnexplainedRead,
        ]
        .iter()
        .filter_map(|k| self.anomalies.iter().find(|a| a.kind == *k))
        .collect()
    }

    fn summarize(&self) -> String {
        let mut s = format!(
            "{} of {} reads stale ({:.2}%), at most {} version{} behind",
            self.stale,
            self.reads,
            self.stale_fraction * 100.0,
            self.max_k,
            if self.max_k == 1 { "" } else { "s" }
        );
        match self.t99_fresh_ms {
            Some(t) => s += &format!("; 99% of reads fresh from {} after the last ack", ms(t)),
            None if self.reads > 0 => s += "; reads never reached 99% fresh",
            None => {}
        }
        s += &format!(
            ". {} of {} acknowledged writes lost{}; {} new-old inversions; {} monotonic-read and {} read-your-writes violations; {} unexplained reads.",
            self.lost_writes,
            self.acknowledged_writes,
            if self.keys_without_final_reads > 0 {
                format!(
                    " ({} keys had no final read to decide)",
                    self.keys_without_final_reads
                )
            } else {
                String::new()
            },
            self.new_old_inversions,
            self.monotonic_read_violations,
            self.read_your_writes_violations,
            self.unexplained_reads
        );
        if let Some(p) = &self.prediction {
            let c = p.static_analysis.config;
            s += &format!(
                " PBS prediction for N={} W={} R={} ({}): {}",
                c.n,
                c.w,
                c.r,
                p.latency_source,
                match p.t99_ms {
                    Some(t) => format!("99% consistent from {}", ms(t)),
                    None => "never 99% consistent".into(),
                }
            );
            if let Some(d) = &self.curve_distance {
                s += &format!(
                    "; measured vs predicted P(fresh | t) differ by at most {:.3} (mean {:.3}) over {} buckets",
                    d.max_abs, d.mean_abs, d.buckets
                );
            }
            s += ".";
        }
        if let Some(a) = self.worst_examples().first() {
            s += &format!(" Worst anomaly, a {}: {}", a.kind.name(), a.description);
        }
        s
    }
}

/// Distance between a measured curve and a prediction: the prediction is evaluated at each
/// bucket's mean `t`; buckets with fewer than `min_reads` reads are skipped. `None` when no
/// bucket qualifies.
pub fn curve_distance(
    measured: &[TBucket],
    predicted: &TVisibility,
    min_reads: u64,
) -> Option<CurveDistance> {
    let (mut max_abs, mut sum, mut weight, mut buckets) = (0.0f64, 0.0, 0u64, 0usize);
    for b in measured.iter().filter(|b| b.reads >= min_reads.max(1)) {
        let d = (b.p_fresh - predicted.p_consistent(b.t_mean_ms)).abs();
        max_abs = max_abs.max(d);
        sum += d * b.reads as f64;
        weight += b.reads;
        buckets += 1;
    }
    (buckets > 0).then(|| CurveDistance {
        max_abs,
        mean_abs: sum / weight as f64,
        buckets,
    })
}

/// The whole pipeline for one run, as the harness fills `results.json`'s `nwr` slot: measure
/// ([`analyze`]), and when the run's N/W/R are known and the history has ok writes and reads,
/// attach a PBS prediction from latencies derived from the same history
/// ([`quorum::WarsLatencies::from_operations_for`], latency source `"history"`).
pub fn analyze_run(
    ops: &[Operation],
    config: Option<QuorumConfig>,
    opts: &NwrOptions,
    pbs: PbsOptions,
) -> NwrAnalysis {
    let a = analyze(ops, opts);
    let prediction = config.and_then(|c| {
        let lat = quorum::WarsLatencies::from_operations_for(ops, c)?;
        predict(c, &lat, "history", pbs).ok()
    });
    match prediction {
        Some(p) => a.with_prediction(p),
        None => a,
    }
}

/// Pairs a history and runs [`analyze`].
pub fn analyze_history(history: &History, opts: &NwrOptions) -> Result<NwrAnalysis, HistoryError> {
    Ok(analyze(&history.operations()?, opts))
}

// ---------------------------------------------------------------------------------------------

/// A write, as the analysis sees it.
struct Write {
    op: usize,
    value: String,
    call: i64,
    /// `POS` when indeterminate.
    ret: i64,
}

/// What a read returned.
#[derive(Clone, Copy, PartialEq)]
enum Seen {
    Nil,
    Write(usize),
}

struct Read {
    op: usize,
    call: i64,
    ret: i64,
    seen: Option<Seen>,
    value: String,
}

fn ms(t: f64) -> String {
    if t >= 1000.0 {
        format!("{:.2} s", t / 1000.0)
    } else if t >= 10.0 {
        format!("{t:.0} ms")
    } else {
        format!("{t:.2} ms")
    }
}

fn written_value(op: &Operation) -> Option<&serde_json::Value> {
    match op.f.as_str() {
        "write" | "put" => Some(&op.input),
        "cas" => op.input.as_array().and_then(|a| a.get(1)),
        _ => None,
    }
}

fn is_read(op: &Operation) -> bool {
    matches!(op.f.as_str(), "read" | "get")
}

struct KeyData<'a> {
    key: &'a Option<String>,
    writes: Vec<Write>,
    reads: Vec<Read>,
}

/// Analyses paired operations (see the module doc for every definition).
pub fn analyze(ops: &[Operation], opts: &NwrOptions) -> NwrAnalysis {
    // Group by key; attribute read values to writes.
    let mut keys: Vec<KeyData> = Vec::new();
    let mut key_idx: HashMap<&Option<String>, usize> = HashMap::new();
    for op in ops {
        let is_w = written_value(op).is_some();
        if !is_w && !is_read(op) {
            continue;
        }
        let ki = *key_idx.entry(&op.key).or_insert_with(|| {
            keys.push(KeyData {
                key: &op.key,
                writes: Vec::new(),
                reads: Vec::new(),
            });
            keys.len() - 1
        });
        let kd = &mut keys[ki];
        if let Some(v) = written_value(op) {
            // A cas that returned ok took effect; one that is indeterminate may have.
            kd.writes.push(Write {
                op: op.id,
                value: v.to_string(),
                call: op.call as i64,
                ret: op.ret.map_or(POS, |r| r as i64),
            });
        } else if let (Some(ret), Some(out)) = (op.ret, op.output.as_ref()) {
            kd.reads.push(Read {
                op: op.id,
                call: op.call as i64,
                ret: ret as i64,
                seen: None,
                value: out.to_string(),
            });
        }
    }

    let mut acc = Acc::new(opts, ops);
    for kd in &mut keys {
        analyze_key(kd, &mut acc);
    }
    session_checks(ops, &keys, &mut acc);
    acc.finish(opts)
}

struct Acc<'o> {
    opts: &'o NwrOptions,
    /// The ops analysed (anomalies name them by id, their sentences quote them).
    ops: &'o [Operation],
    fresh: u64,
    stale: u64,
    unexplained: u64,
    k_hist: HashMap<u64, u64>,
    /// (t since last ack in ms, fresh) of every attributed read with an earlier ack.
    curve: Vec<(f64, bool)>,
    acked: u64,
    lost: u64,
    undecided_keys: u64,
    inversions: u64,
    monotonic: u64,
    ryw: u64,
    per_process: HashMap<Process, (u64, u64)>,
    anomalies: Vec<Anomaly>,
    counts: HashMap<AnomalyKind, usize>,
}

impl<'o> Acc<'o> {
    fn new(opts: &'o NwrOptions, ops: &'o [Operation]) -> Self {
        Acc {
            opts,
            ops,
            fresh: 0,
            stale: 0,
            unexplained: 0,
            k_hist: HashMap::new(),
            curve: Vec::new(),
            acked: 0,
            lost: 0,
            undecided_keys: 0,
            inversions: 0,
            monotonic: 0,
            ryw: 0,
            per_process: HashMap::new(),
            anomalies: Vec::new(),
            counts: HashMap::new(),
        }
    }

    /// Records an example of `kind` unless there are enough; `make` builds it from the ops.
    fn example(&mut self, kind: AnomalyKind, make: impl FnOnce(&[Operation]) -> Anomaly) {
        let n = self.counts.entry(kind).or_default();
        if *n < self.opts.max_examples {
            *n += 1;
            self.anomalies.push(make(self.ops));
        }
    }

    fn finish(mut self, opts: &NwrOptions) -> NwrAnalysis {
        let reads = self.fresh + self.stale;
        let mut k_histogram: Vec<KCount> = self
            .k_hist
            .iter()
            .map(|(&k, &reads)| KCount { k, reads })
            .collect();
        k_histogram.sort_by_key(|c| c.k);
        self.curve.sort_by(|a, b| a.0.total_cmp(&b.0));
        let t_visibility = buckets(&self.curve, &opts.bucket_edges_ms);
        let t99_fresh_ms = t99(&self.curve);
        let mut per_process: Vec<ProcessViolations> = self
            .per_process
            .iter()
            .map(|(&process, &(m, r))| ProcessViolations {
                process,
                monotonic_reads: m,
                read_your_writes: r,
            })
            .collect();
        per_process.sort_by_key(|p| p.process);
        // Kinds in a fixed order, time order within a kind.
        self.anomalies
            .sort_by_key(|a| (a.kind as u8, a.time, a.ops.last().copied()));
        let mut a = NwrAnalysis {
            summary: String::new(),
            reads,
            fresh: self.fresh,
            stale: self.stale,
            stale_fraction: if reads == 0 {
                0.0
            } else {
                self.stale as f64 / reads as f64
            },
            max_k: k_histogram.last().map_or(0, |c| c.k),
            k_histogram,
            t99_fresh_ms,
            t_visibility,
            unexplained_reads: self.unexplained,
            acknowledged_writes: self.acked,
            lost_writes: self.lost,
            keys_without_final_reads: self.undecided_keys,
            monotonic_read_violations: self.monotonic,
            read_your_writes_violations: self.ryw,
            new_old_inversions: self.inversions,
            per_process,
            anomalies: self.anomalies,
            prediction: None,
            curve_distance: None,
            options: opts.clone(),
        };
        a.summary = a.summarize();
        a
    }
}

fn buckets(curve: &[(f64, bool)], edges: &[f64]) -> Vec<TBucket> {
    let mut out = Vec::new();
    let mut i = 0;
    for (e, &lo) in edges.iter().enumerate() {
        let hi = edges.get(e + 1).copied();
        let start = i;
        let (mut fresh, mut sum) = (0u64, 0.0);
        // t > 0 always (an ack strictly precedes the read), so edges[0] = 0 catches everything.
        while i < curve.len() && hi.is_none_or(|h| curve[i].0 < h) {
            sum += curve[i].0;
            fresh += u64::from(curve[i].1);
            i += 1;
        }
        let n = (i - start) as u64;
        if n > 0 {
            let (ci_lo, ci_hi) = wilson(fresh, n);
            out.push(TBucket {
                t_lo_ms: lo,
                t_hi_ms: hi,
                t_mean_ms: sum / n as f64,
                reads: n,
                fresh,
                p_fresh: fresh as f64 / n as f64,
                ci_lo,
                ci_hi,
            });
        }
    }
    out
}

/// `curve` sorted by t. See [`NwrAnalysis::t99_fresh_ms`]. Pool-adjacent-violators: each
/// read starts a block; while a block's fresh fraction is below its predecessor's, merge them.
/// The blocks' fractions are then the isotonic fit; the answer is where the first block at or
/// above 0.99 starts (0 if it is the first block).
fn t99(curve: &[(f64, bool)]) -> Option<f64> {
    // (fresh reads, reads, t of the first read)
    let mut blocks: Vec<(u64, u64, f64)> = Vec::new();
    for &(t, fresh) in curve {
        blocks.push((u64::from(fresh), 1, t));
        while blocks.len() >= 2 {
            let (f2, n2, _) = blocks[blocks.len() - 1];
            let (f1, n1, _) = blocks[blocks.len() - 2];
            // f1/n1 > f2/n2, in integers.
            if u128::from(f1) * u128::from(n2) <= u128::from(f2) * u128::from(n1) {
                break;
            }
            blocks.pop();
            let last = blocks.last_mut().expect("two blocks");
            last.0 += f2;
            last.1 += n2;
        }
    }
    let i = blocks
        .iter()
        .position(|&(f, n, _)| f as f64 >= 0.99 * n as f64)?;
    Some(if i == 0 { 0.0 } else { blocks[i].2 })
}

fn analyze_key(kd: &mut KeyData, acc: &mut Acc) {
    let key = kd.key;
    // Attribute values.
    let by_value: HashMap<&str, usize> = kd
        .writes
        .iter()
        .enumerate()
        .map(|(i, w)| (w.value.as_str(), i))
        .collect();
    for r in &mut kd.reads {
        r.seen = if r.value == "null" {
            Some(Seen::Nil)
        } else {
            by_value
                .get(r.value.as_str())
                .copied()
                .filter(|&w| kd.writes[w].call <= r.ret)
                .map(Seen::Write)
        };
    }
    let writes = &kd.writes;
    let version = |s: Seen| -> (i64, i64) {
        match s {
            Seen::Nil => (NEG, NEG),
            Seen::Write(w) => (writes[w].call, writes[w].ret),
        }
    };

    // Acknowledged writes by ack time, with prefix maxima of their invoke times.
    let mut acked: Vec<usize> = (0..writes.len())
        .filter(|&i| writes[i].ret != POS)
        .collect();
    acked.sort_by_key(|&i| writes[i].ret);
    acc.acked += acked.len() as u64;
    let mut prefix_max_call = Vec::with_capacity(acked.len());
    let mut m = NEG;
    for &i in &acked {
        m = m.max(writes[i].call);
        prefix_max_call.push(m);
    }

    let mut order: Vec<usize> = (0..kd.reads.len()).collect();
    order.sort_by_key(|&i| kd.reads[i].call);
    let mut inserted = 0usize;
    let mut calls_sorted: Vec<i64> = Vec::with_capacity(acked.len());
    for &ri in &order {
        let r = &kd.reads[ri];
        while inserted < acked.len() && writes[acked[inserted]].ret < r.call {
            let c = writes[acked[inserted]].call;
            let pos = calls_sorted.partition_point(|&x| x <= c);
            calls_sorted.insert(pos, c);
            inserted += 1;
        }
        let Some(seen) = r.seen else {
            acc.unexplained += 1;
            let (call, op) = (r.call, r.op);
            let later: Vec<usize> = writes
                .iter()
                .filter(|w| w.value == r.value)
                .map(|w| w.op)
                .collect();
            acc.example(AnomalyKind::UnexplainedRead, |ops| {
                let read = &ops[op];
                let mut s = Sentence::new(false);
                on_key(&mut s, read);
                let wc = s.claim(writers_claim(read, &later, ops));
                if let Some(first) = later.iter().map(|&w| &ops[w]).min_by_key(|w| w.call) {
                    s.show_op(read)
                        .text(" returned ")
                        .show(wc, Field::Value)
                        .text(" before any operation wrote it: ");
                    s.began_after(first, read);
                    s.text(" completed.");
                } else {
                    s.show_op(read)
                        .text(" returned ")
                        .show(wc, Field::Value)
                        .text(", which no operation on this key wrote.");
                }
                Anomaly::new(AnomalyKind::UnexplainedRead, key, vec![op], call, s)
            });
            continue;
        };
        let (_, vret) = version(seen);
        let k = (calls_sorted.len() - calls_sorted.partition_point(|&c| c <= vret)) as u64;
        if inserted > 0 {
            let last_ack = writes[acked[inserted - 1]].ret;
            acc.curve.push(((r.call - last_ack) as f64 / 1e6, k == 0));
        }
        if k == 0 {
            acc.fresh += 1;
            continue;
        }
        acc.stale += 1;
        *acc.k_hist.entry(k).or_default() += 1;
        let first = acked[prefix_max_call[..inserted].partition_point(|&c| c <= vret)];
        let newest = acked[inserted - 1];
        let (rc, rop) = (r.call, r.op);
        let fw = writes[first].op;
        let newest_op = (newest != first).then(|| writes[newest].op);
        let behind: Vec<usize> = acked[..inserted]
            .iter()
            .filter(|&&w| writes[w].call > vret)
            .map(|&w| writes[w].op)
            .collect();
        let value_writer = match seen {
            Seen::Write(w) => Some(writes[w].op),
            Seen::Nil => None,
        };
        let mut ids = vec![fw];
        if let Some(w) = value_writer {
            ids.insert(0, w);
        }
        ids.push(rop);
        acc.example(AnomalyKind::StaleRead, |ops| {
            let read = &ops[rop];
            let mut s = Sentence::new(false);
            on_key(&mut s, read);
            let bi = s.claim(Claim::Behind {
                key: read.key.clone(),
                read: read.invoke_index,
                writes: behind.iter().map(|&w| ops[w].invoke_index).collect(),
            });
            s.began_after(read, &ops[fw]);
            s.text(" was acknowledged, yet it returned a value ")
                .show(bi, Field::Value)
                .text(" behind");
            if let Some(n) = newest_op {
                let ni = s.claim(op_claim(&ops[n]));
                s.text("; the newest acknowledged value was that of ")
                    .show(ni, Field::Phrase)
                    .text(", acknowledged at ")
                    .show(ni, Field::End);
            }
            s.text(".");
            Anomaly::new(AnomalyKind::StaleRead, key, ids.clone(), rc, s)
        });
    }

    // New-old inversions: sweep reads by invoke time, tracking, among reads that completed
    // before the current one began, the one that saw the newest-started write.
    let mut by_ret: Vec<usize> = order.clone();
    by_ret.sort_by_key(|&i| kd.reads[i].ret);
    let mut j = 0;
    let mut witness: Option<(i64, usize)> = None; // (write invoke time, read index)
    for &ri in &order {
        let r = &kd.reads[ri];
        while j < by_ret.len() && kd.reads[by_ret[j]].ret < r.call {
            let w = &kd.reads[by_ret[j]];
            if let Some(s) = w.seen {
                let (vc, _) = version(s);
                if witness.is_none_or(|(c, _)| vc > c) {
                    witness = Some((vc, by_ret[j]));
                }
            }
            j += 1;
        }
        let (Some(seen), Some((wc, wi))) = (r.seen, witness) else {
            continue;
        };
        if version(seen).1 < wc {
            acc.inversions += 1;
            let r1 = &kd.reads[wi];
            let s1 = r1.seen.expect("witness reads are attributed");
            let (first, second, time) = (r1.op, r.op, r.call);
            let newer = match s1 {
                Seen::Write(w) => Some(writes[w].op),
                Seen::Nil => None,
            };
            let older = match seen {
                Seen::Write(w) => Some(writes[w].op),
                Seen::Nil => None,
            };
            acc.example(AnomalyKind::NewOldInversion, |ops| {
                let (a, b) = (&ops[first], &ops[second]);
                let mut s = Sentence::new(false);
                on_key(&mut s, b);
                s.began_after(b, a);
                if let (Some(u), Some(v)) = (newer, older) {
                    let (u, v) = (&ops[u], &ops[v]);
                    s.claim(writers_claim(a, &[u.id], ops));
                    s.claim(writers_claim(b, &[v.id], ops));
                    s.text(" had completed, yet it returned the value of ")
                        .show_op(v)
                        .text(", and the earlier read the value of ")
                        .show_op(u)
                        .text(": ");
                    s.began_after(u, v);
                    s.text(" was acknowledged.");
                } else {
                    s.text(" had completed, yet it returned nil, the initial value.");
                }
                Anomaly::new(
                    AnomalyKind::NewOldInversion,
                    key,
                    vec![first, second],
                    time,
                    s,
                )
            });
        }
    }

    // Lost writes: after quiescence, did any final read return the write or something newer?
    if acked.is_empty() {
        return;
    }
    let quiet = writes
        .iter()
        .map(|w| if w.ret == POS { w.call } else { w.ret })
        .max()
        .unwrap_or(NEG);
    let finals: Vec<&Read> = kd
        .reads
        .iter()
        .filter(|r| r.call > quiet && r.seen.is_some())
        .collect();
    let Some(newest_final) = finals
        .iter()
        .map(|r| version(r.seen.expect("filtered")).1)
        .max()
    else {
        acc.undecided_keys += 1;
        return;
    };
    let final_ops: Vec<usize> = finals.iter().map(|r| r.op).collect();
    for &i in &acked {
        let w = &writes[i];
        if w.call > newest_final {
            acc.lost += 1;
            let (wop, t) = (w.op, w.ret);
            let mut ids = vec![wop];
            ids.extend(final_ops.iter().take(3));
            acc.example(AnomalyKind::LostWrite, |ops| {
                let lost = &ops[wop];
                let mut s = Sentence::new(false);
                on_key(&mut s, lost);
                let li = s.claim(op_claim(lost));
                let fi = s.claim(Claim::Lost {
                    key: lost.key.clone(),
                    write: lost.invoke_index,
                    after: quiet.max(0) as u64,
                    reads: final_ops.iter().map(|&r| ops[r].invoke_index).collect(),
                });
                s.show(li, Field::Phrase)
                    .text(" was acknowledged at ")
                    .show(li, Field::End)
                    .text(" but lost: the ")
                    .show(fi, Field::Value)
                    .text(" that began after every write of the key had finished (at ")
                    .show(fi, Field::Start)
                    .text(") all returned older values");
                if let Some(&r) = final_ops.first() {
                    s.text(", such as ");
                    s.show_op(&ops[r]);
                }
                s.text(".");
                Anomaly::new(AnomalyKind::LostWrite, key, ids.clone(), t, s)
            });
        }
    }
}

/// Monotonic reads and read-your-writes, per process and key, in each process's op order.
fn session_checks(ops: &[Operation], keys: &[KeyData], acc: &mut Acc) {
    #[derive(Default, Clone, Copy)]
    struct Session {
        /// Newest (by invoke) write this process has read: (invoke time, write index, the
        /// read's op id).
        seen: Option<(i64, usize, usize)>,
        /// Newest own acknowledged write: (invoke time, write index).
        own: Option<(i64, usize)>,
    }
    // Per key: op id -> write index / read index.
    let mut write_of: HashMap<usize, (usize, usize)> = HashMap::new();
    let mut read_of: HashMap<usize, (usize, usize)> = HashMap::new();
    for (ki, kd) in keys.iter().enumerate() {
        for (i, w) in kd.writes.iter().enumerate() {
            write_of.insert(w.op, (ki, i));
        }
        for (i, r) in kd.reads.iter().enumerate() {
            read_of.insert(r.op, (ki, i));
        }
    }
    let mut sessions: HashMap<(Process, usize), Session> = HashMap::new();
    let mut order: Vec<&Operation> = ops.iter().collect();
    order.sort_by_key(|o| (o.process, o.call, o.id));
    for op in order {
        if let Some(&(ki, wi)) = write_of.get(&op.id) {
            let w = &keys[ki].writes[wi];
            if w.ret != POS {
                let s = sessions.entry((op.process, ki)).or_default();
                if s.own.is_none_or(|(c, _)| w.call > c) {
                    s.own = Some((w.call, wi));
                }
            }
            continue;
        }
        let Some(&(ki, ri)) = read_of.get(&op.id) else {
            continue;
        };
        let kd = &keys[ki];
        let r = &kd.reads[ri];
        let Some(seen) = r.seen else { continue };
        let (vcall, vret) = match seen {
            Seen::Nil => (NEG, NEG),
            Seen::Write(w) => (kd.writes[w].call, kd.writes[w].ret),
        };
        let value_op = match seen {
            Seen::Write(w) => Some(kd.writes[w].op),
            Seen::Nil => None,
        };
        let s = *sessions.entry((op.process, ki)).or_default();
        let key = kd.key;
        let rop = r.op;
        if let Some((_, w, prev)) = s.seen.filter(|(c, _, _)| vret < *c) {
            acc.monotonic += 1;
            acc.per_process.entry(op.process).or_default().0 += 1;
            let newer = kd.writes[w].op;
            acc.example(AnomalyKind::MonotonicRead, |ops| {
                let (read, before) = (&ops[rop], &ops[prev]);
                let mut s = Sentence::new(false);
                on_key(&mut s, read);
                s.began_after(read, before);
                s.text(", an earlier read of the same process, had completed, yet it returned ");
                older_than(&mut s, read, value_op, &ops[newer], ops);
                Anomaly::new(AnomalyKind::MonotonicRead, key, vec![prev, rop], r.call, s)
            });
        }
        if let Some((_, w)) = s.own.filter(|(c, _)| vret < *c) {
            acc.ryw += 1;
            acc.per_process.entry(op.process).or_default().1 += 1;
            let own = kd.writes[w].op;
            acc.example(AnomalyKind::ReadYourWrites, |ops| {
                let (read, mine) = (&ops[rop], &ops[own]);
                let mut s = Sentence::new(false);
                on_key(&mut s, read);
                s.began_after(read, mine);
                s.text(", a write of the same process, was acknowledged, yet it returned ");
                older_than(&mut s, read, value_op, mine, ops);
                Anomaly::new(AnomalyKind::ReadYourWrites, key, vec![own, rop], r.call, s)
            });
        }
        if let Seen::Write(w) = seen {
            let e = sessions.entry((op.process, ki)).or_default();
            if e.seen.is_none_or(|(c, _, _)| vcall > c) {
                e.seen = Some((vcall, w, rop));
            }
        }
    }
}

/// `the value of {v}: {newer} began {gap} after it was acknowledged.` (or nil, the initial
/// value): the value `read` returned is older than `newer`'s.
fn older_than(
    s: &mut Sentence,
    read: &Operation,
    value_op: Option<usize>,
    newer: &Operation,
    ops: &[Operation],
) {
    match value_op {
        Some(v) => {
            let v = &ops[v];
            s.claim(writers_claim(read, &[v.id], ops));
            s.text("the value of ").show_op(v).text(", older: ");
            s.began_after(newer, v);
            s.text(" was acknowledged.");
        }
        None => {
            s.text("nil, the initial value, older than the value of ")
                .show_op(newer)
                .text(".");
        }
    }
}

/// `On key k, ` when the op has a key.
fn on_key(s: &mut Sentence, op: &Operation) {
    if op.key.is_some() {
        let i = s.claim(op_claim(op));
        s.text("On ").show(i, Field::Key).text(", ");
    }
}

/// The claim that exactly the ops `ids` wrote the value `read` returned.
fn writers_claim(read: &Operation, ids: &[usize], ops: &[Operation]) -> Claim {
    let value = match (ids.first(), &read.output) {
        (Some(&w), _) => written_value(&ops[w]).cloned().unwrap_or_default(),
        (None, Some(v)) => v.clone(),
        (None, None) => serde_json::Value::Null,
    };
    Claim::Writers {
        key: read.key.clone(),
        value,
        writers: ids.iter().map(|&w| ops[w].invoke_index).collect(),
        init: serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t99_is_the_isotonic_fit_crossing() {
        let c = |v: &[(f64, bool)]| t99(v);
        // Fit: 0 | 0.5 0.5 (pooled) | 1 1 → crosses 0.99 at t = 4.
        let v = [
            (1.0, false),
            (2.0, true),
            (3.0, false),
            (4.0, true),
            (5.0, true),
        ];
        assert_eq!(c(&v), Some(4.0));
        assert_eq!(c(&[(1.0, true), (2.0, true)]), Some(0.0));
        assert_eq!(c(&[(1.0, true), (2.0, false)]), None);
        assert_eq!(c(&[]), None);
        // One late stale read among 200 fresh ones pools into a block still ≥ 0.99.
        let mut v: Vec<(f64, bool)> = (0..10).map(|i| (i as f64, false)).collect();
        v.extend((10..210).map(|i| (i as f64, i != 200)));
        assert_eq!(c(&v), Some(10.0));
    }

    #[test]
    fn buckets_follow_edges() {
        let v = [(0.05, false), (0.15, true), (0.16, true), (30_000.0, true)];
        let b = buckets(&v, &NwrOptions::default().bucket_edges_ms);
        let got: Vec<(f64, Option<f64>, u64, u64)> = b
            .iter()
            .map(|b| (b.t_lo_ms, b.t_hi_ms, b.reads, b.fresh))
            .collect();
        assert_eq!(
            got,
            vec![
                (0.0, Some(0.1), 1, 0),
                (0.1, Some(0.2), 2, 2),
                (20_000.0, Some(50_000.0), 1, 1)
            ]
        );
    }
}
