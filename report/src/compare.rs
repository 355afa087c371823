//! `faultline compare`: one page putting several runs side by side — verdicts, anomalies,
//! availability during faults, latency and throughput — for comparing protocol variants.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::html::{dur, esc, page, secs};
use crate::run::Run;
use crate::summary::RunSummary;
use crate::ReportError;

/// Renders the comparison page of the given run directories, in the order given.
///
/// Each run's history is loaded to compute its figures (the stored summary is not trusted to be
/// current). Links point at each run's `index.html` relative to `out_dir` when possible.
pub fn render_compare(run_dirs: &[PathBuf], out_dir: &Path) -> Result<String, ReportError> {
    let mut rows = Vec::new();
    for dir in run_dirs {
        let run = Run::load(dir)?;
        let s = RunSummary::of(&run);
        let anomaly = run
            .results
            .as_ref()
            .and_then(|r| crate::counterexample::counterexample_from_json(r, Some(&run)))
            .map(|cx| crate::counterexample::explain(&cx));
        let config = run
            .test
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
                .filter_map(|k| {
                    t.get(*k)
                        .map(|v| format!("{k}={}", crate::html::value_text(v)))
                })
                .collect::<Vec<_>>()
                .join(", ")
            })
            .unwrap_or_default();
        rows.push((dir.clone(), s, anomaly, config));
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
    for (dir, s, _, config) in &rows {
        let v = s.verdict();
        let href = pathdiff(dir, out_dir);
        let _ = write!(
            b,
            "<tr><td><span class=\"dot {css}\"></span>{label}</td><td><a href=\"{href}/index.html\">{name} {ts}</a></td>\
             <td><code>{config}</code></td><td class=\"num\">{ops}</td><td class=\"num\">{ok} / {fail} / {info}</td>\
             <td class=\"num\">{rate:.1}</td><td class=\"num\">{during}</td><td class=\"num\">{outside}</td>\
             <td class=\"num\">{p50}</td><td class=\"num\">{p99}</td><td class=\"num\">{max}</td><td class=\"num\">{faults}</td>\
             <td class=\"num\">{d}</td></tr>",
            css = v.css(),
            label = v.label(),
            href = esc(&href),
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
            p50 = s.p50_ns.map(dur).unwrap_or_else(|| "–".into()),
            p99 = s.p99_ns.map(dur).unwrap_or_else(|| "–".into()),
            max = s.max_ns.map(dur).unwrap_or_else(|| "–".into()),
            faults = s.faults,
            d = secs(s.duration_ns),
        );
    }
    b.push_str("</table><h2>Anomalies</h2>");
    let mut any = false;
    for (_, s, anomaly, _) in &rows {
        if let Some(a) = anomaly {
            any = true;
            let _ = write!(
                b,
                "<p><b>{} {}</b>: {}</p>",
                esc(&s.name),
                esc(&s.timestamp),
                esc(a)
            );
        }
    }
    if !any {
        b.push_str("<p class=\"muted\">No counterexample in any of these runs.</p>");
    }
    b.push_str("<h2>Throughput and latency</h2><div style=\"display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:10px\">");
    for (dir, s, _, _) in &rows {
        let href = pathdiff(dir, out_dir);
        let _ = write!(
            b,
            "<figure style=\"margin:0\"><figcaption>{} {}</figcaption>\
             <img class=\"plot\" src=\"{h}/rate.png\" alt=\"rate\"><img class=\"plot\" src=\"{h}/latency-quantiles.png\" alt=\"latency quantiles\"></figure>",
            esc(&s.name),
            esc(&s.timestamp),
            h = esc(&href)
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
