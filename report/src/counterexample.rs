//! `linearizability.html`: why each key cannot be linearized, drawn so a person can check it.
//!
//! The checkers decide and explain (`checkers::explain`): for every illegal key the analysis
//! holds a minimal counterexample (the few ops whose recorded outcomes cannot all be right),
//! the op that cannot be placed, a legal order of the others with the state after each, the
//! sentence, and the checker's longest legal prefix with the ops it could not place next
//! (each marked legal-here or not). This page only draws that:
//! - an index linking every failing key;
//! - per key: the sentence, the minimal counterexample as a timeline (one row per process,
//!   the culprit in red, the order numbered on each op with the state after it, the writes the
//!   sentence refers to in grey), and the longest-prefix view, which can be stepped through one
//!   linearized op at a time like Porcupine's visualizer, ending at the ops that could not be
//!   placed; the ops of the minimal set that lie after them (the later conflicting read) are
//!   drawn too.
//!
//! Layout rules, checked by the browser test through the DOM: the time axis spans every op
//! drawn (an op that never returned is drawn to the right edge with an arrow), labels are
//! placed on lines above their bar so no two overlap, and a label that would cross the right
//! edge is moved left instead of cut. A script measures the labels after load and records
//! overlaps and overflow as `data-` attributes.

use std::collections::HashMap;
use std::fmt::Write as _;

use checkers::analysis::{Analysis, Observed, Verdict};
use checkers::explain::{gap_text, time_text, KeyExplanation};
use checkers::history::{Operation, Outcome, Process};
use checkers::layout;
use serde_json::{json, Value};

use crate::html::{clip, esc, page, script_json, value_text};
use crate::timeline::key_anchor;

/// What an op is in a drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The op that cannot be placed.
    Culprit,
    /// Another op of the minimal counterexample.
    Member,
    /// A write the sentence refers to (relaxed: it may take effect any time, or not).
    Context,
    /// Linearized in the checker's longest prefix.
    Prefix,
    /// Could not be placed after the longest prefix.
    Stuck,
    /// Another op of the key, concurrent with those.
    Other,
}

/// One op to draw.
struct DrawOp<'a> {
    op: &'a Operation,
    role: Role,
    /// Position in the drawn order (1-based) and the state after it.
    step: Option<(usize, Value)>,
    /// For stuck ops: legal in the prefix's final state?
    legal_here: Option<bool>,
}

fn pid(op: &Operation) -> u64 {
    match op.process {
        Process::Client(p) => p,
        Process::Nemesis => u64::MAX,
    }
}

/// The op in a few words for its label: `read → 603`, `cas 603→662`, `write 17`.
fn short(op: &Operation) -> String {
    let what = match (op.f.as_str(), &op.output) {
        ("read" | "get", Some(v)) => format!("{} → {}", op.f, clip(&value_text(v), 24)),
        ("read" | "get", None) if op.ret.is_some() => format!("{} → nil", op.f),
        ("cas", out) => {
            let (a, b) = match &op.input {
                Value::Array(a) if a.len() == 2 => (value_text(&a[0]), value_text(&a[1])),
                other => (value_text(other), "?".into()),
            };
            let miss = if out == &Some(Value::Bool(false)) {
                " (no match)"
            } else {
                ""
            };
            format!("cas {}→{}{miss}", clip(&a, 12), clip(&b, 12))
        }
        (f, _) => format!("{f} {}", clip(&value_text(&op.input), 24)),
    };
    match op.outcome() {
        Outcome::Info => format!("{what} ?"),
        Outcome::Fail => format!("{what} (failed)"),
        Outcome::Ok => what,
    }
}

/// Where an op's outcome stands, in the words the timeline uses too.
fn ending(op: &Operation, logical: bool) -> String {
    match (op.outcome(), op.end) {
        (Outcome::Ok, Some(e)) => format!("completed ok at {}", time_text(e, logical)),
        (Outcome::Fail, Some(e)) => {
            format!("failed at {} (did not take effect)", time_text(e, logical))
        }
        (Outcome::Info, Some(e)) => format!(
            "client gave up at {}: outcome unknown, may take effect at any later time",
            time_text(e, logical)
        ),
        _ => "never returned: outcome unknown, may take effect at any later time".into(),
    }
}

