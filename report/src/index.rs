//! `index.html` of one run: the verdict and the sentence that says why, key figures, every
//! failing key linked to its counterexample, the plots with the cluster-state strip and
//! anomaly markers that link to the counterexample, operation counts, the faults applied, the
//! configuration, and links to everything else in the run directory.
//!
//! Every figure is a field of the analysis (`results.json`); nothing is counted or judged here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use checkers::analysis::Verdict;
use checkers::layout;
use checkers::linearizable::Verdict as LinVerdict;
use serde_json::Value;

use crate::html::{clip, dur, esc, ms, page, secs, value_text};
use crate::run::{verdict_css, verdict_label, Run};
use crate::style;
use crate::summary::RunSummary;
use crate::timeline::key_anchor;

/// Which optional artifacts exist, and where the plots put their time axis.
pub struct Artifacts {
    /// `linearizability.html` was written.
    pub counterexample: bool,
    /// The plots' time axis: first and last pixel column, and the time (s) at the last.
    pub axis: Option<(i32, i32, f64)>,
}

/// Renders `index.html`.
pub fn render(run: &Run, summary: &RunSummary, artifacts: &Artifacts) -> String {
    let verdict = run.verdict();
    let a = run.analysis.as_ref();
    let mut b = String::with_capacity(32 * 1024);
    let _ = write!(
        b,
        "<h1>{}</h1><div class=\"muted\">run <code>{}</code></div>",
        esc(&summary.name),
        esc(&run.dir.display().to_string())
    );
    let _ = write!(
        b,
        "<div class=\"banner {}\" id=\"verdict\"><span>Verdict: {}</span><small>{}</small></div>",
        verdict_css(verdict),
        verdict_label(verdict).to_uppercase(),
        match (verdict, a.map(|a| a.counterexamples.len())) {
            (Some(Verdict::Invalid), Some(n)) if n > 0 => format!(
                "{n} key{} cannot be linearized",
                if n == 1 { "" } else { "s" }
            ),
            (Some(Verdict::Invalid), _) => "an anomaly was found".into(),
            (Some(Verdict::Valid), _) => "every check passed".into(),
            (Some(Verdict::Unknown), _) => "the checkers could not decide".into(),
            (None, _) => format!("no {} in this run", layout::RESULTS),
        }
    );
    match a {
        Some(a) => {
            let _ = write!(
                b,
                "<p class=\"why {}\" id=\"why\">{}</p>",
                verdict_css(verdict),
                esc(&a.summary)
            );
            if a.schema < checkers::analysis::SCHEMA {
                let _ = write!(
                    b,
                    "<p class=\"muted\">This {} was written by an older faultline: run \
                     <code>faultline analyze {}</code> for the minimal counterexample, the \
                     cluster timeline and the current figures.</p>",
                    layout::RESULTS,
                    esc(&run.dir.display().to_string())
                );
            }
        }
        None => {
            let _ = write!(
                b,
                "<p class=\"why unknown\" id=\"why\">This run was never checked: run \
                 <code>faultline analyze {}</code>.</p>",
                esc(&run.dir.display().to_string())
            );
        }
    }
    if let Some(line) = run.truncated {
        let _ = write!(
            b,
            "<p class=\"muted\">The history's last line ({line}) was cut off mid-write and is \
             not drawn.</p>"
        );
    }
    if let Some(a) = a.filter(|a| !a.counterexamples.is_empty()) {
        b.push_str("<p class=\"keys\" id=\"failing-keys\">Failing keys: ");
        for k in &a.counterexamples {
            let _ = write!(
                b,
                "<a class=\"key-link\" href=\"{}#{}\">{}</a>",
                layout::COUNTEREXAMPLE,
                key_anchor(k.key.as_deref()),
                esc(k.key.as_deref().unwrap_or("(all)"))
            );
        }
        b.push_str("</p>");
    }
    crate::ghost::section(&mut b, a);
    cards(&mut b, summary);

    b.push_str("<nav class=\"links\">");
    let _ = write!(b, "<a href=\"{0}\">timeline</a>", layout::TIMELINE);
    if artifacts.counterexample {
        let _ = write!(
            b,
            "<a href=\"{}\" id=\"counterexample-link\"><b>counterexample</b></a>",
            layout::COUNTEREXAMPLE
        );
    }
    for f in [layout::HISTORY, layout::RESULTS, layout::TEST] {
        if run.dir.join(f).exists() {
            let _ = write!(b, "<a href=\"{f}\">{f}</a>");
        }
    }
    b.push_str("</nav>");

    crate::nwr::section(&mut b, run);
    linearizability_section(&mut b, run);
    crate::txn::section(&mut b, run);

    b.push_str(
        "<h2>Plots</h2><p class=\"muted\">Under each plot, on the same time axis: one lane \
                per fault kind naming the nodes it hit, one row per node, the periods without a \
                quorum; a red marker where a key's counterexample begins (click it).</p>",
    );
    let h = crate::plots::height(run);
    for (file, alt) in [
        (layout::LATENCY_RAW, "latency of every operation"),
        (layout::LATENCY_QUANTILES, "latency quantiles over time"),
        (layout::RATE, "throughput over time"),
    ] {
        let _ = write!(
            b,
            "<div class=\"plotbox\"><a href=\"{file}\"><img class=\"plot\" src=\"{file}\" alt=\"{alt}\" width=\"{w}\" height=\"{h}\"></a>{marks}</div>",
            w = crate::plots::WIDTH,
            marks = marks(run, artifacts)
        );
    }

    ops_table(&mut b, run);
    faults_table(&mut b, run);
    config_table(&mut b, run);
    files_list(&mut b, run);
    // Records how many plots actually loaded, for people (a broken image says so) and for the
    // browser test, which reads the attribute from the DOM.
    b.push_str(
        "<style>.plotbox{position:relative;max-width:1200px} .plotbox a.mark{position:absolute;top:0;\
         width:14px;margin-left:-7px;height:100%;} .plotbox a.mark:hover{background:rgba(192,57,43,.15)}</style>\
         <div id=\"plots-status\" class=\"muted\"></div><script>window.addEventListener('load', function () {\
         var imgs = document.querySelectorAll('img.plot'), ok = 0;\
         imgs.forEach(function (i) { if (i.complete && i.naturalWidth > 0) ok++; });\
         var s = document.getElementById('plots-status');\
         s.setAttribute('data-plots-loaded', ok + '/' + imgs.length);\
         if (ok < imgs.length) s.textContent = (imgs.length - ok) + ' plot(s) failed to load';\
         });</script>",
    );
    page(&format!("{} — faultline", summary.name), &b)
}

