//! `index.html` of one run: verdict banner, key figures, the plots, operation counts, the
//! faults applied, the configuration, and links to everything else in the run directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::html::{clip, dur, esc, page, secs, value_text};
use crate::run::{Outcome, Run, Verdict};
use crate::style;
use crate::summary::RunSummary;

/// Which optional artifacts exist, so the page links only to what is there.
pub struct Artifacts {
    /// `linearizability.html` was written.
    pub counterexample: bool,
}

/// Renders `index.html`.
pub fn render(run: &Run, summary: &RunSummary, artifacts: &Artifacts) -> String {
    let verdict = Verdict::from_results(run.results.as_ref());
    let mut b = String::with_capacity(32 * 1024);
    let _ = write!(
        b,
        "<h1>{}</h1><div class=\"muted\">run <code>{}</code></div>",
        esc(&summary.name),
        esc(&run.dir.display().to_string())
    );
    let said = run.results.as_ref().and_then(|r| {
        r.get("checker_error")
            .filter(|e| !e.is_null())
            .map(|e| format!("checker error: {}", value_text(e)))
            // The run-level explanation (e.g. "linearizable, but ghost writes") says why the
            // verdict is what it is; the linearizability one alone can contradict it.
            .or_else(|| {
                r.get("explanation")
                    .filter(|e| !e.is_null())
                    .map(value_text)
            })
            // For quorum runs, the named anomaly (stale read, lost write, ...) beats the
            // checker's "cannot be linearized".
            .or_else(|| {
                r.pointer("/nwr/explanation")
                    .filter(|e| !e.is_null())
                    .map(value_text)
            })
            .or_else(|| r.pointer("/linearizability/explanation").map(value_text))
    });
    let detail = match verdict {
        _ if said.is_some() => clip(said.as_deref().unwrap_or_default(), 110),
        Verdict::Valid => "every check passed".to_owned(),
        Verdict::Invalid => "an anomaly was found".to_owned(),
        Verdict::Unknown => "the checker could not decide".to_owned(),
        Verdict::NotChecked => "no results.json in this run".to_owned(),
    };
    let _ = write!(
        b,
        "<div class=\"banner {}\" id=\"verdict\"><span>Verdict: {}</span><small>{}</small></div>",
        verdict.css(),
        verdict.label().to_uppercase(),
        esc(&detail)
    );
    crate::ghost::section(&mut b, run.results.as_ref());
    let card = |b: &mut String, v: String, label: &str| {
        let _ = write!(
            b,
            "<div class=\"card\"><b>{}</b><span>{}</span></div>",
            esc(&v),
            label
        );
    };
    b.push_str("<div class=\"cards\">");
    card(&mut b, summary.ops.to_string(), "operations");
    card(&mut b, summary.ok.to_string(), "ok");
    card(&mut b, summary.fail.to_string(), "fail");
    card(&mut b, summary.info.to_string(), "info (unknown)");
    card(&mut b, secs(summary.duration_ns), "duration");
    card(&mut b, format!("{:.1}", summary.ok_per_s), "ok ops / s");
    if let (Some(p50), Some(p99)) = (summary.p50_ns, summary.p99_ns) {
        card(&mut b, dur(p50), "p50 latency");
        card(&mut b, dur(p99), "p99 latency");
    }
    card(&mut b, summary.faults.to_string(), "faults applied");
    // The checker's availability figures when stored, else ours (same definition).
    let ratio = |w: &str| {
        run.results
            .as_ref()
            .and_then(|r| r.pointer(&format!("/availability/{w}/ratio")))
            .and_then(Value::as_f64)
    };
    let during = ratio("during_faults").or(summary.availability_during_faults);
    let outside = ratio("outside_faults").or(summary.availability_outside_faults);
    if let Some(a) = during {
        card(&mut b, format!("{:.1} %", a * 100.0), "ok during faults");
    }
    if let (Some(a), true) = (outside, during.is_some()) {
        card(&mut b, format!("{:.1} %", a * 100.0), "ok outside faults");
    }
    b.push_str("</div>");

    b.push_str("<nav class=\"links\">");
    b.push_str("<a href=\"timeline.html\">timeline</a>");
    if artifacts.counterexample {
        b.push_str(
            "<a href=\"linearizability.html\" id=\"counterexample-link\"><b>counterexample</b></a>",
        );
    }
    for f in ["history.jsonl", "results.json", "test.json"] {
        if run.dir.join(f).exists() {
            let _ = write!(b, "<a href=\"{f}\">{f}</a>");
        }
    }
    b.push_str("</nav>");

    crate::nwr::section(&mut b, run);
    if let Some(results) = &run.results {
        results_section(&mut b, results);
    }

    b.push_str("<h2>Plots</h2>");
    for (file, alt) in [
        ("latency-raw.png", "latency of every operation"),
        ("latency-quantiles.png", "latency quantiles over time"),
        ("rate.png", "throughput over time"),
    ] {
        let _ = write!(
            b,
            "<a href=\"{file}\"><img class=\"plot\" src=\"{file}\" alt=\"{alt}\" width=\"1200\" height=\"640\"></a>"
        );
    }

    ops_table(&mut b, run);
    faults_table(&mut b, run);
    config_table(&mut b, run);
    files_list(&mut b, run);
    // Records how many plots actually loaded, for people (a broken image says so) and for the
    // browser test, which reads the attribute from the DOM.
    b.push_str(
        "<div id=\"plots-status\" class=\"muted\"></div><script>window.addEventListener('load', function () {\
         var imgs = document.querySelectorAll('img.plot'), ok = 0;\
         imgs.forEach(function (i) { if (i.complete && i.naturalWidth > 0) ok++; });\
         var s = document.getElementById('plots-status');\
         s.setAttribute('data-plots-loaded', ok + '/' + imgs.length);\
         if (ok < imgs.length) s.textContent = (imgs.length - ok) + ' plot(s) failed to load';\
         });</script>",
    );
    page(&format!("{} — faultline", summary.name), &b)
}