/// Estimated width of `text` at 11 px DejaVu Sans (generous, so real text never overlaps).
fn text_w(text: &str) -> f64 {
    text.chars().count() as f64 * 7.0 + 4.0
}

const W: f64 = 1160.0;
const LEFT: f64 = 92.0;
const RIGHT: f64 = 24.0;
const LINE: f64 = 15.0;
const BAR: f64 = 16.0;

/// An SVG timeline of `ops` (see the module doc for the layout rules).
fn svg(id: &str, ops: &[DrawOp], logical: bool) -> String {
    if ops.is_empty() {
        return String::new();
    }
    let lo = ops.iter().map(|d| d.op.call).min().unwrap_or(0);
    let hi = ops
        .iter()
        .map(|d| d.op.ret.or(d.op.end).unwrap_or(d.op.call))
        .chain(ops.iter().map(|d| d.op.call))
        .max()
        .unwrap_or(lo)
        .max(lo + 1);
    // Room at the right for ops that never returned.
    let span = (hi - lo) as f64 * 1.06;
    let x = |t: u64| LEFT + (t.saturating_sub(lo)) as f64 / span * (W - LEFT - RIGHT);
    let right_edge = x(lo + span as u64);
    let mut procs: Vec<u64> = Vec::new();
    let mut order: Vec<&DrawOp> = ops.iter().collect();
    order.sort_by_key(|d| (d.op.call, d.op.invoke_index));
    for d in &order {
        if !procs.contains(&pid(d.op)) {
            procs.push(pid(d.op));
        }
    }
    // Place labels per row: the first line above the bar where it overlaps nothing.
    struct Placed {
        line: usize,
        x: f64,
        text: String,
        below: Option<(f64, String)>,
    }
    let mut placed: HashMap<u64, Placed> = HashMap::new();
    let mut lines_of: HashMap<u64, usize> = HashMap::new();
    let mut below_of: HashMap<u64, bool> = HashMap::new();
    for p in &procs {
        let mut used: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut used_below: Vec<(f64, f64)> = Vec::new();
        for d in order.iter().filter(|d| pid(d.op) == *p) {
            let mut text = short(d.op);
            if let Some(n) = &d.op.node {
                text.push_str(&format!(" · {n}"));
            }
            if let Some((k, _)) = &d.step {
                text = format!("{k}. {text}");
            }
            if d.role == Role::Culprit {
                text = format!("✗ {text}");
            }
            let w = text_w(&text);
            let mut x0 = x(d.op.call).max(LEFT);
            if x0 + w > W - 2.0 {
                x0 = (W - 2.0 - w).max(LEFT);
            }
            let free =
                |l: &Vec<(f64, f64)>| l.iter().all(|&(a, b)| x0 + w + 6.0 <= a || b + 6.0 <= x0);
            let line = match used.iter().position(free) {
                Some(i) => i,
                None => {
                    used.push(Vec::new());
                    used.len() - 1
                }
            };
            used[line].push((x0, x0 + w));
            // The state after the op, under its bar.
            let below = d.step.as_ref().map(|(_, s)| {
                let t = format!("→ {}", clip(&value_text(s), 20));
                let tw = text_w(&t);
                let mut bx = x(d.op.call).max(LEFT);
                if bx + tw > W - 2.0 {
                    bx = (W - 2.0 - tw).max(LEFT);
                }
                while used_below
                    .iter()
                    .any(|&(a, b)| !(bx + tw + 4.0 <= a || b + 4.0 <= bx))
                {
                    bx += 6.0;
                }
                used_below.push((bx, bx + tw));
                (bx, t)
            });
            placed.insert(
                d.op.invoke_index,
                Placed {
                    line,
                    x: x0,
                    text,
                    below,
                },
            );
        }
        lines_of.insert(*p, used.len().max(1));
        below_of.insert(*p, !used_below.is_empty());
    }
    let axis = 34.0;
    let mut row_top: HashMap<u64, f64> = HashMap::new();
    let mut y = axis;
    for p in &procs {
        row_top.insert(*p, y);
        y += lines_of[p] as f64 * LINE + BAR + if below_of[p] { LINE } else { 4.0 } + 10.0;
    }
    let height = y + 8.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"{id}\" class=\"cx\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {W} {height:.0}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"11\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    );
    // Time axis: a handful of ticks, labelled as the sentence labels times.
    for k in 0..=5u64 {
        let t = lo + (hi - lo) * k / 5;
        let xx = x(t);
        let label = if k == 0 {
            time_text(t, logical)
        } else if logical {
            format!("+{}", t - lo)
        } else {
            format!("+{}", gap_text(t - lo))
        };
        let anchor = if k == 5 { "end" } else { "start" };
        let _ = write!(
            s,
            "<line x1=\"{xx:.1}\" y1=\"{a:.1}\" x2=\"{xx:.1}\" y2=\"{b:.1}\" stroke=\"#eee\"/>\
             <text x=\"{xx:.1}\" y=\"14\" text-anchor=\"{anchor}\" fill=\"#555\" class=\"tick\">{l}</text>",
            a = axis - 8.0,
            b = height - 6.0,
            l = esc(&label),
        );
    }
    for p in &procs {
        let top = row_top[p];
        let _ = write!(
            s,
            "<text x=\"6\" y=\"{:.1}\" fill=\"#333\">p{p}</text>",
            top + lines_of[p] as f64 * LINE + BAR - 4.0
        );
    }
    for d in &order {
        let pl = &placed[&d.op.invoke_index];
        let top = row_top[&pid(d.op)];
        let by = top + lines_of[&pid(d.op)] as f64 * LINE;
        let x0 = x(d.op.call);
        let open = d.op.ret.is_none() && d.op.outcome() == Outcome::Info;
        let x1 = match (open, d.op.ret.or(d.op.end)) {
            (true, _) | (_, None) => right_edge,
            (_, Some(e)) => x(e),
        }
        .max(x0 + 7.0);
        let (fill, stroke, sw, dash) = match d.role {
            Role::Culprit => ("#fdecea", "#c0392b", 2.5, ""),
            Role::Member => ("#e8f0f8", "#1f5fa8", 1.5, ""),
            Role::Prefix => ("#e8f0f8", "#4e79a7", 1.0, ""),
            Role::Stuck if d.legal_here == Some(false) => ("#fdecea", "#c0392b", 2.0, ""),
            Role::Stuck => ("#fff4e0", "#d68910", 2.0, ""),
            Role::Context => ("#f4f4f4", "#999", 1.0, " stroke-dasharray=\"4 3\""),
            Role::Other => ("#f7f7f7", "#bbb", 1.0, ""),
        };
        let role = match d.role {
            Role::Culprit => "culprit",
            Role::Member => "member",
            Role::Context => "context",
            Role::Prefix => "prefix",
            Role::Stuck => "stuck",
            Role::Other => "other",
        };
        let mut tip = format!(
            "{} by p{}{}\ninvoked at {}\n{}",
            short(d.op),
            pid(d.op),
            d.op.node
                .as_deref()
                .map(|n| format!(" via {n}"))
                .unwrap_or_default(),
            time_text(d.op.call, logical),
            ending(d.op, logical)
        );
        if let Some((k, st)) = &d.step {
            let _ = write!(
                tip,
                "\nstep {k} of the order; the value is then {}",
                value_text(st)
            );
        }
        match (d.role, d.legal_here) {
            (Role::Culprit, _) => tip.push_str("\ncannot be placed"),
            (Role::Stuck, Some(true)) => {
                tip.push_str("\nlegal here, but no order of the remaining ops works after it")
            }
            (Role::Stuck, _) => tip.push_str("\nnot legal in the state the prefix leaves"),
            (Role::Context, _) => {
                tip.push_str("\n(context: may take effect at any time after its invoke, or never)")
            }
            _ => {}
        }
        let _ = write!(
            s,
            "<g class=\"op {role}\" data-index=\"{idx}\" data-step=\"{step}\"><title>{tip}</title>\
             <rect class=\"bar\" x=\"{x0:.1}\" y=\"{by:.1}\" width=\"{w:.1}\" height=\"{BAR}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"{dash}/>",
            idx = d.op.invoke_index,
            step = d.step.as_ref().map(|(k, _)| k.to_string()).unwrap_or_default(),
            tip = esc(&tip),
            w = x1 - x0,
        );
        if open {
            let _ = write!(
                s,
                "<path d=\"M{a:.1},{m:.1} L{b:.1},{m:.1}\" stroke=\"{stroke}\" marker-end=\"url(#arrow)\"/>",
                a = x1 - 14.0,
                b = x1 - 2.0,
                m = by + BAR / 2.0
            );
            if let Some(e) = d.op.end {
                let _ = write!(
                    s,
                    "<line x1=\"{g:.1}\" y1=\"{by:.1}\" x2=\"{g:.1}\" y2=\"{b2:.1}\" stroke=\"{stroke}\" stroke-width=\"2\"/>",
                    g = x(e),
                    b2 = by + BAR
                );
            }
        }
        let colour = match d.role {
            Role::Culprit => "#a93226",
            Role::Stuck if d.legal_here == Some(false) => "#a93226",
            Role::Context | Role::Other => "#666",
            _ => "#1d2330",
        };
        let weight = if d.role == Role::Culprit {
            "bold"
        } else {
            "normal"
        };
        let _ = write!(
            s,
            "<text class=\"lbl\" x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\" font-weight=\"{weight}\">{}</text>",
            pl.x,
            top + pl.line as f64 * LINE + 11.0,
            esc(&pl.text)
        );
        if let Some((bx, t)) = &pl.below {
            let _ = write!(
                s,
                "<text class=\"lbl state\" x=\"{bx:.1}\" y=\"{:.1}\" fill=\"#2e6b3a\" font-size=\"10\">{}</text>",
                by + BAR + 11.0,
                esc(t)
            );
        }
        s.push_str("</g>");
    }
    s.push_str(
        "<defs><marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"6\" refY=\"4\" orient=\"auto\">\
         <path d=\"M0,0 L8,4 L0,8 z\" fill=\"#888\"/></marker></defs></svg>",
    );
    s
}

