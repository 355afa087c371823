//! Run directories and what is done with a finished run: checking its stored history into
//! `results.json`, rendering the report, the `results/latest` link, the printed summary and
//! the exit code.

use anyhow::{Context, Result};
use checkers::analysis::{Analysis, RESULTS_FILE};
use checkers::history::{Event, JsonlReader};
use checkers::linearizable::CheckOptions;
use checkers::model::ModelKind;
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
pub fn analyze_dir(run_dir: &Path, check_timeout: Duration) -> Result<Analysis> {
    let events = read_history(&run_dir.join("history.jsonl"))?;
    let opts = CheckOptions {
        model: Some(ModelKind::CasRegister),
        timeout: Some(check_timeout),
        partition: true,
        ..CheckOptions::default()
    };
    let analysis = Analysis::of_events(&events, &opts);
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