/// The linearizability check as a table: overall line, then every part that is not linearizable.
fn linearizability_section(b: &mut String, lin: &Value) {
    let get = |k: &str| lin.get(k).map(value_text).unwrap_or_default();
    let _ = write!(
        b,
        "<h2>Linearizability</h2><p id=\"linearizability\"><b>{}</b> — model <code>{}</code>, {} ops, {}, checked in {} ms. {}</p>",
        esc(&get("verdict")),
        esc(&get("model")),
        esc(&get("ops")),
        if lin.get("partitioned") == Some(&Value::Bool(true)) { "split per key" } else { "as one history" },
        esc(&lin.get("elapsed_ms").and_then(Value::as_f64).map(|m| format!("{m:.1}")).unwrap_or_default()),
        esc(&get("explanation")),
    );
    let parts = lin
        .get("partitions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let bad: Vec<&Value> = parts
        .iter()
        .filter(|p| p.get("verdict").and_then(Value::as_str) != Some("linearizable"))
        .collect();
    if bad.is_empty() {
        if !parts.is_empty() {
            let _ = write!(
                b,
                "<p class=\"muted\">All {} parts are linearizable.</p>",
                parts.len()
            );
        }
        return;
    }
    let _ = write!(
        b,
        "<table id=\"partitions\"><tr><th>key</th><th>verdict</th><th class=\"num\">ops</th><th class=\"num\">ms</th><th>why</th></tr>"
    );
    for p in bad.iter().take(200) {
        let why = p
            .pointer("/counterexample/explanation")
            .or_else(|| p.get("reason"))
            .map(value_text)
            .unwrap_or_default();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&p.get("key").map(value_text).unwrap_or_else(|| "(all)".into())),
            esc(&p.get("verdict").map(value_text).unwrap_or_default()),
            esc(&p.get("ops").map(value_text).unwrap_or_default()),
            esc(&p.get("elapsed_ms").and_then(Value::as_f64).map(|m| format!("{m:.1}")).unwrap_or_default()),
            esc(&clip(&why, 300)),
        );
    }
    let _ = write!(
        b,
        "</table><p class=\"muted\">{} of {} parts are not linearizable.</p>",
        bad.len(),
        parts.len()
    );
}