/// Links over a plot at each culprit's invoke time, to that key's counterexample.
fn marks(run: &Run, artifacts: &Artifacts) -> String {
    let (Some((x0, x1, xmax)), Some(a)) = (artifacts.axis, run.analysis.as_ref()) else {
        return String::new();
    };
    let mut s = String::new();
    for k in &a.counterexamples {
        let Some(c) = k.culprit() else { continue };
        let px = x0 as f64 + (c.call as f64 / 1e9) / xmax * (x1 - x0) as f64;
        let _ = write!(
            s,
            "<a class=\"mark\" style=\"left:{:.2}%\" href=\"{}#{}\" title=\"key {}: {}\"></a>",
            px / crate::plots::WIDTH as f64 * 100.0,
            layout::COUNTEREXAMPLE,
            key_anchor(k.key.as_deref()),
            esc(k.key.as_deref().unwrap_or("(all)")),
            esc(&clip(&k.sentence.text, 200))
        );
    }
    s
}

fn cards(b: &mut String, summary: &RunSummary) {
    if summary.verdict.is_none() {
        return;
    }
    let card = |b: &mut String, v: String, label: &str| {
        let _ = write!(
            b,
            "<div class=\"card\"><b>{}</b><span>{}</span></div>",
            esc(&v),
            label
        );
    };
    b.push_str("<div class=\"cards\">");
    card(b, summary.ops.to_string(), "operations");
    card(b, summary.ok.to_string(), "ok");
    card(b, summary.fail.to_string(), "fail (did not happen)");
    card(b, summary.info.to_string(), "info (unknown)");
    card(b, secs(summary.duration_ns), "duration");
    card(b, format!("{:.1}", summary.ok_per_s), "ok ops / s");
    if let (Some(p50), Some(p99)) = (summary.p50_ms, summary.p99_ms) {
        card(b, ms(p50), "p50 latency");
        card(b, ms(p99), "p99 latency");
    }
    card(b, summary.faults.to_string(), "faults applied");
    if let Some(a) = summary.availability_during_faults {
        card(b, format!("{:.1} %", a * 100.0), "ok during faults");
    }
    if let Some(a) = summary.availability_outside_faults {
        card(b, format!("{:.1} %", a * 100.0), "ok outside faults");
    }
    b.push_str("</div>");
}