/// The ops of the key, for the longest-prefix view: the last prefix ops, the stuck ones, the
/// minimal set (also what lies after the stuck ops), and everything concurrent with those.
fn prefix_view<'a>(
    k: &KeyExplanation,
    cx: Option<&'a checkers::linearizable::Counterexample>,
    key_ops: &[&'a Operation],
) -> Vec<DrawOp<'a>> {
    let Some(cx) = cx else {
        return Vec::new();
    };
    let mut out: Vec<DrawOp<'a>> = Vec::new();
    let tail = cx.prefix.len().saturating_sub(30);
    for (n, c) in cx.prefix.iter().enumerate().skip(tail) {
        out.push(DrawOp {
            op: &c.op,
            role: Role::Prefix,
            step: Some((n + 1, c.state_after.clone().unwrap_or(Value::Null))),
            legal_here: None,
        });
    }
    for u in &cx.unplaceable {
        let legal = k
            .stuck
            .iter()
            .find(|s| s.invoke_index == u.op.invoke_index)
            .map(|s| s.legal_here);
        out.push(DrawOp {
            op: &u.op,
            role: Role::Stuck,
            step: None,
            legal_here: legal,
        });
    }
    let (lo, hi) = out.iter().fold((u64::MAX, 0u64), |(lo, hi), d| {
        (lo.min(d.op.call), hi.max(d.op.ret.unwrap_or(d.op.call)))
    });
    let stuck_hi = cx
        .unplaceable
        .iter()
        .map(|u| u.op.ret.unwrap_or(u.op.call))
        .max()
        .unwrap_or(hi);
    let members: Vec<u64> = k.ops.iter().map(|o| o.invoke_index).collect();
    for op in key_ops {
        if out.len() >= 120 {
            break;
        }
        if out.iter().any(|d| d.op.invoke_index == op.invoke_index) {
            continue;
        }
        let concurrent = op.call <= stuck_hi && op.ret.unwrap_or(u64::MAX) >= lo;
        if members.contains(&op.invoke_index) || concurrent {
            out.push(DrawOp {
                op,
                role: Role::Other,
                step: None,
                legal_here: None,
            });
        }
    }
    out
}