fn results_section(b: &mut String, results: &Value) {
    if let Some(lin) = results.get("linearizability").filter(|l| l.is_object()) {
        linearizability_section(b, lin);
    }
    let Some(obj) = results.as_object() else {
        return;
    };
    // Sections with their own place on the page (banner, cards, operations, faults, the
    // ghost and NWR sections); anything else a newer checker adds is listed generically.
    const SHOWN: &[&str] = &[
        "linearizability",
        "verdict",
        "stats",
        "latency",
        "availability",
        "faults",
        "duration_ns",
        "explanation",
        "ghosts",
        "nwr",
        "checker_error",
    ];
    let extra = obj.keys().any(|k| !SHOWN.contains(&k.as_str()));
    if extra {
        b.push_str("<h2>Other checker results</h2>");
        b.push_str("<table id=\"results\"><tr><th>check</th><th>result</th></tr>");
        for (k, v) in obj {
            if SHOWN.contains(&k.as_str()) {
                continue;
            }
            let text = match v {
                Value::Object(o) => {
                    // Prefer a one-word verdict when the section has one.
                    let head = ["valid", "verdict", "result", "outcome"]
                        .iter()
                        .find_map(|k| o.get(*k).map(value_text));
                    match head {
                        Some(h) => format!("{h} — {}", clip(&v.to_string(), 240)),
                        None => clip(&v.to_string(), 240),
                    }
                }
                other => clip(&value_text(other), 240),
            };
            let _ = write!(
                b,
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                esc(k),
                esc(&text)
            );
        }
        b.push_str("</table>");
    }
    let pretty = serde_json::to_string_pretty(results).unwrap_or_default();
    let _ = write!(
        b,
        "<details><summary>results.json</summary><pre>{}</pre></details>",
        esc(&clip(&pretty, 200_000))
    );
}

fn ops_table(b: &mut String, run: &Run) {
    b.push_str(
        "<h2>Operations</h2><table id=\"ops\"><tr><th>f</th><th class=\"num\">ok</th>\
        <th class=\"num\">fail</th><th class=\"num\">info</th><th class=\"num\">p50</th>\
        <th class=\"num\">p99</th><th class=\"num\">max</th></tr>",
    );
    for (i, f) in run.fs.iter().enumerate() {
        let mut counts = [0usize; 3];
        let mut lats = Vec::new();
        for op in run.ops.iter().filter(|o| o.f == i) {
            counts[op.outcome as usize] += 1;
            if op.outcome == Outcome::Ok {
                lats.extend(op.latency());
            }
        }
        lats.sort_unstable();
        let q = |q: f64| {
            if lats.is_empty() {
                "–".to_owned()
            } else {
                dur(lats[((lats.len() - 1) as f64 * q).round() as usize])
            }
        };
        let _ = write!(
            b,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            style::hex(style::f_colour(i)),
            esc(f),
            counts[0],
            counts[1],
            counts[2],
            q(0.5),
            q(0.99),
            q(1.0)
        );
    }
    b.push_str("</table>");
}

fn faults_table(b: &mut String, run: &Run) {
    b.push_str("<h2>Faults applied</h2>");
    if run.faults.is_empty() && run.nemesis_other.is_empty() {
        b.push_str("<p class=\"muted\">No nemesis events in this history.</p>");
        return;
    }
    b.push_str(
        "<table id=\"faults\"><tr><th>fault</th><th class=\"num\">start</th>\
        <th class=\"num\">stop</th><th class=\"num\">duration</th><th>details</th></tr>",
    );
    for w in &run.faults {
        let (stop, len) = match w.stop {
            Some(s) => (secs(s), dur(s.saturating_sub(w.start))),
            None => ("(healed at teardown)".to_owned(), "–".to_owned()),
        };
        let _ = write!(
            b,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code>{}</code></td></tr>",
            style::hex(style::fault(&w.kind)),
            esc(&w.kind),
            secs(w.start),
            esc(&stop),
            esc(&len),
            esc(&clip(&value_text(&w.detail), 160))
        );
    }
    for (t, f, v) in &run.nemesis_other {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"num\">{}</td><td></td><td></td><td><code>{}</code></td></tr>",
            esc(f),
            secs(*t),
            esc(&clip(&value_text(v), 160))
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
        b.push_str("<p class=\"muted\">No test.json in this run.</p>");
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
