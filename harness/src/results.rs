//! Run directories and what is done with a finished run: checking its stored history into
//! `results.json`, rendering the report, the `results/latest` link, the printed summary and
//! the exit code.

use crate::plan::NwrSettings;
use anyhow::{Context, Result};
use checkers::analysis::{Analysis, RESULTS_FILE};
use checkers::history::{Event, History, JsonlReader};
use checkers::linearizable::CheckOptions;
use checkers::model::ModelKind;
use checkers::nwr::{Anomaly, AnomalyKind, NwrAnalysis, NwrOptions};
use checkers::quorum::{PbsOptions, QuorumConfig};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `YYYYMMDDTHHMMSSZ` (UTC) for a run directory name.
pub fn timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Points `results/latest` at `run_dir` (relative link), replacing an older link.
pub fn link_latest(results: &Path, run_dir: &Path) -> Result<()> {
    let link = results.join("latest");
    let target = run_dir
        .strip_prefix(results)
        .map(PathBuf::from)
        .unwrap_or_else(|_| run_dir.to_path_buf());
    let tmp = results.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)?;
    std::fs::rename(&tmp, &link).context("cannot update results/latest")?;
    Ok(())
}

/// Reads `history.jsonl`; a truncated last line (a crashed writer) is dropped.
pub fn read_history(path: &Path) -> Result<Vec<Event>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut events = Vec::new();
    for item in JsonlReader::new(std::io::BufReader::new(f)) {
        match item {
            Ok((_, ev)) => events.push(ev),
            Err(checkers::history::HistoryError::Truncated { .. }) => break,
            Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
        }
    }
    Ok(events)
}

/// Checks a run directory's history and writes `results.json`.
///
/// Runs of the NWR engine (per `test.json`) are checked against the plain register model (the
/// engine offers no cas) and get the `nwr` staleness section, see [`nwr_section`].
pub fn analyze_dir(run_dir: &Path, check_timeout: Duration) -> Result<Analysis> {
    let events = read_history(&run_dir.join("history.jsonl"))?;
    let quorum = nwr_run_config(run_dir);
    let opts = CheckOptions {
        model: Some(if quorum.is_some() {
            ModelKind::Register
        } else {
            ModelKind::CasRegister
        }),
        timeout: Some(check_timeout),
        partition: true,
        ..CheckOptions::default()
    };
    let mut analysis = Analysis::of_events(&events, &opts);
    if let Some(q) = &quorum {
        analysis.nwr = Some(nwr_section(&events, q, &analysis));
    }
    let text = serde_json::to_string_pretty(&analysis)?;
    std::fs::write(run_dir.join(RESULTS_FILE), text).context("cannot write results.json")?;
    Ok(analysis)
}

/// Renders the HTML report; failures are reported, not fatal.
pub fn render_report(run_dir: &Path) -> Option<PathBuf> {
    match report::render_run(run_dir) {
        Ok(r) => r.index().map(Path::to_path_buf),
        Err(e) => {
            eprintln!("faultline: report not rendered: {e}");
            None
        }
    }
}

