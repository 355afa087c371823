//! `results.json`: everything the checkers concluded about one run, as one typed value.
//!
//! [`Analysis::new`] is the one constructor: it pairs the history once ([`Observed`]), runs
//! every checker (linearizability, ghost writes, the NWR staleness analysis when the run used
//! quorums), shrinks each illegal key to a minimal counterexample with a sentence a person can
//! check ([`crate::explain`]), counts outcomes, latency and availability, lists the faults and
//! the cluster's state over time, and decides the verdict. Nothing downstream judges again: the
//! harness prints [`Analysis::summary`] and maps [`Analysis::verdict`] to its exit code, and
//! the `report` crate deserializes this type and draws it.
//!
//! # The verdict
//! - `invalid` when the history is not linearizable (some key has no legal order), or when it
//!   is but the ghost check found an abandoned write applied after a newer one (an
//!   indeterminate write may legally take effect at any later time, so linearizability cannot
//!   see that anomaly; see [`crate::ghost`]);
//! - `valid` when every key is linearizable and no ghost was found;
//! - `unknown` when the checker's budget ran out or the history could not be checked at all
//!   (`checker_error` says why).
//!
//! # Compatibility
//! Field names are stable and every section added since the first version has a serde
//! default, so an old `results.json` still loads ([`Analysis::from_json`] also fills the
//! summary from the fields old files had); `faultline analyze` rewrites it in this shape.

use crate::cluster_state::{self, ClusterTimeline, FaultRecord};
use crate::explain::{self, KeyExplanation};
use crate::ghost::{self, GhostReport};
use crate::history::{pair_all, History, HistoryError, Operation, Outcome};
use crate::linearizable::{self, CheckOptions, CheckResult, Verdict as LinVerdict};
use crate::model::ModelKind;
use crate::nwr::{Anomaly, AnomalyKind, NwrAnalysis, NwrOptions};
use crate::quorum::{PbsOptions, QuorumConfig};
use crate::stats::{self, Availability, Latency, Stats};
use crate::txn::Validity;
use crate::txn_section::{TxnCheck, TxnSection};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

/// Reads `history.jsonl` as the harness writes it. A last line cut off mid-write (a harness
/// killed while writing) is dropped and returned beside the history, so the caller can say so;
/// any other bad line is an error naming its line.
pub fn read_jsonl<R: std::io::BufRead>(
    input: R,
) -> Result<(History, Option<HistoryError>), HistoryError> {
    let mut h = History::default();
    for item in crate::history::JsonlReader::new(input) {
        match item {
            Ok((line, ev)) => h.push(line, ev),
            Err(e @ HistoryError::Truncated { .. }) => return Ok((h, Some(e))),
            Err(e) => return Err(e),
        }
    }
    Ok((h, None))
}

/// Version of this shape; 0 (absent) for files written before the typed sections.
pub const SCHEMA: u32 = 2;

/// The run's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check passed.
    Valid,
    /// A check found an anomaly.
    Invalid,
    /// No check found an anomaly, but one could not decide (budget, bad input).
    Unknown,
}

impl Verdict {
    /// `valid`, `invalid`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

/// Which check decided the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The linearizability checker.
    Linearizability,
    /// The ghost-write check.
    Ghosts,
    /// The history could not be paired or interpreted.
    CheckerError,
    /// A transactional workload's checker (the `transactions` section).
    Transactions,
}

/// N/W/R settings of a quorum run, as the run used them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NwrConfig {
    /// Replicas per key.
    pub n: u32,
    /// Replica acks a write waits for.
    pub w: u32,
    /// Replica replies a read waits for.
    pub r: u32,
    /// Last-writer-wins timestamp source: `hybrid` or `wall`.
    #[serde(default)]
    pub clock: String,
    /// Read repair on.
    #[serde(default)]
    pub read_repair: bool,
    /// Reads write the value they return back to a write quorum before answering (ABD).
    #[serde(default)]
    pub read_writeback: bool,
    /// `W + R > N`.
    #[serde(default)]
    pub intersecting: bool,
}

