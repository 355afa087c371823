//! The suite's comparison page (`index.html` of a suite directory): one row per entry
//! (variant) with its detection rate and the seeds that missed, and medians over seeds of time
//! to first anomaly, availability during faults, latency, throughput and staleness; then the
//! runs' throughput and p99 curves overlaid on shared axes, and an availability-vs-latency
//! scatter with one point per variant.
//!
//! Every figure comes from `suite.json` ([`SuiteResult`]), whose figures come from each run's
//! analysis; the curves bucket each entry's first run's history by second. Figure cells link
//! to the run that holds the median, seed cells to every run. Charts are inline SVG, so the
//! page stays one self-contained file.

use std::fmt::Write as _;
use std::path::Path;

use crate::html::{esc, ms, page};
use crate::run::{verdict_css, verdict_label, Run};
use crate::suite::{EntryStats, Expect, Outcome, RunRecord, SuiteResult};

/// Line colours of overlaid series (Tableau 10), cycled.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// Renders the comparison page of a suite stored in `suite_dir` (links relative to it).
pub fn render_suite(suite: &SuiteResult, suite_dir: &Path) -> String {
    let mut b = String::new();
    let held = suite
        .runs
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Held | Outcome::Reported))
        .count();
    let _ = write!(
        b,
        "<h1>Suite {name}</h1><div class=\"muted\">{file} · started {started} · {runs} runs of {entries} \
         entries in {wall:.0} s ({jobs} at a time) · {held} as expected · exit code {code}</div>\
         <p class=\"muted\">Detection rate: runs found invalid out of runs with a verdict; for a \
         safe entry (expect valid) every detection is a false alarm. Figures are medians over the \
         seeds; each links to the run that holds it.</p>",
        name = esc(&suite.name),
        file = esc(&suite.file),
        started = esc(&suite.started),
        runs = suite.runs.len(),
        entries = suite.entries.len(),
        wall = suite.wall_s,
        jobs = suite.jobs,
        code = suite.exit_code,
    );
    b.push_str(
        "<table id=\"suite\"><tr><th>variant</th><th>expect</th><th class=\"num\">detected</th>\
         <th>seeds</th><th class=\"num\">first anomaly</th><th class=\"num\">ok during faults</th>\
         <th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">ok ops/s</th>\
         <th class=\"num\">stale reads</th></tr>",
    );
    for e in &suite.entries {
        let runs: Vec<&RunRecord> = suite.runs_of(&e.name).collect();
        let st = EntryStats::of(runs.iter().copied());
        let detected = match st.detection_rate() {
            None => "–".to_string(),
            Some(_) => {
                // Links to the first run that contradicted the expectation, else the first run.
                let first = runs
                    .iter()
                    .find(|r| r.outcome == Outcome::NotHeld)
                    .or(runs.first());
                let count = format!("{}/{}", st.invalid, st.runs);
                let mut s = first.map_or(count.clone(), |r| link(r, &count));
                if !st.missed.is_empty() {
                    let what = if e.expect == Expect::Valid {
                        "false alarms"
                    } else {
                        "missed"
                    };
                    let _ = write!(s, "<br><small>{what}: {}</small>", seeds_text(&st.missed));
                }
                if !st.undecided.is_empty() {
                    let _ = write!(
                        s,
                        "<br><small>undecided: {}</small>",
                        seeds_text(&st.undecided)
                    );
                }
                s
            }
        };
        let mut seeds = String::new();
        for r in &runs {
            let label = format!(
                "<span class=\"dot {}\" title=\"{}\"></span>{}",
                verdict_css(r.figures.verdict),
                verdict_label(r.figures.verdict),
                r.seed
            );
            let _ = write!(seeds, "<span class=\"seed\">{}</span> ", link(r, &label));
        }
        let cell = |f: &dyn Fn(&RunRecord) -> Option<f64>,
                    m: Option<f64>,
                    text: &dyn Fn(f64) -> String| {
            match (m, closest(&runs, f, m)) {
                (Some(m), Some(r)) => format!("<td class=\"num\">{}</td>", link(r, &text(m))),
                _ => "<td class=\"num\">–</td>".to_string(),
            }
        };
        let pct = |x: f64| format!("{:.1} %", x * 100.0);
        let _ = write!(
            b,
            "<tr class=\"entry\"><td><b>{name}</b><br><code>{args}</code></td><td>{expect}</td>\
             <td class=\"num detected\">{detected}</td><td class=\"seeds\">{seeds}</td>{first}{avail}{p50}{p99}{rate}{stale}</tr>",
            name = esc(&e.name),
            args = esc(&e.args.join(" ")),
            expect = e.expect.name(),
            first = cell(&|r| r.figures.first_anomaly_s, st.first_anomaly_s, &|s| format!("{s:.1} s")),
            avail = cell(&|r| r.figures.availability_during_faults, st.availability_during_faults, &pct),
            p50 = cell(&|r| r.figures.p50_ms, st.p50_ms, &ms),
            p99 = cell(&|r| r.figures.p99_ms, st.p99_ms, &ms),
            rate = cell(
                &|r| r.figures.verdict.map(|_| r.figures.ok_per_s),
                st.ok_per_s,
                &|x| format!("{x:.1}")
            ),
            stale = cell(
                &|r| r.figures.staleness.as_ref().map(|s| s.stale_fraction),
                st.stale_fraction,
                &pct
            ),
        );
    }
    b.push_str("</table>");
    unexpected(&mut b, suite);
    curves(&mut b, suite, suite_dir);
    scatter(&mut b, suite);
    page(&format!("faultline suite {}", suite.name), &b)
}