/// 0 valid, 1 invalid, 2 unknown.
pub fn exit_code(a: &Analysis) -> ExitCode {
    match a.verdict.as_str() {
        "valid" => ExitCode::from(0),
        "invalid" => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

/// Prints the verdict and key figures.
pub fn print_summary(a: &Analysis, run_dir: &Path, report: Option<&Path>) {
    let s = &a.stats.total;
    println!();
    println!("verdict: {}", a.verdict.to_uppercase());
    if let Some(l) = &a.linearizability {
        println!("  linearizability ({}): {}", l.model, l.explanation);
    }
    if let Some(e) = &a.checker_error {
        println!("  checker error: {e}");
    }
    if let Some(why) = &a.explanation {
        println!("  {why}");
    }
    for g in a.ghosts.iter().flat_map(|g| g.ghosts.iter().take(5)) {
        println!("  ghost: {}", g.explanation);
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
    for f in &a.faults {
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

/// The quorum settings of an NWR run directory, `None` for other engines or without
/// `test.json`. Runs recorded before `--nwr` existed fall back to `--n/--w/--r/--clock` in
/// their kvnode arguments, then to kvnode's defaults (N = nodes, W = R = a majority).
pub fn nwr_run_config(run_dir: &Path) -> Option<NwrSettings> {
    let test: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("test.json")).ok()?).ok()?;
    if test.get("engine").and_then(Value::as_str) != Some("nwr") {
        return None;
    }
    if let Some(q) = test.get("nwr").filter(|q| q.is_object()) {
        let num = |k: &str| q.get(k).and_then(Value::as_u64).map(|v| v as u32);
        return Some(NwrSettings {
            n: num("n")?,
            w: num("w")?,
            r: num("r")?,
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
    Some(NwrSettings {
        n,
        w: q("--w"),
        r: q("--r"),
        clock: flag("--clock").unwrap_or("hybrid").into(),
        read_repair: args.contains(&"--read-repair"),
        read_writeback: args.contains(&"--read-writeback"),
    })
}

/// The `nwr` section of `results.json`: [`checkers::nwr::analyze_run`] with the run's N/W/R
/// (measured staleness plus the PBS prediction from the run's own latencies), the config,
/// and, when linearizability failed, `explanation`: which anomaly, in words.
pub fn nwr_section(events: &[Event], q: &NwrSettings, analysis: &Analysis) -> Value {
    let ops = match History::from_events(events.to_vec()).operations() {
        Ok(ops) => ops,
        Err(e) => return json!({ "error": format!("history cannot be paired: {e}") }),
    };
    let stored = NwrOptions::default();
    // Every example is needed to find the one that explains the counterexample; only the
    // first few of each kind are stored.
    let all = NwrOptions {
        max_examples: usize::MAX,
        ..stored.clone()
    };
    let config = QuorumConfig::new(q.n, q.w, q.r, 0).ok();
    let mut nwr = checkers::nwr::analyze_run(&ops, config, &all, PbsOptions::default());
    let culprit = analysis
        .is_invalid()
        .then(|| explaining_anomaly(analysis, &nwr))
        .flatten();
    let explanation = analysis.is_invalid().then(|| match &culprit {
        Some((a, how)) => format!(
            "not linearizable because of a {}: {} ({how})",
            a.kind.name(),
            a.description.trim_end_matches('.')
        ),
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
    let anomaly = culprit.map(|(a, how)| {
        let mut v = serde_json::to_value(&a).unwrap_or(Value::Null);
        v["name"] = json!(a.kind.name());
        v["found_by"] = json!(how);
        v
    });
    let mut kept = std::collections::HashMap::new();
    nwr.anomalies.retain(|a| {
        let n = kept.entry(a.kind).or_insert(0usize);
        *n += 1;
        *n <= stored.max_examples
    });
    nwr.options = stored;
    let mut v = nwr.to_json();
    v["config"] = json!({
        "n": q.n,
        "w": q.w,
        "r": q.r,
        "clock": q.clock,
        "read_repair": q.read_repair,
        "intersecting": q.w + q.r > q.n,
    });
    if let Some(e) = explanation {
        v["explanation"] = json!(e);
    }
    if let Some(a) = anomaly {
        v["verdict_anomaly"] = a;
    }
    v
}

/// The staleness anomaly that best explains an illegal verdict, and how it was tied to it.
///
/// The counterexample names the ops that could not be linearized. Illegal parts are tried in
/// the checker's order, so the anomaly is on the key the verdict's explanation names: first an
/// anomaly (most severe kind first) whose anomalous op is one the checker could not place, then
/// one involving such an op, then the one on that key nearest in time; failing all parts, the
/// run's worst.
fn explaining_anomaly(analysis: &Analysis, nwr: &NwrAnalysis) -> Option<(Anomaly, &'static str)> {
    let lin = analysis.linearizability.as_ref()?;
    let kinds: Vec<_> = nwr.worst_examples().iter().map(|a| a.kind).collect();
    let first = |pred: &dyn Fn(&Anomaly) -> bool| {
        kinds
            .iter()
            .find_map(|k| nwr.anomalies.iter().find(|a| a.kind == *k && pred(a)))
            .cloned()
    };
    let illegal = lin
        .partitions
        .iter()
        .filter(|p| p.verdict == checkers::linearizable::Verdict::Illegal);
    for p in illegal {
        let stuck: std::collections::HashSet<usize> = p
            .counterexample
            .iter()
            .flat_map(|c| c.unplaceable.iter().map(|o| o.op.id))
            .collect();
        if let Some(a) = first(&|a| a.ops.last().is_some_and(|o| stuck.contains(o))) {
            return Some((
                a,
                "the operation the linearizability checker could not place",
            ));
        }
        if let Some(a) = first(&|a| a.ops.iter().any(|o| stuck.contains(o))) {
            return Some((
                a,
                "it involves an operation the linearizability checker could not place",
            ));
        }
        // The checker's stuck ops are not an anomaly by themselves (the order that makes them
        // illegal runs through other ops); the anomaly on the key closest in time to them
        // is the likeliest cause a reader can follow.
        let when = p
            .counterexample
            .iter()
            .flat_map(|c| c.unplaceable.iter().map(|o| o.op.call))
            .min();
        let near = nwr
            .anomalies
            .iter()
            .filter(|a| a.key == p.key)
            .min_by_key(|a| when.map_or(0, |t| a.time.abs_diff(t)));
        if let Some(a) = near {
            return Some((
                a.clone(),
                "the anomaly on the key that cannot be linearized closest in time to the \
                 operations the checker could not place",
            ));
        }
    }
    first(&|_| true).map(|a| (a, "the worst anomaly of the run"))
}

/// Prints the NWR figures and, for an invalid run, which anomaly made it so.
fn print_nwr(a: &Analysis) {
    let Some(v) = &a.nwr else { return };
    if let Some(e) = v.get("explanation").and_then(Value::as_str) {
        println!("  anomaly: {e}");
    }
    let Ok(n) = NwrAnalysis::from_json(v) else {
        return;
    };
    let t = |t: Option<f64>| t.map_or("never".to_owned(), |t| format!("{t:.1} ms"));
    let cfg = |k: &str| {
        v.pointer(&format!("/config/{k}"))
            .map(|x| x.to_string())
            .unwrap_or_default()
    };
    println!(
        "nwr: N={} W={} R={} ({} clock): {} of {} reads stale ({:.2}%), max k {}, 99% fresh after {} (PBS predicts {})",
        cfg("n"),
        cfg("w"),
        cfg("r"),
        v.pointer("/config/clock").and_then(Value::as_str).unwrap_or("?"),
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
    fn timestamps() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_464_410);
        assert_eq!(timestamp(t), "20261123T200650Z");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000Z");
    }
}