/// The NWR anomaly tied to an invalid verdict, and how it was tied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictAnomaly {
    /// The anomaly.
    #[serde(flatten)]
    pub anomaly: Anomaly,
    /// Its kind in words (`stale read`).
    pub name: String,
    /// Why this one: how it relates to the op the checker could not place.
    pub found_by: String,
}

/// The `nwr` section: the staleness analysis with the run's configuration and, for an invalid
/// run, which anomaly made it so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NwrSection {
    /// Everything measured (the fields sit at the top level of the section).
    #[serde(flatten)]
    pub analysis: NwrAnalysis,
    /// N, W, R, clock and read repair of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<NwrConfig>,
    /// Which anomaly made the run non-linearizable, in words (invalid runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// That anomaly as data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_anomaly: Option<VerdictAnomaly>,
}

/// What to check and with what budgets.
#[derive(Debug, Clone)]
pub struct AnalysisOptions {
    /// The linearizability check (model, initial value, budget, partitioning).
    pub check: CheckOptions,
    /// The run's quorum settings: adds the `nwr` section (runs of the NWR engine).
    pub nwr: Option<NwrConfig>,
    /// Total time for shrinking illegal keys to minimal counterexamples; zero skips it.
    pub minimize: Duration,
    /// A transactional workload's checker, which then judges the run instead of
    /// linearizability (the `transactions` section).
    pub txn: Option<TxnCheck>,
    /// Run the ghost-write check. Its criterion holds only for systems whose nodes act on a
    /// request only while its client waits (kvnode rejects instead of forwarding); a system
    /// that forwards or queues proposals (etcd) may legitimately apply an abandoned write
    /// late, so the harness turns it off for them.
    pub ghosts: bool,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            check: CheckOptions::default(),
            nwr: None,
            minimize: Duration::from_secs(20),
            txn: None,
            ghosts: true,
        }
    }
}

/// The history paired once: what the report draws and the checkers judge.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Every client operation in invoke order, `fail`s included (see [`pair_all`]).
    pub ops: Vec<Operation>,
    /// Every fault applied (or failed to apply), in start order.
    pub faults: Vec<FaultRecord>,
    /// The cluster's state over time.
    pub cluster: ClusterTimeline,
    /// Time of the last event, ns.
    pub end: u64,
}

impl Observed {
    /// Pairs a history's events; fails on a history that cannot be paired, naming the line.
    pub fn from_history(history: &History) -> Result<Observed, HistoryError> {
        let ops = pair_all(&history.events, &history.lines)?;
        let end = history.events.iter().map(|e| e.time).max().unwrap_or(0);
        let nodes: BTreeSet<String> = ops.iter().filter_map(|o| o.node.clone()).collect();
        let (faults, cluster) = cluster_state::build(&history.events, &nodes, end);
        Ok(Observed {
            ops,
            faults,
            cluster,
            end,
        })
    }

    /// The ops a checker sees: `fail`s removed (they did not happen), ids renumbered densely.
    pub fn checked_ops(&self) -> Vec<Operation> {
        let mut out: Vec<Operation> = self.ops.iter().filter(|o| !o.failed).cloned().collect();
        for (id, op) in out.iter_mut().enumerate() {
            op.id = id;
        }
        out
    }

    /// Faults active at `t` (started, not yet stopped, not failed).
    pub fn faults_at(&self, t: u64) -> impl Iterator<Item = &FaultRecord> {
        self.faults.iter().filter(move |f| f.active_at(t))
    }
}