/// One key's section.
fn key_section(b: &mut String, k: &KeyExplanation, a: &Analysis, o: &Observed) {
    let logical = k.sentence.logical_time;
    let anchor = key_anchor(k.key.as_deref());
    let name = k
        .key
        .as_deref()
        .map(|k| format!("Key {k}"))
        .unwrap_or_else(|| "The register".into());
    let _ = write!(
        b,
        "<section class=\"key\" id=\"{anchor}\"><h2>{}{}</h2>\
         <p class=\"why\" id=\"explanation-{anchor}\">{}</p>",
        esc(&name),
        k.kind
            .as_deref()
            .map(|k| format!(" — {}", esc(k)))
            .unwrap_or_default(),
        esc(&k.sentence.text)
    );
    if k.ops.is_empty() {
        b.push_str("</section>");
        return;
    }
    // The minimal counterexample: members, the culprit, the context writes, the order.
    let steps: HashMap<u64, (usize, Value)> = k
        .order
        .iter()
        .enumerate()
        .map(|(n, st)| (st.invoke_index, (n + 1, st.state_after.clone())))
        .collect();
    let mut draw: Vec<DrawOp> = Vec::new();
    for (i, op) in k.ops.iter().enumerate() {
        draw.push(DrawOp {
            op,
            role: if Some(i) == k.culprit {
                Role::Culprit
            } else {
                Role::Member
            },
            step: steps.get(&op.invoke_index).cloned(),
            legal_here: None,
        });
    }
    for op in &k.context {
        draw.push(DrawOp {
            op,
            role: Role::Context,
            step: steps.get(&op.invoke_index).cloned(),
            legal_here: None,
        });
    }
    let _ = write!(
        b,
        "<h3>Minimal counterexample: {} operations</h3><p class=\"muted\">These operations, with the \
         results they returned, cannot all be right: even if every other operation of the key took \
         effect at any time after its invoke, or never, no order respecting real time is legal. \
         {}Numbers give a legal order of the others with the value after each step; the red \
         operation cannot be placed{}. Grey dashed: the writes of the values read, which may take \
         effect at any time after their invoke.</p>",
        k.ops.len(),
        if k.one_minimal {
            "Relaxing any one of them makes the key linearizable. "
        } else {
            "(The time budget ran out before every op could be tried alone: the set may not be minimal.) "
        },
        k.culprit_state
            .as_ref()
            .map(|s| format!(
                " (after the operations that completed before it began, the value is {})",
                esc(&value_text(s))
            ))
            .unwrap_or_default()
    );
    let _ = write!(
        b,
        "<div class=\"scroll\">{}</div>",
        svg(&format!("cx-{anchor}"), &draw, logical)
    );
    ops_table(b, &draw, logical);
    // The checker's longest prefix, stepped through.
    let cx = a
        .linearizability
        .as_ref()
        .and_then(|l| l.partitions.iter().find(|p| p.key == k.key))
        .and_then(|p| p.counterexample.as_ref());
    let key_ops: Vec<&Operation> = o
        .ops
        .iter()
        .filter(|op| op.key == k.key && !op.failed)
        .collect();
    let view = prefix_view(k, cx, &key_ops);
    if let Some(cx) = cx {
        let legal = k.stuck.iter().filter(|s| s.legal_here).count();
        let _ = write!(
            b,
            "<details class=\"prefix\"><summary>The checker's longest legal prefix: {} linearized, \
             then none of the {} that could come next works ({} of them legal in that state but \
             leading nowhere)</summary><p class=\"muted\">Step through the order (the last {} steps \
             are drawn): <button class=\"step-prev\">◀</button> <button class=\"step-next\">▶</button> \
             <button class=\"step-end\">end</button> <span class=\"step-info\"></span></p><div class=\"scroll\">{}</div></details>",
            count(cx.prefix.len(), "operation"),
            cx.unplaceable.len(),
            legal,
            cx.prefix.len().min(30),
            svg(&format!("prefix-{anchor}"), &view, logical)
        );
    }
    b.push_str("</section>");
}

