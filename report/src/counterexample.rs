//! `linearizability.html`: the checker's counterexample drawn so a person can see the anomaly.
//!
//! The checker (crate `checkers`) decides; this module only draws its answer for one offending
//! partition: the operations of the longest linearizable prefix with their linearization
//! points, the operation(s) that cannot be placed after it, the model state there, and a
//! paragraph in plain words. Linearization points are not part of the checker's answer (only
//! the order is); we draw the earliest consistent ones: walking the prefix in order, each point
//! is the later of the op's invoke and the previous point, which lies inside the op's interval
//! whenever the order is a valid linearization.
//!
//! Example of the paragraph for a stale read:
//!
//! ```text
//! read of key 3 returned 5 at t=1.204 s, but 5 was overwritten by 7 (write by process 4),
//! which completed at t=1.180 s, before the read began.
//! ```

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::html::{clip, esc, page, secs, value_text};
use crate::run::Outcome;

/// One operation of the offending partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CxOp {
    /// History index of the invoke (stable id to cross-reference history.jsonl).
    pub index: u64,
    /// Client process.
    pub process: u64,
    /// Operation name: read, write, cas, get, put, append.
    pub f: String,
    /// The key, for multi-key histories.
    pub key: Option<String>,
    /// The invoke's value (a write's value, a cas's `[expected, new]`, null for reads).
    pub value: Value,
    /// The completion's value (a read's result), null if none.
    pub result: Value,
    /// Invoke time, ns.
    pub invoke: u64,
    /// Completion time, ns; `None` for ops that never returned (`info`).
    pub complete: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
}

/// A counterexample as the report draws it: the checker's data for one illegal partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The partition's key, when the history was split per key.
    pub key: Option<String>,
    /// The model name (`register`, `cas-register`, `kv`).
    pub model: String,
    /// Every operation of the partition.
    pub ops: Vec<CxOp>,
    /// The longest linearizable prefix: indices into `ops`, in linearization order.
    pub linearized: Vec<usize>,
    /// Operations that cannot be placed after the prefix: indices into `ops`.
    pub unplaceable: Vec<usize>,
    /// The model state after the prefix (before the unplaceable operations).
    pub state: Value,
    /// The checker's own explanation, if it gave one.
    pub explanation: Option<String>,
    /// Times are event positions, not nanoseconds (imported histories without clocks, such
    /// as Porcupine's logs), so they are shown as `#n` rather than seconds.
    #[serde(default)]
    pub logical_time: bool,
}

fn is_read(f: &str) -> bool {
    matches!(f, "read" | "get" | "r")
}

/// The value an op leaves in the register when it succeeds, if it writes.
fn written(op: &CxOp) -> Option<&Value> {
    match op.f.as_str() {
        "write" | "put" | "w" => Some(&op.value),
        "cas" => op.value.as_array().and_then(|a| a.get(1)),
        _ => None,
    }
}

fn key_phrase(op: &CxOp, cx: &Counterexample) -> String {
    match op.key.as_ref().or(cx.key.as_ref()) {
        Some(k) => format!(" of key {k}"),
        None => String::new(),
    }
}

fn t(cx: &Counterexample, ns: u64) -> String {
    if cx.logical_time {
        format!("event\u{a0}#{ns}")
    } else {
        format!("t={}", secs(ns).replace(' ', "\u{a0}"))
    }
}

/// A time for tables and tooltips: seconds, or the event position for untimed histories.
fn when(cx: &Counterexample, ns: u64) -> String {
    if cx.logical_time {
        format!("#{ns}")
    } else {
        secs(ns)
    }
}

