//! `faultline compare`: one page putting several runs side by side — verdicts, why, availability
//! during faults, latency and throughput — for comparing protocol variants.
//!
//! Every figure and every "why" comes from each run's `results.json` (the checkers' typed
//! analysis), the same text its own page shows, so a run tells one story everywhere.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use checkers::layout::{self, RunDir};

use crate::html::{esc, ms, page, secs, value_text};
use crate::run::{verdict_css, verdict_label};
use crate::summary::RunSummary;
use crate::ReportError;

/// Renders the comparison page of the given run directories, in the order given.
///
/// Reads each run's `results.json` and `test.json` (a run without results is listed as not
/// checked). Links point at each run's `index.html` relative to `out_dir` when possible.
pub fn render_compare(run_dirs: &[PathBuf], out_dir: &Path) -> Result<String, ReportError> {
    let mut rows = Vec::new();
    for dir in run_dirs {
        let rd = RunDir::new(dir);
        if !rd.history().is_file() && !rd.results().is_file() {
            return Err(ReportError::NoHistory(dir.clone()));
        }
        let analysis = crate::run::read_analysis(&rd)?;
        let test: Option<serde_json::Value> = std::fs::read(rd.test())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let name = test
            .as_ref()
            .and_then(|t| t.get("name")?.as_str().map(str::to_owned));
        let s = RunSummary::from_analysis(dir, name, analysis.as_ref());
        let config = test
            .as_ref()
            .map(|t| {
                [
                    "engine",
                    "workload",
                    "nemesis",
                    "nodes",
                    "kvnode_args",
                    "seed",
                ]
                .iter()
                .filter_map(|k| t.get(*k).map(|v| format!("{k}={}", value_text(v))))
                .collect::<Vec<_>>()
                .join(", ")
            })
            .unwrap_or_default();
        rows.push((dir.clone(), s, config));
    }
    let mut b = String::new();
    let _ = write!(b, "<h1>Comparison of {} runs</h1>", rows.len());
    b.push_str(
        "<table id=\"compare\"><tr><th>verdict</th><th>run</th><th>config</th><th class=\"num\">ops</th>\
         <th class=\"num\">ok / fail / info</th><th class=\"num\">ok ops/s</th><th class=\"num\">ok during faults</th>\
         <th class=\"num\">ok outside faults</th><th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">max</th>\
         <th class=\"num\">faults</th><th class=\"num\">duration</th></tr>",
    );
    let pct = |x: Option<f64>| {
        x.map(|a| format!("{:.1} %", a * 100.0))
            .unwrap_or_else(|| "–".into())
    };
    let lat = |x: Option<f64>| x.map(ms).unwrap_or_else(|| "–".into());
    for (dir, s, config) in &rows {
        let href = pathdiff(dir, out_dir);
        let _ = write!(
            b,
            "<tr><td><span class=\"dot {css}\"></span>{label}</td><td><a href=\"{href}/{index}\">{name} {ts}</a></td>\
             <td><code>{config}</code></td><td class=\"num\">{ops}</td><td class=\"num\">{ok} / {fail} / {info}</td>\
             <td class=\"num\">{rate:.1}</td><td class=\"num\">{during}</td><td class=\"num\">{outside}</td>\
             <td class=\"num\">{p50}</td><td class=\"num\">{p99}</td><td class=\"num\">{max}</td><td class=\"num\">{faults}</td>\
             <td class=\"num\">{d}</td></tr>",
            css = verdict_css(s.verdict),
            label = verdict_label(s.verdict),
            href = esc(&href),
            index = layout::INDEX,
            name = esc(&s.name),
            ts = esc(&s.timestamp),
            config = esc(config),
            ops = s.ops,
            ok = s.ok,
            fail = s.fail,
            info = s.info,
            rate = s.ok_per_s,
            during = pct(s.availability_during_faults),
            outside = pct(s.availability_outside_faults),
            p50 = lat(s.p50_ms),
            p99 = lat(s.p99_ms),
            max = lat(s.max_ms),
            faults = s.faults,
            d = secs(s.duration_ns),
        );
    }
    b.push_str("</table><h2>Why</h2>");
    for (dir, s, _) in &rows {
        let href = pathdiff(dir, out_dir);
        let link = if s.verdict == Some(checkers::analysis::Verdict::Invalid) {
            format!(
                " <a href=\"{}/{}\">counterexample</a>",
                esc(&href),
                layout::COUNTEREXAMPLE
            )
        } else {
            String::new()
        };
        let _ = write!(
            b,
            "<p class=\"why {}\"><b>{} {}</b> ({}): {}{link}</p>",
            verdict_css(s.verdict),
            esc(&s.name),
            esc(&s.timestamp),
            verdict_label(s.verdict),
            esc(if s.why.is_empty() {
                "not checked: run faultline analyze"
            } else {
                &s.why
            })
        );
    }
    b.push_str("<h2>Throughput and latency</h2><div style=\"display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:10px\">");
    for (dir, s, _) in &rows {
        let href = pathdiff(dir, out_dir);
        let _ = write!(
            b,
            "<figure style=\"margin:0\"><figcaption>{} {}</figcaption>\
             <img class=\"plot\" src=\"{h}/{rate}\" alt=\"rate\"><img class=\"plot\" src=\"{h}/{lq}\" alt=\"latency quantiles\"></figure>",
            esc(&s.name),
            esc(&s.timestamp),
            h = esc(&href),
            rate = layout::RATE,
            lq = layout::LATENCY_QUANTILES,
        );
    }
    b.push_str("</div>");
    Ok(page("faultline comparison", &b))
}

/// A relative path from `base` to `target` (both made absolute), with `/` separators.
fn pathdiff(target: &Path, base: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let (t, b) = (abs(target), abs(base));
    let tc: Vec<_> = t.components().collect();
    let bc: Vec<_> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); bc.len() - common];
    parts.extend(
        tc[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}