/// `1 operation`, `3 operations`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn ops_table(b: &mut String, draw: &[DrawOp], logical: bool) {
    b.push_str(
        "<table class=\"cx-ops\"><tr><th>step</th><th>operation</th><th>process</th><th>node</th>\
         <th class=\"num\">invoked</th><th>outcome</th><th>history index</th></tr>",
    );
    let mut rows: Vec<&DrawOp> = draw.iter().collect();
    rows.sort_by_key(|d| (d.op.call, d.op.invoke_index));
    for d in rows {
        let _ = write!(
            b,
            "<tr class=\"{}\"><td>{}</td><td><code>{}</code></td><td>p{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            if d.role == Role::Culprit { "unplaceable" } else { "" },
            match (&d.step, d.role) {
                (_, Role::Culprit) => "✗".to_string(),
                (Some((k, s)), _) => format!("{k} → {}", esc(&clip(&value_text(s), 24))),
                _ => String::new(),
            },
            esc(&short(d.op)),
            pid(d.op),
            esc(d.op.node.as_deref().unwrap_or("–")),
            time_text(d.op.call, logical),
            esc(&ending(d.op, logical)),
            d.op.invoke_index
        );
    }
    b.push_str("</table>");
}

/// The body of the counterexample page (`in_run`: link back to the run's index).
fn body(a: &Analysis, o: &Observed, title: &str, in_run: bool) -> String {
    let mut b = String::new();
    let lin = a.linearizability.as_ref();
    let parts = lin.map_or(0, |l| l.partitions.len());
    let _ = write!(
        b,
        "<h1>Linearizability counterexample</h1><div class=\"muted\">{}{}</div>\
         <div class=\"banner invalid\" id=\"verdict\"><span>NOT LINEARIZABLE</span><small>{} of {} {} cannot be linearized</small></div>",
        esc(title),
        lin.map(|l| format!(", model {}", l.model)).unwrap_or_default(),
        a.counterexamples.len(),
        parts,
        if parts == 1 { "key" } else { "keys" }
    );
    b.push_str("<p class=\"keys\" id=\"failing-keys\">Failing keys: ");
    for k in &a.counterexamples {
        let _ = write!(
            b,
            "<a class=\"key-link\" href=\"#{}\">{}</a>",
            key_anchor(k.key.as_deref()),
            esc(k.key.as_deref().unwrap_or("(all)"))
        );
    }
    b.push_str("</p>");
    if let Some(first) = a.counterexamples.first() {
        let _ = write!(
            b,
            "<p id=\"explanation\" class=\"why\">{}</p>",
            esc(&first.sentence.text)
        );
    }
    for k in &a.counterexamples {
        key_section(&mut b, k, a, o);
    }
    if in_run {
        let _ = write!(b, "<p><a href=\"{}\">← run overview</a></p>", layout::INDEX);
    }
    let data = json!({ "keys": a.counterexamples.iter().map(|k| key_anchor(k.key.as_deref())).collect::<Vec<_>>() });
    let _ = write!(
        b,
        "<style>{CX_CSS}</style><script id=\"cx-data\" type=\"application/json\">{}</script><script>{CX_JS}</script>",
        script_json(&data)
    );
    b
}