/// The contents of `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// [`SCHEMA`] when written by this version; 0 for older files.
    #[serde(default)]
    pub schema: u32,
    /// The verdict (see the module doc).
    pub verdict: Verdict,
    /// Which check decided it (`None` for a valid run: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Check>,
    /// Why the verdict is what it is, in one paragraph for a person; for an invalid run the
    /// sentence of the first minimal counterexample (or ghost).
    #[serde(default)]
    pub summary: String,
    /// One per key that is not linearizable: the minimal counterexample and its sentence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counterexamples: Vec<KeyExplanation>,
    /// The linearizability check (per-key partitions, the longest-prefix counterexample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linearizability: Option<CheckResult>,
    /// Why the checker could not run, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker_error: Option<String>,
    /// ok / fail / info counts, overall and by function.
    pub stats: Stats,
    /// Latency quantiles of ok ops.
    pub latency: Latency,
    /// Latency quantiles of ok ops per function.
    #[serde(default)]
    pub latency_by_f: BTreeMap<String, Latency>,
    /// Fraction of ok ops invoked during fault windows vs outside them.
    pub availability: Availability,
    /// `fail` ops invoked while a fault was active (definite failures during faults are
    /// expected: they did not take effect).
    #[serde(default)]
    pub fails_during_faults: u64,
    /// Every fault the nemesis applied, in start order (failed attempts included, marked).
    pub faults: Vec<FaultRecord>,
    /// The cluster's state over time (empty rows for histories without nemesis events).
    #[serde(default)]
    pub cluster: ClusterTimeline,
    /// Duration of the history (time of its last event), ns.
    pub duration_ns: u64,
    /// NWR / quorum staleness analysis, for runs that used quorums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nwr: Option<NwrSection>,
    /// Resurrected writes (register / kv histories with unique values); `None` when none were
    /// found, so results.json only mentions them when there are some.
    #[serde(default, skip_serializing_if = "no_ghosts")]
    pub ghosts: Option<GhostReport>,
    /// The transactional workload's checker result, for runs judged by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<TxnSection>,
    /// Written by versions before [`SCHEMA`] 2 instead of `summary`; read, never written.
    #[serde(default, skip_serializing)]
    explanation: Option<String>,
}

/// Whether [`Analysis::judge`] runs the linearizability checker, has its result, or skips it
/// (a transactional run, judged by its own checker).
enum Lin {
    Run,
    Done(CheckResult),
    Skip,
}

fn no_ghosts(g: &Option<GhostReport>) -> bool {
    g.as_ref().is_none_or(GhostReport::is_empty)
}

impl Analysis {
    /// Runs every checker over a history and decides the verdict. See the module doc.
    pub fn new(history: &History, opts: &AnalysisOptions) -> Analysis {
        Analysis::with_observed(history, opts).0
    }

    /// Like [`Analysis::new`], also returning the paired history (for the report, which draws
    /// it), or why it could not be paired.
    pub fn with_observed(
        history: &History,
        opts: &AnalysisOptions,
    ) -> (Analysis, Result<Observed, HistoryError>) {
        let observed = Observed::from_history(history);
        let analysis = match (&observed, &opts.txn) {
            (Ok(o), Some(txn)) => Analysis::judge_txn(o, txn.run(history)),
            (Ok(o), None) => Analysis::judge(o, opts, Lin::Run),
            (Err(e), _) => Analysis::unpaired(history, e),
        };
        (analysis, observed)
    }

    /// The verdict of a transactional workload's run: its checker's (an input it could not
    /// read makes the run unknown, with the reason). Counts, latency, faults and the cluster
    /// timeline are as for any run.
    fn judge_txn(o: &Observed, result: Result<TxnSection, HistoryError>) -> Analysis {
        let mut a = Analysis::judge(o, &AnalysisOptions::default(), Lin::Skip);
        match result {
            Ok(section) => {
                a.verdict = match section.verdict() {
                    Validity::Valid => Verdict::Valid,
                    Validity::Invalid => Verdict::Invalid,
                    Validity::Unknown => Verdict::Unknown,
                };
                a.decided_by = (a.verdict != Verdict::Valid).then_some(Check::Transactions);
                a.transactions = Some(section);
            }
            Err(e) => {
                a.verdict = Verdict::Unknown;
                a.decided_by = Some(Check::CheckerError);
                a.checker_error = Some(e.to_string());
            }
        }
        a.summary = a.summarize();
        a
    }