/// Seeds as `1, 4, 7`.
fn seeds_text(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `text` linked to the run's page, or plain when the run left no directory.
fn link(r: &RunRecord, text: &str) -> String {
    match &r.run_dir {
        // The directory, not its index.html: runs of suites with --no-report have none until
        // `faultline serve` renders it on first request.
        Some(d) => format!("<a class=\"run\" href=\"{}/\">{text}</a>", esc(d)),
        None => format!("<a class=\"log\" href=\"{}\">{text}</a>", esc(&r.log)),
    }
}

/// The run whose value is nearest the median (the run a median cell stands for).
fn closest<'a>(
    runs: &[&'a RunRecord],
    f: &dyn Fn(&RunRecord) -> Option<f64>,
    m: Option<f64>,
) -> Option<&'a RunRecord> {
    let m = m?;
    runs.iter()
        .filter_map(|r| f(r).map(|v| (*r, (v - m).abs())))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(r, _)| r)
}

/// Every run whose verdict contradicted its expectation, with its sentence and the command
/// that repeats it.
fn unexpected(b: &mut String, suite: &SuiteResult) {
    let bad: Vec<&RunRecord> = suite
        .runs
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                Outcome::NotHeld | Outcome::Unknown | Outcome::Error
            )
        })
        .collect();
    if bad.is_empty() {
        return;
    }
    b.push_str("<h2>Unexpected verdicts</h2>");
    for r in bad {
        let why = r.error.clone().unwrap_or_else(|| r.figures.summary.clone());
        let _ = write!(
            b,
            "<p class=\"why {css}\"><b>{entry}, seed {seed}</b>: expected {expect}, got {got}. {why}<br>\
             <code>{cmd}</code> · {run}</p>",
            css = verdict_css(r.figures.verdict),
            entry = esc(&r.entry),
            seed = r.seed,
            expect = r.expect.name(),
            got = verdict_label(r.figures.verdict),
            why = esc(&why),
            cmd = esc(&r.reproduce),
            run = link(r, "run"),
        );
    }
}