/// One paragraph saying, in plain words, why the first unplaceable op cannot be placed.
pub fn explain(cx: &Counterexample) -> String {
    let Some(&bad) = cx.unplaceable.first() else {
        return "The checker found no order of these operations consistent with the model.".into();
    };
    let op = &cx.ops[bad];
    let kp = key_phrase(op, cx);
    let state = value_text(&cx.state);
    let writer_of = |v: &Value| {
        cx.ops
            .iter()
            .filter(|o| o.outcome != Outcome::Fail && written(o) == Some(v))
            .min_by_key(|o| o.invoke)
    };
    if is_read(&op.f) {
        let got = &op.result;
        let when = op
            .complete
            .map(|c| t(cx, c))
            .unwrap_or_else(|| "the end".into());
        let mut s = format!(
            "The {f}{kp} by process {p} (invoked at {ti}) returned {v} at {when}",
            f = op.f,
            p = op.process,
            ti = t(cx, op.invoke),
            v = value_text(got),
        );
        let later = writer_of(&cx.state);
        match (writer_of(got), later) {
            (None, _) if !got.is_null() => {
                let _ = write!(s, ", but no operation ever wrote {}.", value_text(got));
            }
            (_, Some(w)) if w.complete.is_some_and(|c| c < op.invoke) => {
                let _ = write!(
                    s,
                    ", but {v} was overwritten by {st} ({f} by process {p}), which completed at {c}, \
                     before the read began.",
                    v = value_text(got),
                    st = state,
                    f = w.f,
                    p = w.process,
                    c = t(cx, w.complete.unwrap_or(0)),
                );
            }
            (Some(wv), Some(w)) => {
                let _ = write!(
                    s,
                    ". {v} was written by process {pv} ({fv} completed at {cv}); but every order \
                     consistent with the operations before this read has already overwritten it: \
                     the register holds {state} (written by process {p}, {f} invoked at {ti2}{done}), \
                     and no later write of {v} can be placed before the read returned.",
                    v = value_text(got),
                    pv = wv.process,
                    fv = wv.f,
                    cv = wv.complete.map(|c| t(cx, c)).unwrap_or_else(|| "never".into()),
                    p = w.process,
                    f = w.f,
                    ti2 = t(cx, w.invoke),
                    done = w.complete.map(|c| format!(", completed at {}", t(cx, c))).unwrap_or_default(),
                );
            }
            _ => {
                let _ = write!(
                    s,
                    ", but at that point of every valid order the register holds {state}, and no \
                     write of {} can be placed between them.",
                    value_text(got)
                );
            }
        }
        s
    } else if op.f == "cas" {
        let exp = op
            .value
            .as_array()
            .and_then(|a| a.first())
            .map(value_text)
            .unwrap_or_default();
        format!(
            "The cas{kp} by process {p} expected {exp} and {res} at {when}, but at that point the \
             register holds {state}: no order of the operations before it lets it {verb}.",
            p = op.process,
            res = if op.outcome == Outcome::Ok {
                "succeeded"
            } else {
                "was attempted"
            },
            when = op
                .complete
                .map(|c| t(cx, c))
                .unwrap_or_else(|| "the end".into()),
            verb = if op.outcome == Outcome::Ok {
                "succeed"
            } else {
                "take effect"
            },
        )
    } else {
        format!(
            "The {f}{kp} by process {p} ({ti} to {tc}) cannot be placed after the prefix: the \
             model state there is {state}, and no remaining order is consistent with it.",
            f = op.f,
            p = op.process,
            ti = t(cx, op.invoke),
            tc = op
                .complete
                .map(|c| t(cx, c))
                .unwrap_or_else(|| "never returned".into()),
        )
    }
}

/// A tick spacing of 1, 2 or 5 times a power of ten giving five to ten ticks over `span` ns.
fn nice_step(span: u64) -> u64 {
    let raw = (span / 10).max(1);
    let mut p = 1u64;
    while p.saturating_mul(10) <= raw {
        p *= 10;
    }
    [1, 2, 5, 10]
        .iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10 * p)
}

/// Seconds with as many decimals as a tick spacing of `span / 6` needs.
fn axis_secs(ns: u64, span: u64) -> String {
    let step = (span as f64 / 6.0 / 1e9).max(1e-9);
    let decimals = (-step.log10()).ceil().clamp(0.0, 9.0) as usize + 1;
    format!("{:.*} s", decimals, ns as f64 / 1e9)
}

/// Earliest consistent linearization point of each prefix op (ns), same order as `linearized`.
fn lin_points(cx: &Counterexample) -> Vec<u64> {
    let mut prev = 0u64;
    cx.linearized
        .iter()
        .map(|&i| {
            let p = prev.max(cx.ops[i].invoke);
            prev = p;
            p
        })
        .collect()
}

fn op_text(op: &CxOp) -> String {
    let v = match (is_read(&op.f), &op.result) {
        (true, r) if !r.is_null() => value_text(r),
        (true, _) => "?".into(),
        _ => value_text(&op.value),
    };
    format!("{} {}", op.f, clip(&v, 18))
}

