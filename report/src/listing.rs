//! The results browser's front page: every run under a results directory, newest first, with
//! its verdict colour and key figures, linking to the run's `index.html`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use checkers::layout;

use crate::html::{esc, ms, page, secs};
use crate::run::{verdict_css, verdict_label};
use crate::summary::RunSummary;

/// Run directories under `root` (those holding `history.jsonl`), at most three levels deep,
/// newest first (by directory name, which is a timestamp, then by modification time).
/// Symlinks such as `results/latest` are not followed, so no run is listed twice.
pub fn find_runs(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if dir.join(layout::HISTORY).is_file() {
            out.push(dir.to_owned());
            return;
        }
        if depth == 0 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, 3, &mut out);
    let mtime = |p: &Path| {
        std::fs::metadata(p.join(layout::HISTORY))
            .and_then(|m| m.modified())
            .ok()
    };
    out.sort_by(|a, b| {
        let name = |p: &Path| p.file_name().map(|n| n.to_owned());
        (name(b), mtime(b)).cmp(&(name(a), mtime(a)))
    });
    out
}

/// What the listing can say about a run without reading its history: the stored summary,
/// else the figures of its `results.json`.
fn summary_of(dir: &Path) -> RunSummary {
    if let Some(s) = RunSummary::load(dir) {
        return s;
    }
    let test: Option<serde_json::Value> = std::fs::read(dir.join(layout::TEST))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let name = test.and_then(|t| t.get("name")?.as_str().map(str::to_owned));
    let analysis = std::fs::read_to_string(dir.join(layout::RESULTS))
        .ok()
        .and_then(|t| checkers::analysis::Analysis::from_json(&t).ok());
    RunSummary::from_analysis(dir, name, analysis.as_ref())
}

/// Renders the listing page for `root`; links are relative to `root`.
pub fn render_listing(root: &Path) -> String {
    let runs = find_runs(root);
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>faultline results</h1><div class=\"muted\">{} runs under <code>{}</code>, newest first</div>",
        runs.len(),
        esc(&root.display().to_string())
    );
    b.push_str(&crate::trends::suites_section(root));
    if runs.is_empty() {
        b.push_str("<p>No runs yet. Start one with <code>faultline test</code>.</p>");
        return page("faultline results", &b);
    }
    b.push_str(
        "<table id=\"runs\" style=\"margin-top:14px\"><tr><th>verdict</th><th>test</th><th>run</th>\
         <th class=\"num\">ops</th><th class=\"num\">ok / fail / info</th><th class=\"num\">duration</th>\
         <th class=\"num\">ok ops/s</th><th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">faults</th></tr>",
    );
    for dir in &runs {
        let s = summary_of(dir);
        let rel = dir.strip_prefix(root).unwrap_or(dir);
        let href: String = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let v = s.verdict;
        let rendered = v.is_some();
        let figure = |x: String| if rendered { x } else { "–".into() };
        let _ = write!(
            b,
            "<tr class=\"run {css}\"><td><span class=\"dot {css}\"></span>{label}</td><td>{name}</td>\
             <td><a href=\"{href}/{index}\">{ts}</a></td><td class=\"num\">{ops}</td><td class=\"num\">{oks}</td>\
             <td class=\"num\">{d}</td><td class=\"num\">{rate}</td><td class=\"num\">{p50}</td><td class=\"num\">{p99}</td>\
             <td class=\"num\">{faults}</td></tr>",
            css = verdict_css(v),
            label = verdict_label(v),
            name = esc(&s.name),
            href = esc(&href),
            ts = esc(&s.timestamp),
            index = layout::INDEX,
            ops = figure(s.ops.to_string()),
            oks = figure(format!("{} / {} / {}", s.ok, s.fail, s.info)),
            d = figure(secs(s.duration_ns)),
            rate = figure(format!("{:.1}", s.ok_per_s)),
            p50 = s.p50_ms.map(ms).unwrap_or_else(|| "–".into()),
            p99 = s.p99_ms.map(ms).unwrap_or_else(|| "–".into()),
            faults = figure(s.faults.to_string()),
        );
    }
    b.push_str("</table>");
    page("faultline results", &b)
}
