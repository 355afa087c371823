//! What is done with a finished run: its history checked into `results.json`, the report
//! rendered, the summary printed and the exit code chosen.
//!
//! The judging itself is `checkers::analysis::Analysis::new` (one constructor decides the
//! verdict); this module only finds the run's settings in `test.json`, reads the history,
//! writes the analysis, and prints it.

use crate::plan::System;
use crate::rundir::layout;
use anyhow::{Context, Result};
use checkers::analysis::{Analysis, AnalysisOptions, NwrConfig, Observed, Verdict};
use checkers::bank::BankOptions;
use checkers::counter::CounterOptions;
use checkers::elle;
use checkers::history::History;
use checkers::linearizable::CheckOptions;
use checkers::model::ModelKind;
use checkers::set::SetOptions;
use checkers::txn_section::TxnCheck;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use workloads::Workload;

/// Reads `history.jsonl`; a truncated last line (a crashed writer) is dropped with a note.
pub fn read_history(path: &Path) -> Result<History> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (history, truncated) = checkers::analysis::read_jsonl(std::io::BufReader::new(f))
        .with_context(|| format!("{}", path.display()))?;
    if let Some(t) = truncated {
        eprintln!(
            "faultline: note: {}:{}: the last line was cut off mid-write and is ignored",
            path.display(),
            t.line()
        );
    }
    Ok(history)
}

/// Checks a run directory's history and writes `results.json`; returns the analysis and the
/// paired history (for the report), or `None` for a history that cannot be paired.
///
/// Runs of the NWR engine (per `test.json`) are checked against the plain register model (the
/// engine offers no cas) and get the `nwr` staleness section.
pub fn analyze_dir(
    run_dir: &Path,
    check_timeout: Duration,
) -> Result<(Analysis, Option<Observed>)> {
    let dir = layout::RunDir::new(run_dir);
    let history = read_history(&dir.history())?;
    // The run's settings, read once for every decision below (absent for imported runs).
    let test = recorded_test(run_dir);
    let test = test.as_ref();
    let nwr = nwr_run_config(test);
    let opts = AnalysisOptions {
        check: CheckOptions {
            model: Some(if nwr.is_some() {
                ModelKind::Register
            } else {
                ModelKind::CasRegister
            }),
            timeout: Some(check_timeout),
            partition: true,
            ..CheckOptions::default()
        },
        nwr,
        minimize: check_timeout.min(Duration::from_secs(20)),
        txn: txn_check(test, check_timeout),
        ghosts: run_system(test) == System::Kvnode,
    };
    let (analysis, observed) = Analysis::with_observed(&history, &opts);
    let text = serde_json::to_string_pretty(&analysis)?;
    std::fs::write(dir.results(), text)
        .with_context(|| format!("cannot write {}", dir.results().display()))?;
    Ok((analysis, observed.ok()))
}

/// Renders the HTML report (from the analysis just made, when given, instead of re-reading
/// the run); failures are reported, not fatal.
pub fn render_report(run_dir: &Path, analyzed: Option<(&Analysis, &Observed)>) -> Option<PathBuf> {
    let rendered = match analyzed {
        Some((a, o)) => report::Run::from_parts(run_dir, a.clone(), o.clone())
            .and_then(|run| report::render_loaded(&run)),
        None => report::render_run(run_dir),
    };
    match rendered {
        Ok(r) => r.index().map(Path::to_path_buf),
        Err(e) => {
            eprintln!("faultline: report not rendered: {e}");
            None
        }
    }
}

/// 0 valid, 1 invalid, 2 unknown.
pub fn exit_code(a: &Analysis) -> ExitCode {
    match a.verdict {
        Verdict::Valid => ExitCode::from(0),
        Verdict::Invalid => ExitCode::from(1),
        Verdict::Unknown => ExitCode::from(2),
    }
}

/// `text` wrapped at about `width` columns, every line after the first indented by `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = 0usize;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line > 0 && line + 1 + len > width {
            out.push('\n');
            out.push_str(indent);
            line = indent.len();
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += len;
    }
    out
}