/// The linearizability check as a table: the overall line, then every key that is not
/// linearizable with its sentence.
fn linearizability_section(b: &mut String, run: &Run) {
    let Some(a) = &run.analysis else { return };
    let Some(lin) = &a.linearizability else {
        return;
    };
    let parts = lin.partitions.len();
    let _ = write!(
        b,
        "<h2>Linearizability</h2><p id=\"linearizability\"><b>{}</b> — model <code>{}</code>, {} ops, {}, checked in {:.1} ms.</p>",
        lin.verdict.name(),
        lin.model,
        lin.ops,
        if lin.partitioned { "split per key" } else { "as one history" },
        lin.elapsed_ms,
    );
    let bad: Vec<_> = lin
        .partitions
        .iter()
        .filter(|p| p.verdict != LinVerdict::Linearizable)
        .collect();
    if bad.is_empty() {
        let _ = write!(
            b,
            "<p class=\"muted\">{}</p>",
            match parts {
                0 => "The history has no operations to check.".to_string(),
                1 => "The one key is linearizable.".to_string(),
                n => format!("All {n} keys are linearizable."),
            }
        );
        return;
    }
    b.push_str(
        "<table id=\"partitions\"><tr><th>key</th><th>verdict</th><th class=\"num\">ops</th>\
         <th class=\"num\">ms</th><th>why</th></tr>",
    );
    for p in bad.iter().take(200) {
        let cx = a.counterexamples.iter().find(|k| k.key == p.key);
        let why = match (cx, &p.reason) {
            (Some(k), _) => format!(
                "<a href=\"{}#{}\">{}</a>",
                layout::COUNTEREXAMPLE,
                key_anchor(k.key.as_deref()),
                esc(&k.sentence.text)
            ),
            (None, Some(r)) => esc(r),
            (None, None) => String::new(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td>{why}</td></tr>",
            esc(p.key.as_deref().unwrap_or("(all)")),
            p.verdict.name(),
            p.ops,
            p.elapsed_ms,
        );
    }
    let _ = write!(
        b,
        "</table><p class=\"muted\">{} of {} keys are not linearizable.</p>",
        bad.len(),
        parts
    );
}

fn ops_table(b: &mut String, run: &Run) {
    let Some(a) = &run.analysis else { return };
    b.push_str(
        "<h2>Operations</h2><table id=\"ops\"><tr><th>f</th><th class=\"num\">ok</th>\
        <th class=\"num\">fail</th><th class=\"num\">info</th><th class=\"num\">p50</th>\
        <th class=\"num\">p99</th><th class=\"num\">max</th></tr>",
    );
    for (i, f) in run.fs.iter().enumerate() {
        let Some(c) = a.stats.by_f.get(f) else {
            continue;
        };
        let l = a.latency_by_f.get(f).filter(|l| l.count > 0);
        let q = |v: Option<f64>| v.map(ms).unwrap_or_else(|| "–".into());
        let _ = write!(
            b,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            style::hex(style::f_colour(f, i)),
            esc(f),
            c.ok,
            c.fail,
            c.info,
            q(l.map(|l| l.p50_ms)),
            q(l.map(|l| l.p99_ms)),
            q(l.map(|l| l.max_ms))
        );
    }
    b.push_str("</table>");
}

fn faults_table(b: &mut String, run: &Run) {
    b.push_str("<h2>Faults applied</h2>");
    let faults = &run.observed.faults;
    if faults.is_empty() {
        b.push_str("<p class=\"muted\">No nemesis events in this history.</p>");
        return;
    }
    b.push_str(
        "<table id=\"faults\"><tr><th>fault</th><th class=\"num\">start</th>\
        <th class=\"num\">stop</th><th class=\"num\">duration</th><th>what</th><th>nodes hit</th></tr>",
    );
    for f in faults {
        let (stop, len) = match (&f.failed, f.stop) {
            (Some(e), _) => (format!("failed: {}", clip(e, 80)), "–".to_owned()),
            (None, Some(s)) => (secs(s), dur(s.saturating_sub(f.start))),
            (None, None) => ("(healed at teardown)".to_owned(), "–".to_owned()),
        };
        let _ = write!(
            b,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
            style::hex(style::fault(&f.kind)),
            esc(&f.kind),
            secs(f.start),
            esc(&stop),
            esc(&len),
            esc(&clip(&f.describe(), 160)),
            esc(&f.nodes.join(" "))
        );
    }
    b.push_str("</table>");
}

/// Flattens nested config objects into dotted keys for a two-column table.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, v) in o {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), value_text(other));
        }
    }
}

fn config_table(b: &mut String, run: &Run) {
    b.push_str("<h2>Configuration</h2>");
    let Some(test) = &run.test else {
        let _ = write!(b, "<p class=\"muted\">No {} in this run.</p>", layout::TEST);
        return;
    };
    let mut rows = BTreeMap::new();
    flatten("", test, &mut rows);
    b.push_str("<table id=\"config\"><tr><th>setting</th><th>value</th></tr>");
    for (k, v) in rows {
        let _ = write!(
            b,
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            esc(&k),
            esc(&clip(&v, 300))
        );
    }
    b.push_str("</table>");
}

fn files_list(b: &mut String, run: &Run) {
    let Ok(entries) = std::fs::read_dir(&run.dir) else {
        return;
    };
    let mut names: Vec<(String, bool)> = entries
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.file_type().map(|t| t.is_dir()).unwrap_or(false),
            )
        })
        .collect();
    names.sort();
    b.push_str("<h2>Files</h2><ul id=\"files\">");
    for (name, is_dir) in names {
        if is_dir {
            // Node logs live in per-node directories: link each file inside.
            let mut inner: Vec<String> = std::fs::read_dir(run.dir.join(&name))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            inner.sort();
            let _ = write!(b, "<li>{}/ ", esc(&name));
            for f in inner.iter().take(50) {
                let _ = write!(b, "<a href=\"{0}/{1}\">{1}</a> ", esc(&name), esc(f));
            }
            b.push_str("</li>");
        } else {
            let _ = write!(b, "<li><a href=\"{0}\">{0}</a></li>", esc(&name));
        }
    }
    b.push_str("</ul>");
}