/// A named, coloured line: `(name, colour, points)`.
type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// One line chart as inline SVG: every series on shared axes starting at zero.
fn line_chart(title: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h, left, bottom, top, right) = (560.0, 260.0, 56.0, 34.0, 24.0, 12.0);
    let x_max = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0_f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.1;
    let sx = |x: f64| left + x / x_max * (w - left - right);
    let sy = |y: f64| h - bottom - y / y_max * (h - bottom - top);
    let mut s = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         style=\"background:#fff;border:1px solid #dde2ea\"><text x=\"{left}\" y=\"16\" \
         font-size=\"13\">{}</text>",
        esc(title)
    );
    for i in 0..=4 {
        let y = y_max * i as f64 / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 4.0,
            sy(y) + 3.0,
            short(y),
            py = sy(y)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">seconds since start (max {x_max:.0})</text>\
         <text x=\"12\" y=\"{}\" font-size=\"11\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">{}</text>",
        (left + w - right) / 2.0,
        h - 8.0,
        h / 2.0,
        h / 2.0,
        esc(y_label)
    );
    for (name, color, pts) in series {
        let d: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
            d.join(" "),
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// A number for an axis tick.
fn short(y: f64) -> String {
    if y >= 100.0 {
        format!("{y:.0}")
    } else if y >= 1.0 {
        format!("{y:.1}")
    } else {
        format!("{y:.2}")
    }
}

/// Per-second ok throughput and p99 latency of each entry's first run, overlaid.
fn curves(b: &mut String, suite: &SuiteResult, suite_dir: &Path) {
    let mut rate = Vec::new();
    let mut p99 = Vec::new();
    let mut legend = String::new();
    for (i, e) in suite.entries.iter().enumerate() {
        let Some(r) = suite.runs_of(&e.name).find(|r| r.run_dir.is_some()) else {
            continue;
        };
        let Some(dir) = &r.run_dir else { continue };
        let Ok(run) = Run::load(&suite_dir.join(dir)) else {
            continue;
        };
        let color = PALETTE[i % PALETTE.len()];
        let mut buckets: Vec<Vec<u64>> = Vec::new();
        for op in &run.observed.ops {
            let Some(ret) = op.ret.filter(|_| !op.failed) else {
                continue;
            };
            let sec = (ret / 1_000_000_000) as usize;
            if buckets.len() <= sec {
                buckets.resize(sec + 1, Vec::new());
            }
            buckets[sec].push(ret.saturating_sub(op.call));
        }
        let mut rate_pts = Vec::new();
        let mut p99_pts = Vec::new();
        for (sec, lat) in buckets.iter_mut().enumerate() {
            let x = sec as f64 + 0.5;
            rate_pts.push((x, lat.len() as f64));
            if !lat.is_empty() {
                lat.sort_unstable();
                let q = lat[((lat.len() - 1) as f64 * 0.99).round() as usize];
                p99_pts.push((x, q as f64 / 1e6));
            }
        }
        let name = format!("{} seed {}", e.name, r.seed);
        let _ = write!(
            legend,
            "<span><span class=\"swatch\" style=\"background:{color}\"></span>{}</span>",
            esc(&name)
        );
        rate.push((name.clone(), color, rate_pts));
        p99.push((name, color, p99_pts));
    }
    if rate.is_empty() {
        return;
    }
    let _ = write!(
        b,
        "<h2>Throughput and latency over time</h2><div class=\"legend\">{legend}</div>\
         <div style=\"display:flex;flex-wrap:wrap;gap:10px\">{}{}</div>",
        line_chart("ok operations per second", "ok ops/s", &rate),
        line_chart("p99 latency of ok operations per second", "p99 (ms)", &p99),
    );
}

/// Availability during faults against median p99, one point per entry.
fn scatter(b: &mut String, suite: &SuiteResult) {
    let points: Vec<(String, &str, f64, f64)> = suite
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let st = EntryStats::of(suite.runs_of(&e.name));
            Some((
                e.name.clone(),
                PALETTE[i % PALETTE.len()],
                st.availability_during_faults?,
                st.p99_ms?,
            ))
        })
        .collect();
    if points.is_empty() {
        return;
    }
    let (w, h, left, bottom, top, right) = (560.0, 300.0, 56.0, 34.0, 16.0, 150.0);
    let y_max = points.iter().map(|p| p.3).fold(1e-9, f64::max) * 1.1;
    let sx = |x: f64| left + x * (w - left - right);
    let sy = |y: f64| h - bottom - y / y_max * (h - bottom - top);
    let mut s = format!(
        "<h2>Availability against latency</h2><svg id=\"scatter\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" \
         height=\"{h}\" style=\"background:#fff;border:1px solid #dde2ea\">\
         <line x1=\"{left}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#999\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">ok during faults (0–100 %)</text>\
         <text x=\"12\" y=\"{}\" font-size=\"11\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">median p99 (ms, max {})</text>",
        w - right,
        h - bottom,
        h - bottom,
        (left + w - right) / 2.0,
        h - 8.0,
        h / 2.0,
        h / 2.0,
        short(y_max / 1.1),
    );
    for (name, color, x, y) in &points {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"{color}\"><title>{n}: {:.1} % ok during faults, p99 {}</title></circle>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{n}</text>",
            sx(*x),
            sy(*y),
            x * 100.0,
            ms(*y),
            sx(*x) + 7.0,
            sy(*y) + 3.0,
            n = esc(name),
        );
    }
    s.push_str("</svg>");
    b.push_str(&s);
}