/// The counterexample page of a run (a complete HTML document linking back to index.html).
pub fn render_counterexample_html(a: &Analysis, o: &Observed, title: &str) -> String {
    page(
        &format!("counterexample — {title}"),
        &body(a, o, title, true),
    )
}

/// The page `faultline check --html` writes: the counterexample when the history is not
/// linearizable, otherwise the verdict and the summary, so the file always says what was
/// decided.
pub fn render_check_page(a: &Analysis, o: &Observed, title: &str) -> String {
    if a.verdict == Verdict::Invalid && !a.counterexamples.is_empty() {
        return page(
            &format!("counterexample — {title}"),
            &body(a, o, title, false),
        );
    }
    let (class, banner) = match a.verdict {
        Verdict::Valid => ("valid", "LINEARIZABLE"),
        Verdict::Invalid => ("invalid", "NOT LINEARIZABLE"),
        Verdict::Unknown => ("unknown", "UNKNOWN"),
    };
    let lin = a.linearizability.as_ref();
    let body = format!(
        "<h1>{}</h1><div class=\"banner {class}\" id=\"verdict\"><span>{banner}</span>\
         <small>{} operations, model {}</small></div><p id=\"explanation\">{}</p>",
        esc(title),
        lin.map_or(0, |l| l.ops),
        lin.map(|l| l.model.name()).unwrap_or("?"),
        esc(&a.summary)
    );
    page(title, &body)
}