/// Prints the verdict, the sentence that says why, and key figures.
pub fn print_summary(a: &Analysis, run_dir: &Path, report: Option<&Path>) {
    let s = &a.stats.total;
    println!();
    println!("verdict: {}", a.verdict.name().to_uppercase());
    println!("  {}", wrap(&a.summary, 96, "  "));
    // The other failing keys, each with its own sentence.
    for k in a.counterexamples.iter().skip(1).take(4) {
        let key = k.key.as_deref().unwrap_or("(all)");
        println!("  key {key}: {}", wrap(&k.sentence.text, 90, "    "));
    }
    if a.counterexamples.len() > 5 {
        println!(
            "  ... {} more keys in the report",
            a.counterexamples.len() - 5
        );
    }
    for g in a.ghosts.iter().flat_map(|g| g.ghosts.iter().take(5)) {
        println!("  ghost: {}", wrap(&g.explanation, 90, "    "));
    }
    for e in a.transactions.iter().flat_map(|t| t.examples(5)) {
        println!("  - {}", wrap(&e, 90, "    "));
    }
    print_nwr(a);
    println!(
        "ops: {} invoked, {} ok, {} fail, {} info",
        s.invoked, s.ok, s.fail, s.info
    );
    for (f, c) in &a.stats.by_f {
        println!(
            "  {f:<6} ok {:>6}  fail {:>6}  info {:>6}",
            c.ok, c.fail, c.info
        );
    }
    println!(
        "latency (ok): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        a.latency.p50_ms, a.latency.p99_ms, a.latency.max_ms
    );
    let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.0}%", r * 100.0));
    println!(
        "availability: {} ok during faults, {} outside",
        pct(a.availability.during_faults.ratio),
        pct(a.availability.outside_faults.ratio)
    );
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in a.faults.iter().filter(|f| f.failed.is_none()) {
        *kinds.entry(f.kind.as_str()).or_default() += 1;
    }
    let faults: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    println!(
        "faults: {}",
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(", ")
        }
    );
    println!("run: {}", run_dir.display());
    if let Some(r) = report {
        println!("report: {}", r.display());
    }
}

/// The checker of a transactional workload's run (per `test.json`), `None` for the register
/// workloads. List-append transactions are judged against the run's `isolation` (from
/// `--isolation`); runs recorded without one, against strict serializability: what Raft and
/// Multi-Paxos promise by applying each one as a log entry (NWR promises nothing, and the
/// point of running it is to see what that costs). Bank reads must show the workload's total
/// over exactly its accounts; a set read must be fresh unless the engine is NWR.
pub fn txn_check(test: Option<&Value>, check_timeout: Duration) -> Option<TxnCheck> {
    let test = test?;
    let workload: Workload = test.get("workload")?.as_str()?.parse().ok()?;
    let nwr = test.get("engine").and_then(Value::as_str) == Some("nwr");
    Some(match workload {
        Workload::Register | Workload::Kv => return None,
        Workload::ListAppend => TxnCheck::Elle(elle::CheckOptions {
            model: test
                .get("isolation")
                .and_then(|m| serde_json::from_value(m.clone()).ok())
                .unwrap_or(elle::ConsistencyModel::StrictSerializable),
            timeout: Some(check_timeout),
            ..elle::CheckOptions::default()
        }),
        Workload::Bank => TxnCheck::Bank(BankOptions {
            total: Some(workloads::bank::total()),
            accounts: Some(workloads::bank::accounts()),
            ..BankOptions::default()
        }),
        Workload::Set => TxnCheck::Set(SetOptions {
            require_fresh_reads: !nwr,
            ..SetOptions::default()
        }),
        Workload::Counter => TxnCheck::Counter(CounterOptions::default()),
    })
}

/// A run directory's `test.json`, `None` when it is missing or unreadable (imported runs).
pub fn recorded_test(run_dir: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(run_dir.join(layout::TEST)).ok()?).ok()
}