    /// Like [`Analysis::new`] for a history already paired and checked (`faultline check
    /// --html` has its [`CheckResult`] already): everything else is still done here.
    pub fn of_checked(observed: &Observed, opts: &AnalysisOptions, result: CheckResult) -> Self {
        Analysis::judge(observed, opts, Lin::Done(result))
    }

    /// The one place a verdict is decided.
    fn judge(o: &Observed, opts: &AnalysisOptions, lin: Lin) -> Analysis {
        let checked = o.checked_ops();
        let stats = Stats::of(&o.ops);
        let (latency, latency_by_f) = stats::latencies(&o.ops);
        let active = |t: u64| o.faults.iter().any(|f| f.active_at(t));
        let availability = Availability::of(&o.ops, active);
        let fails_during_faults = o
            .ops
            .iter()
            .filter(|op| op.outcome() == Outcome::Fail && active(op.call))
            .count() as u64;
        let skipped = matches!(lin, Lin::Skip);
        let (linearizability, checker_error) = match lin {
            Lin::Done(r) => (Some(r), None),
            Lin::Skip => (None, None),
            Lin::Run => match linearizable::check(&checked, &opts.check) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        let model = linearizability.as_ref().map(|l| l.model);
        // Unique write values are what makes a read name its write; Porcupine's kv model
        // (append) has neither.
        let ghosts = (opts.ghosts
            && !skipped
            && model != Some(ModelKind::Kv)
            && !checked.iter().any(|o| o.f == "append"))
        .then(|| ghost::check(&checked))
        .filter(|g| !g.is_empty());
        let counterexamples = match &linearizability {
            Some(l) if l.verdict == LinVerdict::Illegal => {
                explain::explain_illegal(&checked, l, &opts.check, o, opts.minimize)
            }
            _ => Vec::new(),
        };
        let lin_verdict = linearizability.as_ref().map(|l| l.verdict);
        let (verdict, decided_by) = match (lin_verdict, &ghosts, &checker_error) {
            (Some(LinVerdict::Illegal), _, _) => (Verdict::Invalid, Some(Check::Linearizability)),
            (_, Some(_), _) => (Verdict::Invalid, Some(Check::Ghosts)),
            (Some(LinVerdict::Linearizable), None, _) => (Verdict::Valid, None),
            (_, None, Some(_)) => (Verdict::Unknown, Some(Check::CheckerError)),
            _ => (Verdict::Unknown, Some(Check::Linearizability)),
        };
        let nwr = opts
            .nwr
            .as_ref()
            .map(|q| nwr_section(&checked, q, verdict, &counterexamples));
        let mut a = Analysis {
            schema: SCHEMA,
            verdict,
            decided_by,
            summary: String::new(),
            counterexamples,
            linearizability,
            checker_error,
            stats,
            latency,
            latency_by_f,
            availability,
            fails_during_faults,
            faults: o.faults.clone(),
            cluster: o.cluster.clone(),
            duration_ns: o.end,
            nwr,
            ghosts,
            transactions: None,
            explanation: None,
        };
        a.summary = a.summarize();
        a
    }

    /// A history that cannot be paired: unknown, with the reason.
    fn unpaired(history: &History, e: &HistoryError) -> Analysis {
        let mut a = Analysis {
            schema: SCHEMA,
            verdict: Verdict::Unknown,
            decided_by: Some(Check::CheckerError),
            summary: String::new(),
            counterexamples: Vec::new(),
            linearizability: None,
            checker_error: Some(e.to_string()),
            stats: Stats::default(),
            latency: Latency::default(),
            latency_by_f: BTreeMap::new(),
            availability: Availability::default(),
            fails_during_faults: 0,
            faults: Vec::new(),
            cluster: ClusterTimeline::default(),
            duration_ns: history.events.iter().map(|e| e.time).max().unwrap_or(0),
            nwr: None,
            ghosts: None,
            transactions: None,
            explanation: None,
        };
        a.summary = a.summarize();
        a
    }

    /// Reads `results.json`; a file from an older faultline gets its summary from the fields
    /// it had (its sections are otherwise as written; `faultline analyze` redoes them).
    pub fn from_json(text: &str) -> Result<Analysis, serde_json::Error> {
        let mut a: Analysis = serde_json::from_str(text)?;
        if a.summary.is_empty() {
            a.summary = a
                .checker_error
                .as_ref()
                .map(|e| format!("The history could not be checked: {e}."))
                .or_else(|| a.explanation.clone())
                .or_else(|| a.nwr.as_ref().and_then(|n| n.explanation.clone()))
                .or_else(|| a.linearizability.as_ref().map(|l| l.explanation.clone()))
                .unwrap_or_default();
        }
        Ok(a)
    }

    /// True when the verdict is `valid`.
    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Valid
    }