const CX_CSS: &str = r#"
.scroll { overflow-x: auto; }
svg.cx { display: block; margin: 6px 0 10px; border: 1px solid var(--line); }
svg.cx g.op.cur rect.bar { stroke: #000; stroke-width: 3; }
svg.cx g.op.future { opacity: 0.35; }
section.key { border-top: 1px solid var(--line); margin-top: 22px; }
tr.unplaceable { background: #fdecea; font-weight: bold; }
"#;

/// Measures the drawn labels (for people nothing changes; the browser test reads the result)
/// and steps through each longest-prefix view.
const CX_JS: &str = r#"
(function(){
function measure(svg) {
  const boxes = Array.from(svg.querySelectorAll('text.lbl')).map(t => t.getBoundingClientRect());
  const sb = svg.getBoundingClientRect();
  let overlaps = 0, outside = 0;
  for (let i = 0; i < boxes.length; i++) {
    const a = boxes[i];
    if (a.left < sb.left - 0.5 || a.right > sb.right + 0.5) outside++;
    for (let j = i + 1; j < boxes.length; j++) { const b = boxes[j];
      if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) overlaps++; }
  }
  svg.setAttribute('data-labels', boxes.length);
  svg.setAttribute('data-overlaps', overlaps);
  svg.setAttribute('data-outside', outside);
  const c = svg.querySelector('g.culprit text.lbl');
  if (c) { const r = c.getBoundingClientRect();
    svg.setAttribute('data-culprit-box', [r.left, r.top, r.right, r.bottom].map(v => v.toFixed(1)).join(','));
    svg.setAttribute('data-culprit-in-view', (r.left >= 0 && r.right <= window.innerWidth) ? 'yes' : 'no'); }
}
window.addEventListener('load', () => {
  // Drawings inside closed details have no boxes: open them for the measurement only.
  document.querySelectorAll('svg.cx').forEach(svg => {
    const d = svg.closest('details'), closed = d && !d.open;
    if (closed) d.open = true;
    measure(svg);
    if (closed) d.open = false;
  });
  document.body.setAttribute('data-measured', 'yes');
});
document.querySelectorAll('details.prefix').forEach(d => {
  const svg = d.querySelector('svg'); if (!svg) return;
  const ops = Array.from(svg.querySelectorAll('g.op'));
  const steps = ops.filter(g => g.dataset.step).sort((a, b) => a.dataset.step - b.dataset.step);
  const info = d.querySelector('.step-info');
  let cur = steps.length;
  function show() {
    ops.forEach(g => { g.classList.remove('cur'); g.classList.remove('future'); });
    steps.forEach((g, i) => { if (i >= cur) g.classList.add('future'); });
    if (cur > 0 && cur <= steps.length) { const g = steps[cur - 1]; g.classList.add('cur');
      const t = g.querySelector('title').textContent.split('\n');
      info.textContent = 'step ' + g.dataset.step + ': ' + t[0] + ' — ' + (t.find(l => l.startsWith('step')) || ''); }
    if (cur >= steps.length) info.textContent = 'end of the prefix: the red and orange operations could not be placed next';
  }
  d.querySelector('.step-prev').addEventListener('click', () => { cur = Math.max(1, cur - 1); show(); });
  d.querySelector('.step-next').addEventListener('click', () => { cur = Math.min(steps.length, cur + 1); show(); });
  d.querySelector('.step-end').addEventListener('click', () => { cur = steps.length; show(); });
  show();
});
})();
"#;