/// The system a run tested, per its `test.json` (kvnode for runs recorded before `--system`
/// existed, or without `test.json`).
pub fn run_system(test: Option<&Value>) -> System {
    test.and_then(|t| t.get("system"))
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or(System::Kvnode)
}

/// The quorum settings of an NWR run directory, `None` for other engines or without
/// `test.json`. Runs recorded before `--nwr` existed fall back to `--n/--w/--r/--clock` in
/// their kvnode arguments, then to kvnode's defaults (N = nodes, W = R = a majority).
pub fn nwr_run_config(test: Option<&Value>) -> Option<NwrConfig> {
    let test = test?;
    if test.get("engine").and_then(Value::as_str) != Some("nwr") {
        return None;
    }
    if let Some(q) = test.get("nwr").filter(|q| q.is_object()) {
        let num = |k: &str| q.get(k).and_then(Value::as_u64).map(|v| v as u32);
        let (n, w, r) = (num("n")?, num("w")?, num("r")?);
        return Some(NwrConfig {
            n,
            w,
            r,
            clock: q
                .get("clock")
                .and_then(Value::as_str)
                .unwrap_or("hybrid")
                .into(),
            read_repair: q
                .get("read_repair")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            read_writeback: q
                .get("read_writeback")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            intersecting: w + r > n,
        });
    }
    let args: Vec<&str> = test
        .get("kvnode_args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let flag = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .and_then(|i| args.get(i + 1))
            .copied()
    };
    let nodes = test
        .get("nodes")
        .and_then(Value::as_array)
        .map_or(1, Vec::len) as u32;
    let n = flag("--n").and_then(|v| v.parse().ok()).unwrap_or(nodes);
    let q = |name: &str| flag(name).and_then(|v| v.parse().ok()).unwrap_or(n / 2 + 1);
    let (w, r) = (q("--w"), q("--r"));
    Some(NwrConfig {
        n,
        w,
        r,
        clock: flag("--clock").unwrap_or("hybrid").into(),
        read_repair: args.contains(&"--read-repair"),
        read_writeback: args.contains(&"--read-writeback"),
        intersecting: w + r > n,
    })
}

/// Prints the NWR figures and, for an invalid run, which anomaly made it so.
fn print_nwr(a: &Analysis) {
    let Some(section) = &a.nwr else { return };
    if let Some(e) = &section.explanation {
        println!("  anomaly: {}", wrap(e, 90, "    "));
    }
    let n = &section.analysis;
    let t = |t: Option<f64>| t.map_or("never".to_owned(), |t| format!("{t:.1} ms"));
    let cfg = section.config.as_ref();
    println!(
        "nwr: N={} W={} R={} ({} clock): {} of {} reads stale ({:.2}%), max k {}, 99% fresh after {} (PBS predicts {})",
        cfg.map_or("?".into(), |c| c.n.to_string()),
        cfg.map_or("?".into(), |c| c.w.to_string()),
        cfg.map_or("?".into(), |c| c.r.to_string()),
        cfg.map_or("?", |c| c.clock.as_str()),
        n.stale,
        n.reads,
        n.stale_fraction * 100.0,
        n.max_k,
        t(n.t99_fresh_ms),
        t(n.prediction.as_ref().and_then(|p| p.t99_ms)),
    );
    println!(
        "  lost writes {} of {}, new-old inversions {}, monotonic-read violations {}, read-your-writes violations {}",
        n.lost_writes,
        n.acknowledged_writes,
        n.new_old_inversions,
        n.monotonic_read_violations,
        n.read_your_writes_violations
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_without_cutting() {
        let text = "one two three four five six seven eight nine ten";
        let w = wrap(text, 14, "  ");
        assert_eq!(
            w,
            "one two three\n  four five\n  six seven\n  eight nine\n  ten"
        );
        assert_eq!(w.split_whitespace().collect::<Vec<_>>().join(" "), text);
    }
}