/// Renders a run's counterexample page (a complete HTML document, linking back to the run's
/// index.html).
pub fn render_counterexample_html(cx: &Counterexample, title: &str) -> String {
    counterexample_page(cx, title, true)
}

/// The counterexample page; `in_run` adds the link back to the run's index.html, which a
/// standalone page (`faultline check --html`) does not have.
fn counterexample_page(cx: &Counterexample, title: &str, in_run: bool) -> String {
    // Show the unplaceable ops, everything concurrent with them, and up to 40 prefix ops before.
    let mut shown: Vec<usize> = Vec::new();
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    let end_of = |o: &CxOp| o.complete.unwrap_or(o.invoke + 1);
    for &u in &cx.unplaceable {
        lo = lo.min(cx.ops[u].invoke);
        hi = hi.max(end_of(&cx.ops[u]));
    }
    let tail: Vec<usize> = cx.linearized.iter().rev().take(40).copied().collect();
    for &i in &tail {
        lo = lo.min(cx.ops[i].invoke);
    }
    if lo == u64::MAX {
        lo = 0;
    }
    for (i, o) in cx.ops.iter().enumerate() {
        let concurrent = o.invoke <= hi && end_of(o) >= lo;
        if concurrent || tail.contains(&i) || cx.unplaceable.contains(&i) {
            shown.push(i);
        }
    }
    shown.truncate(400);
    for &u in &cx.unplaceable {
        if !shown.contains(&u) {
            shown.push(u);
        }
    }
    let lo = shown.iter().map(|&i| cx.ops[i].invoke).min().unwrap_or(0);
    let hi = shown
        .iter()
        .map(|&i| end_of(&cx.ops[i]))
        .max()
        .unwrap_or(1)
        .max(lo + 1);
    let mut procs: Vec<u64> = shown.iter().map(|&i| cx.ops[i].process).collect();
    procs.sort_unstable();
    procs.dedup();
    let (left, width, row_h, top) = (90.0, 1120.0, 34.0, 40.0);
    let height = top + procs.len() as f64 * row_h + 30.0;
    let x =
        |ns: u64| left + (ns.saturating_sub(lo)) as f64 / (hi - lo) as f64 * (width - left - 50.0);
    let row = |p: u64| procs.iter().position(|q| *q == p).unwrap_or(0) as f64;
    let points = lin_points(cx);
    let order: std::collections::HashMap<usize, (usize, u64)> = cx
        .linearized
        .iter()
        .enumerate()
        .map(|(n, &i)| (i, (n + 1, points[n])))
        .collect();

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"cx-timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    );
    // time axis
    let step = nice_step(hi - lo);
    let mut tk = lo.div_ceil(step) * step;
    while tk <= hi {
        let xx = x(tk);
        tk += step;
        let _ = write!(
            svg,
            "<line x1=\"{xx:.1}\" y1=\"{y0}\" x2=\"{xx:.1}\" y2=\"{y1}\" stroke=\"#eee\"/>\
             <text x=\"{xx:.1}\" y=\"{ty}\" text-anchor=\"middle\" fill=\"#555\">{lab}</text>",
            y0 = top - 6.0,
            y1 = height - 24.0,
            ty = top - 14.0,
            lab = esc(&if cx.logical_time {
                format!("#{}", tk - step)
            } else {
                axis_secs(tk - step, step * 6)
            }),
        );
    }
    for (r, p) in procs.iter().enumerate() {
        let y = top + r as f64 * row_h + row_h / 2.0 + 4.0;
        let _ = write!(
            svg,
            "<text x=\"8\" y=\"{y:.1}\" fill=\"#333\">process {p}</text>"
        );
    }
    // The last few linearization points, joined in order, lead to the op that cannot be placed
    // (joining all of them would be a tangle across rows).
    let mut chain = String::new();
    let shown_set: std::collections::HashSet<usize> = shown.iter().copied().collect();
    let from = cx.linearized.len().saturating_sub(8);
    for (n, &i) in cx.linearized.iter().enumerate().skip(from) {
        if !shown_set.contains(&i) {
            continue;
        }
        let o = &cx.ops[i];
        let y = top + row(o.process) * row_h + row_h / 2.0;
        let _ = write!(
            chain,
            "{}{:.1},{:.1}",
            if chain.is_empty() { "M" } else { " L" },
            x(points[n]),
            y
        );
    }
    if !chain.is_empty() {
        let _ = write!(
            svg,
            "<path d=\"{chain}\" fill=\"none\" stroke=\"#2e8b57\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\" opacity=\"0.9\"/>"
        );
        if let (Some(&u), Some(&last)) = (cx.unplaceable.first(), points.last()) {
            let o = &cx.ops[u];
            let y = top + row(o.process) * row_h + row_h / 2.0;
            let _ = write!(
                svg,
                "<path d=\"{chain_end} L{:.1},{:.1}\" fill=\"none\" stroke=\"#c0392b\" stroke-width=\"1.5\" stroke-dasharray=\"2 3\"/>",
                x(o.invoke.max(last)),
                y,
                chain_end = chain.rsplit(['M', 'L']).next().map(|p| format!("M{}", p.trim())).unwrap_or_default(),
            );
        }
    }
    for &i in &shown {
        let o = &cx.ops[i];
        let y = top + row(o.process) * row_h + 5.0;
        // An op that never returned may take effect at any later time: draw it to the edge.
        let x1 = match o.complete {
            Some(c) => x(c),
            None => x(hi),
        };
        let (x0, x1) = (x(o.invoke), x1.max(x(o.invoke) + 3.0));
        let bad = cx.unplaceable.contains(&i);
        let (fill, stroke, sw) = if bad {
            ("#fdecea", "#c0392b", 2.5)
        } else if order.contains_key(&i) {
            ("#e8f0f8", "#4e79a7", 1.0)
        } else {
            ("#f2f2f2", "#999", 1.0)
        };
        let dash = if o.complete.is_none() {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = write!(
            svg,
            "<g class=\"op{cls}\" data-index=\"{idx}\"><title>{tip}</title>\
             <rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"{dash}/>",
            cls = if bad { " unplaceable" } else { "" },
            idx = o.index,
            tip = esc(&format!(
                "{} — process {}, {} → {}, {}",
                op_text(o),
                o.process,
                when(cx, o.invoke),
                o.complete.map(|c| when(cx, c)).unwrap_or_else(|| "never returned".into()),
                o.outcome.name()
            )),
            w = x1 - x0,
            h = row_h - 10.0,
        );
        let _ = write!(
            svg,
            "<text x=\"{tx:.1}\" y=\"{ty:.1}\" fill=\"{c}\" font-weight=\"{fw}\">{txt}</text>",
            tx = x0 + 4.0,
            ty = y + 16.0,
            c = if bad { "#a93226" } else { "#1d2330" },
            fw = if bad { "bold" } else { "normal" },
            txt = esc(&op_text(o)),
        );
        if let Some((n, p)) = order.get(&i) {
            let cy = y + (row_h - 10.0) / 2.0;
            let _ = write!(
                svg,
                "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"4.5\" fill=\"#2e8b57\"/>\
                 <text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#2e8b57\">{n}</text>",
                cx = x(*p),
                ly = y - 1.0,
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");

    let mut b = String::new();
    let key = cx
        .key
        .as_deref()
        .map(|k| format!(" — key {k}"))
        .unwrap_or_default();
    let _ = write!(
        b,
        "<h1>Linearizability counterexample{}</h1><div class=\"muted\">{}, model <code>{}</code></div>\
         <div class=\"banner invalid\" id=\"verdict\"><span>NOT LINEARIZABLE</span><small>{} of {} operations placed; {} cannot be</small></div>",
        esc(&key),
        esc(title),
        esc(&cx.model),
        cx.linearized.len(),
        cx.ops.len(),
        cx.unplaceable.len()
    );
    let _ = write!(
        b,
        "<h2>What went wrong</h2><p id=\"explanation\">{}</p>",
        esc(&explain(cx))
    );
    if let Some(e) = &cx.explanation {
        let _ = write!(b, "<p class=\"muted\">Checker: {}</p>", esc(e));
    }
    let _ = write!(
        b,
        "<p>Model state after the longest linearizable prefix (before the highlighted operation): \
         <code id=\"model-state\">{}</code></p>",
        esc(&clip(&value_text(&cx.state), 400))
    );
    let _ = write!(
        b,
        "<h2>Timeline</h2><p class=\"legend muted\">\
         <span class=\"swatch\" style=\"background:#e8f0f8;border:1px solid #4e79a7\"></span>linearized (prefix) \
         <span class=\"dot\" style=\"background:#2e8b57\"></span>linearization point, numbered in order \
         <span class=\"swatch\" style=\"background:#fdecea;border:2px solid #c0392b\"></span>cannot be placed \
         <span class=\"swatch\" style=\"background:#f2f2f2;border:1px solid #999\"></span>not yet placed. \
         Showing {} of {} operations of this partition.</p><div style=\"overflow-x:auto\">{}</div>",
        shown.len(),
        cx.ops.len(),
        svg
    );
    b.push_str(
        "<h2>Operations shown</h2><table id=\"cx-ops\"><tr><th>#</th><th>history index</th><th>process</th>\
         <th>op</th><th>value</th><th>result</th><th class=\"num\">invoke</th><th class=\"num\">complete</th><th>outcome</th></tr>",
    );
    let mut rows: Vec<usize> = shown.clone();
    rows.sort_by_key(|&i| cx.ops[i].invoke);
    for i in rows {
        let o = &cx.ops[i];
        let bad = cx.unplaceable.contains(&i);
        let _ = write!(
            b,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if bad { " class=\"unplaceable\" style=\"background:#fdecea;font-weight:bold\"" } else { "" },
            order.get(&i).map(|(n, _)| n.to_string()).unwrap_or_else(|| if bad { "✗".into() } else { "".into() }),
            o.index,
            o.process,
            esc(&o.f),
            esc(&value_text(&o.value)),
            esc(&value_text(&o.result)),
            when(cx, o.invoke),
            o.complete.map(|c| when(cx, c)).unwrap_or_else(|| "–".into()),
            o.outcome.name()
        );
    }
    b.push_str("</table>");
    if in_run {
        b.push_str("<p><a href=\"index.html\">← run overview</a></p>");
    }
    page(&format!("counterexample — {title}"), &b)
}

/// Reads one op of a checker counterexample: `{"op": {...}}` or the op object itself, with
/// the checker's field names (`input`, `output`, `call`, `ret`, `invoke_index`).
fn op_from_json(v: &Value) -> Option<CxOp> {
    let o = v.get("op").unwrap_or(v);
    let u = |k: &str| o.get(k).and_then(Value::as_u64);
    let index = u("invoke_index").or_else(|| u("index"))?;
    let ret = u("ret").or_else(|| u("complete"));
    Some(CxOp {
        index,
        process: u("process").unwrap_or(0),
        f: o.get("f").map(value_text).unwrap_or_default(),
        key: o.get("key").filter(|k| !k.is_null()).map(value_text),
        value: o
            .get("input")
            .or_else(|| o.get("value"))
            .cloned()
            .unwrap_or(Value::Null),
        result: o
            .get("output")
            .or_else(|| o.get("result"))
            .cloned()
            .unwrap_or(Value::Null),
        invoke: u("call").or_else(|| u("invoke")).unwrap_or(0),
        complete: ret,
        outcome: if ret.is_some() {
            Outcome::Ok
        } else {
            Outcome::Info
        },
    })
}

/// Finds the first counterexample in a checker result or a `results.json` value and resolves
/// it into the data this page draws. `run`, when given, adds the partition's other operations
/// from the history (those the checker had not placed yet) so the drawing shows the context.
///
/// Reads the checker's shape (`checkers::linearizable::Counterexample` serialized: `prefix`
/// and `unplaceable` lists of `{op, description, order, state_after}`, `state`, `explanation`,
/// with `key` on the enclosing partition result); plain history indices are accepted too.
/// Returns `None` when there is no counterexample.
pub fn counterexample_from_json(
    results: &Value,
    run: Option<&crate::run::Run>,
) -> Option<Counterexample> {
    fn find(v: &Value, depth: usize) -> Option<(&Value, &Value)> {
        match v {
            Value::Object(o) => {
                if let Some(cx) = o.get("counterexample").filter(|c| !c.is_null()) {
                    return Some((cx, v));
                }
                if depth > 6 {
                    return None;
                }
                o.values().find_map(|c| find(c, depth + 1))
            }
            Value::Array(a) if depth <= 6 => a.iter().find_map(|c| find(c, depth + 1)),
            _ => None,
        }
    }
    fn find_model(v: &Value, depth: usize) -> Option<String> {
        let o = v.as_object()?;
        if let Some(Value::String(m)) = o.get("model") {
            return Some(m.clone());
        }
        (depth < 4)
            .then(|| o.values().find_map(|c| find_model(c, depth + 1)))
            .flatten()
    }
    let (cx, parent) = find(results, 0)?;
    if let Ok(direct) = serde_json::from_value::<Counterexample>(cx.clone()) {
        return Some(direct);
    }
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| cx.get(*n).or_else(|| parent.get(*n)))
    };
    let key = get(&["key", "partition"])
        .filter(|k| !k.is_null())
        .map(value_text);
    let list = |v: Option<&Value>| -> Vec<Value> {
        v.and_then(Value::as_array).cloned().unwrap_or_default()
    };
    let mut prefix = list(get(&["prefix", "linearized", "longest_prefix"]));
    prefix.sort_by_key(|p| p.get("order").and_then(Value::as_u64).unwrap_or(u64::MAX));
    let stuck = list(get(&["unplaceable", "cannot_place", "stuck"]));

    let mut ops: Vec<CxOp> = Vec::new();
    let mut pos: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let run_pos: std::collections::HashMap<u64, usize> = run
        .map(|r| {
            r.ops
                .iter()
                .enumerate()
                .map(|(i, o)| (o.index, i))
                .collect()
        })
        .unwrap_or_default();
    let mut by_history = |v: &Value, ops: &mut Vec<CxOp>| -> Option<usize> {
        let id = v.as_u64().or_else(|| op_from_json(v).map(|o| o.index))?;
        if let Some(&p) = pos.get(&id) {
            return Some(p);
        }
        let op = match (op_from_json(v), run) {
            (Some(op), _) => op,
            (None, Some(run)) => cx_op(run, &run.ops[*run_pos.get(&id)?]),
            (None, None) => return None,
        };
        ops.push(op);
        pos.insert(id, ops.len() - 1);
        Some(ops.len() - 1)
    };
    let linearized: Vec<usize> = prefix
        .iter()
        .filter_map(|v| by_history(v, &mut ops))
        .collect();
    let unplaceable: Vec<usize> = stuck
        .iter()
        .filter_map(|v| by_history(v, &mut ops))
        .collect();
    if let Some(run) = run {
        let known: std::collections::HashSet<u64> = ops.iter().map(|c| c.index).collect();
        for o in &run.ops {
            let same_key = key.is_none() || o.key == key;
            if same_key && o.outcome != Outcome::Fail && !known.contains(&o.index) {
                ops.push(cx_op(run, o));
            }
        }
    }
    Some(Counterexample {
        key,
        model: find_model(results, 0).unwrap_or_else(|| "register".into()),
        linearized,
        unplaceable,
        state: get(&["state", "model_state"])
            .cloned()
            .unwrap_or(Value::Null),
        explanation: get(&["explanation", "message"]).map(value_text),
        logical_time: false,
        ops,
    })
}

fn cx_op(run: &crate::run::Run, o: &crate::run::Op) -> CxOp {
    CxOp {
        index: o.index,
        process: o.process,
        f: run.fs[o.f].clone(),
        key: o.key.clone(),
        value: o.value.clone(),
        result: o.result.clone(),
        invoke: o.invoke,
        complete: if o.outcome == Outcome::Info {
            None
        } else {
            o.complete
        },
        outcome: o.outcome,
    }
}

/// Renders the counterexample page straight from a checker result (any value holding a
/// `counterexample`, e.g. `serde_json::to_value(&checkers::linearizable::CheckResult)`).
/// For `faultline check FILE --html OUT`. Returns `None` when the result has no counterexample.
pub fn render_check_html(check_result: &Value, title: &str) -> Option<String> {
    counterexample_from_json(check_result, None).map(|cx| render_counterexample_html(&cx, title))
}

/// Like [`render_check_html`], with the history's events, so the page also draws the
/// partition's operations the checker had not placed yet (the context around the anomaly).
/// Events in any order of the history file (imported Jepsen/Porcupine histories included).
pub fn render_check_html_with_events(
    check_result: &Value,
    events: Vec<checkers::history::Event>,
    title: &str,
) -> Option<String> {
    // Importers without clocks number events instead; real histories are in nanoseconds, so
    // times this small can only be positions.
    let logical_time = events
        .iter()
        .all(|e| e.time <= 4 * events.len() as u64 + 16);
    let run = crate::run::Run::from_events(std::path::Path::new("."), events);
    counterexample_from_json(check_result, Some(&run)).map(|mut cx| {
        cx.logical_time = logical_time;
        counterexample_page(&cx, title, false)
    })
}

/// The page `faultline check --html` writes: the counterexample when the history is not
/// linearizable, otherwise a short page with the verdict and the checker's explanation, so
/// the file always exists and says what was decided.
pub fn render_check_page(
    check_result: &Value,
    events: Vec<checkers::history::Event>,
    title: &str,
) -> String {
    if let Some(html) = render_check_html_with_events(check_result, events, title) {
        return html;
    }
    let verdict = check_result
        .get("verdict")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let (class, banner) = match verdict {
        "linearizable" => ("valid", "LINEARIZABLE"),
        "illegal" => ("invalid", "NOT LINEARIZABLE"),
        _ => ("unknown", "UNKNOWN"),
    };
    let explanation = check_result
        .get("explanation")
        .map(value_text)
        .unwrap_or_default();
    let ops = check_result.get("ops").and_then(Value::as_u64).unwrap_or(0);
    let model = check_result
        .get("model")
        .map(value_text)
        .unwrap_or_default();
    let body = format!(
        "<h1>{}</h1><div class=\"banner {class}\" id=\"verdict\"><span>{banner}</span>\
         <small>{ops} operations, model {}</small></div><p id=\"explanation\">{}</p>",
        esc(title),
        esc(&model),
        esc(&explanation)
    );
    page(title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(index: u64, process: u64, f: &str, value: Value, result: Value, t: (u64, u64)) -> CxOp {
        CxOp {
            index,
            process,
            f: f.into(),
            key: None,
            value,
            result,
            invoke: t.0,
            complete: Some(t.1),
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn explains_a_read_of_a_value_never_written() {
        let cx = Counterexample {
            key: Some("7".into()),
            model: "register".into(),
            ops: vec![
                op(0, 1, "write", json!(1), json!(1), (0, 10)),
                op(2, 2, "read", Value::Null, json!(9), (20, 30)),
            ],
            linearized: vec![0],
            unplaceable: vec![1],
            state: json!(1),
            explanation: None,
            logical_time: false,
        };
        let text = explain(&cx);
        assert!(text.contains("of key 7"), "{text}");
        assert!(text.contains("no operation ever wrote 9"), "{text}");
    }

    #[test]
    fn explains_a_failed_cas_precondition() {
        let cx = Counterexample {
            key: None,
            model: "cas-register".into(),
            ops: vec![
                op(0, 1, "write", json!(3), json!(3), (0, 10)),
                op(2, 2, "cas", json!([1, 2]), json!([1, 2]), (20, 30)),
            ],
            linearized: vec![0],
            unplaceable: vec![1],
            state: json!(3),
            explanation: None,
            logical_time: false,
        };
        let text = explain(&cx);
        assert!(
            text.contains("expected 1") && text.contains("holds 3"),
            "{text}"
        );
    }

    #[test]
    fn linearization_points_lie_inside_their_intervals() {
        let cx = Counterexample {
            key: None,
            model: "register".into(),
            ops: vec![
                op(0, 1, "write", json!(1), json!(1), (0, 100)),
                op(2, 2, "write", json!(2), json!(2), (10, 50)),
                op(4, 3, "read", Value::Null, json!(2), (60, 70)),
            ],
            linearized: vec![0, 1, 2],
            unplaceable: vec![],
            state: json!(2),
            explanation: None,
            logical_time: false,
        };
        let points = lin_points(&cx);
        for (n, &i) in cx.linearized.iter().enumerate() {
            let o = &cx.ops[i];
            assert!(o.invoke <= points[n] && Some(points[n]) <= o.complete);
        }
        assert!(points.windows(2).all(|w| w[0] <= w[1]));
    }
}