    /// True when the verdict is `invalid`.
    pub fn is_invalid(&self) -> bool {
        self.verdict == Verdict::Invalid
    }

    /// The paragraph stored as [`Analysis::summary`].
    fn summarize(&self) -> String {
        let keys = |n: usize| {
            if n == 1 {
                "the one key".to_string()
            } else {
                format!("all {n} keys")
            }
        };
        let mut s = match (self.verdict, self.decided_by, &self.transactions) {
            (_, Some(Check::CheckerError), _) => format!(
                "The history could not be checked: {}.",
                self.checker_error.as_deref().unwrap_or("unknown error")
            ),
            (_, _, Some(t)) => {
                let e = t.explanation().trim_end();
                let stop = if e.ends_with('.') { "" } else { "." };
                format!("{}: {e}{stop}", t.checker())
            }
            (Verdict::Invalid, Some(Check::Linearizability), _) => {
                let lin = self.linearizability.as_ref();
                let parts = lin.map_or(0, |l| l.partitions.len());
                let bad = lin.map_or(0, |l| {
                    l.partitions
                        .iter()
                        .filter(|p| p.verdict == LinVerdict::Illegal)
                        .count()
                });
                let head = if parts > 1 {
                    format!("Not linearizable: {bad} of {parts} keys have no legal order. ")
                } else {
                    "Not linearizable. ".to_string()
                };
                // The first key whose counterexample was shrunk (a hard key may not be).
                let why = self
                    .counterexamples
                    .iter()
                    .find(|c| c.culprit.is_some())
                    .or(self.counterexamples.first())
                    .map(|c| c.sentence.text.clone())
                    .or_else(|| lin.map(|l| l.explanation.clone()))
                    .unwrap_or_default();
                head + &why
            }
            (Verdict::Invalid, _, _) => {
                let lin = match self.linearizability.as_ref().map(|l| l.verdict) {
                    Some(LinVerdict::Linearizable) => "is linearizable",
                    _ => "could not be decided for linearizability",
                };
                let g = self.ghosts.as_ref();
                format!(
                    "Ghost writes: the history {lin} (an indeterminate write may take effect at any \
                     later time), but {}",
                    g.map(GhostReport::summary).unwrap_or_default()
                )
            }
            (Verdict::Valid, _, _) => {
                let l = self.linearizability.as_ref();
                format!(
                    "Linearizable: {} ({} operations) {} an order that respects real time.",
                    keys(l.map_or(0, |l| l.partitions.len())),
                    l.map_or(0, |l| l.ops),
                    if l.map_or(0, |l| l.partitions.len()) == 1 {
                        "has"
                    } else {
                        "have"
                    }
                )
            }
            (Verdict::Unknown, _, _) => self
                .linearizability
                .as_ref()
                .map(|l| {
                    let undecided: Vec<String> = l
                        .partitions
                        .iter()
                        .filter(|p| p.verdict == LinVerdict::Unknown)
                        .map(|p| p.key.clone().unwrap_or_else(|| "(all)".into()))
                        .collect();
                    format!(
                        "Undecided: the checker's time budget ran out before deciding {} of {} \
                         keys ({}); no anomaly was found in the rest.",
                        undecided.len(),
                        l.partitions.len(),
                        clip_list(&undecided, 8)
                    )
                })
                .unwrap_or_default(),
        };
        let fails = self.stats.total.fail;
        if fails > 0 && self.verdict != Verdict::Invalid {
            s += &format!(
                " {fails} operation{} failed definitely (fail: {} did not take effect), {} of them \
                 while a fault was active; during faults that is expected, not an anomaly.",
                plural(fails),
                if fails == 1 { "it" } else { "they" },
                self.fails_during_faults
            );
        }
        s
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn clip_list(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s += &format!(" and {} more", items.len() - n);
    }
    s
}

/// The `nwr` section: the staleness analysis of the run (with the PBS prediction from the run's
/// own latencies), its configuration and, when the run is invalid, the anomaly that explains
/// the minimal counterexample.
fn nwr_section(
    ops: &[Operation],
    q: &NwrConfig,
    verdict: Verdict,
    counterexamples: &[KeyExplanation],
) -> NwrSection {
    let stored = NwrOptions::default();
    // Every example is needed to find the one that explains the counterexample; only the
    // first few of each kind are stored.
    let all = NwrOptions {
        max_examples: usize::MAX,
        ..stored.clone()
    };
    let config = QuorumConfig::new(q.n, q.w, q.r, 0).ok();
    let mut nwr = crate::nwr::analyze_run(ops, config, &all, PbsOptions::default());
    let invalid = verdict == Verdict::Invalid;
    let culprit = invalid
        .then(|| explaining_anomaly(ops, counterexamples, &nwr))
        .flatten();
    let explanation = invalid.then(|| match &culprit {
        Some((a, how)) => {
            // The description opens a sentence ("On key 0, read ..."); here it follows a colon.
            let mut d = a.description.trim_end_matches('.').to_string();
            if d.starts_with("On key") {
                d.replace_range(..1, "o");
            }
            format!(
                "not linearizable because of a {}: {d} ({how})",
                a.kind.name()
            )
        }
        None => "not linearizable, but the staleness analysis found no stale read, new-old \
                 inversion, lost write or session violation; see the counterexample"
            .to_owned(),
    });
    // The anomaly tied to the counterexample is often the first of many; a lost write late in
    // the run matters as much, so the other kinds found are named too.
    let others: Vec<String> = [
        (AnomalyKind::LostWrite, nwr.lost_writes, "lost writes"),
        (
            AnomalyKind::NewOldInversion,
            nwr.new_old_inversions,
            "new-old inversions",
        ),
        (AnomalyKind::StaleRead, nwr.stale, "stale reads"),
        (
            AnomalyKind::ReadYourWrites,
            nwr.read_your_writes_violations,
            "read-your-writes violations",
        ),
        (
            AnomalyKind::MonotonicRead,
            nwr.monotonic_read_violations,
            "monotonic-read violations",
        ),
    ]
    .iter()
    .filter(|(_, n, _)| *n > 0)
    .map(|(k, n, name)| {
        let also = culprit.as_ref().is_some_and(|(a, _)| a.kind == *k);
        format!("{n} {name}{}", if also { " in all" } else { "" })
    })
    .collect();
    let explanation = explanation.map(|e| {
        if others.is_empty() {
            e
        } else {
            format!("{e}. In this run: {}.", others.join(", "))
        }
    });
    let verdict_anomaly = culprit.map(|(a, how)| VerdictAnomaly {
        name: a.kind.name().to_string(),
        found_by: how.to_string(),
        anomaly: a,
    });
    let mut kept = std::collections::HashMap::new();
    nwr.anomalies.retain(|a| {
        let n = kept.entry(a.kind).or_insert(0usize);
        *n += 1;
        *n <= stored.max_examples
    });
    nwr.options = stored;
    NwrSection {
        analysis: nwr,
        config: Some(NwrConfig {
            intersecting: q.w + q.r > q.n,
            ..q.clone()
        }),
        explanation,
        verdict_anomaly,
    }
}

/// The staleness anomaly that best explains an illegal verdict, and how it was tied to it.
///
/// Tried in order, most severe kind first within each step: an anomaly whose anomalous (last)
/// op is the minimal counterexample's culprit — the op that really cannot be placed; then
/// one involving any op of a minimal counterexample; then the anomaly on that key nearest in
/// time to the culprit; failing all, the run's worst.
fn explaining_anomaly(
    ops: &[Operation],
    counterexamples: &[KeyExplanation],
    nwr: &NwrAnalysis,
) -> Option<(Anomaly, &'static str)> {
    let kinds: Vec<_> = nwr.worst_examples().iter().map(|a| a.kind).collect();
    let first = |pred: &dyn Fn(&Anomaly) -> bool| {
        kinds
            .iter()
            .find_map(|k| nwr.anomalies.iter().find(|a| a.kind == *k && pred(a)))
            .cloned()
    };
    // Anomalies name ops by id in `ops`; the counterexamples by invoke index.
    let id_of = |invoke: u64| ops.iter().find(|o| o.invoke_index == invoke).map(|o| o.id);
    for cx in counterexamples {
        let culprit: Option<usize> = cx.culprit().and_then(|c| id_of(c.invoke_index));
        let members: HashSet<usize> = cx
            .ops
            .iter()
            .filter_map(|o| id_of(o.invoke_index))
            .collect();
        if let Some(c) = culprit {
            if let Some(a) = first(&|a| a.ops.last() == Some(&c)) {
                return Some((a, "the operation that cannot be placed"));
            }
        }
        if let Some(a) = first(&|a| a.ops.iter().any(|o| members.contains(o))) {
            return Some((a, "it involves an operation of the minimal counterexample"));
        }
        let when = cx.culprit().map(|c| c.call);
        let near = nwr
            .anomalies
            .iter()
            .filter(|a| a.key == cx.key)
            .min_by_key(|a| when.map_or(0, |t| a.time.abs_diff(t)));
        if let Some(a) = near {
            return Some((
                a.clone(),
                "the anomaly on the key that cannot be linearized closest in time to the \
                 operation that cannot be placed",
            ));
        }
    }
    first(&|_| true).map(|a| (a, "the worst anomaly of the run"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, Process};
    use serde_json::json;

    fn ev(i: u64, p: u64, kind: EventType, f: &str, v: serde_json::Value) -> Event {
        Event {
            index: i,
            time: i * 10_000_000,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key: None,
            value: v,
            node: None,
            error: None,
        }
    }

    fn analyze(evs: &[Event]) -> Analysis {
        Analysis::new(
            &History::from_events(evs.to_vec()),
            &AnalysisOptions::default(),
        )
    }

    #[test]
    fn stale_read_is_invalid_and_roundtrips() {
        use EventType::*;
        let evs = vec![
            ev(0, 0, Invoke, "write", json!(1)),
            ev(1, 0, Ok, "write", json!(1)),
            ev(2, 1, Invoke, "read", json!(null)),
            ev(3, 1, Ok, "read", json!(null)),
        ];
        let a = analyze(&evs);
        assert_eq!(a.verdict, Verdict::Invalid);
        assert_eq!(a.decided_by, Some(Check::Linearizability));
        assert_eq!(a.counterexamples.len(), 1);
        let text = serde_json::to_string(&a).unwrap();
        let back = Analysis::from_json(&text).unwrap();
        // Everything but the checker's timings (floats need not survive JSON bit for bit).
        assert_eq!(
            (
                &back.summary,
                &back.counterexamples,
                &back.stats,
                &back.cluster
            ),
            (&a.summary, &a.counterexamples, &a.stats, &a.cluster)
        );
        let good = analyze(&evs[..2]);
        assert!(good.is_valid());
        assert!(good.ghosts.is_none());
        let text = serde_json::to_string(&good).unwrap();
        assert!(
            !text.contains("ghosts"),
            "empty ghost reports are not stored: {text}"
        );
    }

    #[test]
    fn ghost_makes_a_linearizable_history_invalid() {
        use EventType::*;
        let mut evs = vec![
            ev(0, 5, Invoke, "write", json!(17)),
            ev(1, 5, Info, "write", json!(17)),
            ev(2, 2, Invoke, "write", json!(42)),
            ev(3, 2, Ok, "write", json!(42)),
            ev(4, 3, Invoke, "read", json!(null)),
            ev(5, 3, Ok, "read", json!(42)),
            ev(6, 4, Invoke, "read", json!(null)),
            ev(7, 4, Ok, "read", json!(17)),
        ];
        evs[1].error = Some("timeout".into());
        let a = analyze(&evs);
        assert_eq!(
            a.linearizability.as_ref().map(|l| l.verdict),
            Some(LinVerdict::Linearizable)
        );
        assert_eq!(a.verdict, Verdict::Invalid);
        assert_eq!(a.decided_by, Some(Check::Ghosts));
        assert!(
            a.summary.contains("ghost") && a.summary.contains("is linearizable"),
            "{}",
            a.summary
        );
        let back = Analysis::from_json(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.ghosts.map(|g| g.count), Some(1));
    }

    #[test]
    fn valid_run_with_fails_says_they_are_expected() {
        use EventType::*;
        let evs = vec![
            ev(0, 0, Invoke, "write", json!(1)),
            ev(1, 0, Fail, "write", json!(1)),
            ev(2, 1, Invoke, "read", json!(null)),
            ev(3, 1, Ok, "read", json!(null)),
        ];
        let a = analyze(&evs);
        assert!(a.is_valid());
        assert_eq!(a.stats.total.fail, 1);
        assert!(
            a.summary.contains("1 operation failed definitely"),
            "{}",
            a.summary
        );
        assert!(a.summary.contains("0 of them while a fault was active"));
    }

    /// A results.json written before the typed sections (schema 1): verdict string, `nwr` as
    /// free JSON with `config`/`explanation`, `explanation` at the top, faults with raw values.
    #[test]
    fn old_results_still_load() {
        let old = json!({
            "verdict": "invalid",
            "stats": {"total": {"invoked": 2, "ok": 2, "fail": 0, "info": 0}, "by_f": {}},
            "latency": {"count": 2, "p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0, "max_ms": 1.0},
            "availability": {"during_faults": {"ok": 0, "total": 0, "ratio": null},
                             "outside_faults": {"ok": 2, "total": 2, "ratio": 1.0}},
            "faults": [{"kind": "partition", "start": 5, "stop": 9, "value": {"n1": ["n2"]}},
                       {"kind": "kill", "start": 6, "value": {"type": "kill", "target": {"nodes": ["n3"]}}}],
            "duration_ns": 100,
            "explanation": "invalid because of ghost writes",
        });
        let a = Analysis::from_json(&old.to_string()).unwrap();
        assert_eq!(a.schema, 0);
        assert_eq!(a.verdict, Verdict::Invalid);
        assert_eq!(a.summary, "invalid because of ghost writes");
        assert!(a.faults[0].value.fault().is_none());
        assert_eq!(a.faults[1].describe(), "kill n3");
        assert!(a.cluster.rows.is_empty());
    }
}
