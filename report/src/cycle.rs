//! Draws the dependency cycle of one Elle anomaly as inline SVG, so a person sees at a glance
//! which transactions form it and why each must precede the next: transactions are boxes on
//! a circle (name, process, invoke and completion time, micro-ops), edges are arrows labelled
//! with their relation and the key and values that justify them (ww, wr, rw, process, rt).
//!
//! Everything drawn is a field of the anomaly as the checker reported it (`results.json`);
//! each edge also carries its relation, key and justifying micro-ops as `data-` attributes,
//! so tests (and curious readers) can hold the drawing against the history.

use std::f64::consts::PI;
use std::fmt::Write as _;

use checkers::elle::{Anomaly, CycleStep, Relation, TxnRef};
use checkers::txn::{Mop, ReadValue};

use crate::html::{clip, esc, secs};

/// Most micro-op lines drawn in one box; the rest are counted.
const MOP_LINES: usize = 4;
/// Characters per line of a box, at most.
const LINE_CHARS: usize = 34;
/// Approximate width of one character of the 11px monospace text, px.
const CHAR_W: f64 = 6.7;
/// Line height inside a box, px.
const LINE_H: f64 = 14.0;

/// A micro-op as one short line: `append x 3`, `r y [1 2]`, `w z 7`.
pub fn mop_text(m: &Mop) -> String {
    match m {
        Mop::Append { key, value } => format!("append {key} {value}"),
        Mop::Write { key, value } => format!("w {key} {value}"),
        Mop::Read { key, value } => format!("r {key} {}", read_text(value.as_ref())),
    }
}

fn read_text(v: Option<&ReadValue>) -> String {
    match v {
        None => "?".into(),
        Some(ReadValue::Nil) => "nil".into(),
        Some(ReadValue::Int(i)) => i.to_string(),
        Some(ReadValue::List(l)) if l.len() <= 6 => format!(
            "[{}]",
            l.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
        ),
        Some(ReadValue::List(l)) => format!(
            "[… {}] ({})",
            l[l.len() - 4..]
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            l.len()
        ),
    }
}

/// The value a micro-op wrote, or what it read, for an edge label.
fn mop_value(m: &Mop) -> String {
    match m {
        Mop::Append { value, .. } | Mop::Write { value, .. } => value.to_string(),
        Mop::Read { value, .. } => read_text(value.as_ref()),
    }
}

/// The short label of an edge: relation, key, and the values that justify it.
pub fn edge_label(step: &CycleStep, from: &TxnRef, to: &TxnRef) -> String {
    let key = step.key.as_deref().unwrap_or("?");
    match (step.relation, &step.evidence) {
        (Relation::Ww, Some(e)) => {
            format!("ww {key}: {} then {}", mop_value(&e.from), mop_value(&e.to))
        }
        (Relation::Wr, Some(e)) => format!(
            "wr {key}: {} read in {}",
            mop_value(&e.from),
            mop_value(&e.to)
        ),
        (Relation::Rw, Some(e)) => format!(
            "rw {key}: read {} misses {}",
            mop_value(&e.from),
            mop_value(&e.to)
        ),
        (Relation::Process, _) => format!("process {}", from.process),
        (Relation::Realtime, _) => format!(
            "rt: done {} < invoked {}",
            from.ret.map_or("?".into(), secs),
            secs(to.call)
        ),
        (r, None) => format!("{} {key}", r.name()),
    }
}

/// The lines of a transaction's box.
fn box_lines(t: &TxnRef) -> Vec<String> {
    let mut lines = vec![
        format!("{} · process {}", t.name, t.process),
        match t.ret {
            Some(r) => format!("{} → {}", secs(t.call), secs(r)),
            None => format!("{} → ? ({})", secs(t.call), status_word(t)),
        },
    ];
    for m in t.mops.iter().take(MOP_LINES) {
        lines.push(mop_text(m));
    }
    if t.mops.len() > MOP_LINES {
        lines.push(format!("… {} more", t.mops.len() - MOP_LINES));
    }
    lines.into_iter().map(|l| clip(&l, LINE_CHARS)).collect()
}

fn status_word(t: &TxnRef) -> &'static str {
    match t.status {
        checkers::txn::TxnStatus::Ok => "ok",
        checkers::txn::TxnStatus::Fail => "failed",
        checkers::txn::TxnStatus::Info => "unknown",
    }
}

#[derive(Clone, Copy)]
struct Pt {
    x: f64,
    y: f64,
}

/// Where the ray from a box's centre toward `toward` leaves the box (half sizes `hw`, `hh`).
fn exit(c: Pt, hw: f64, hh: f64, toward: Pt) -> Pt {
    let (dx, dy) = (toward.x - c.x, toward.y - c.y);
    let tx = if dx.abs() > 1e-9 {
        hw / dx.abs()
    } else {
        f64::INFINITY
    };
    let ty = if dy.abs() > 1e-9 {
        hh / dy.abs()
    } else {
        f64::INFINITY
    };
    let t = tx.min(ty).min(1.0);
    Pt {
        x: c.x + dx * t,
        y: c.y + dy * t,
    }
}

/// The anomaly's cycle as an `<svg>` element; empty for anomalies that are not cycles. `uid`
/// keeps the arrow marker's id unique among several drawings on one page.
pub fn svg(a: &Anomaly, uid: &str) -> String {
    let n = a.txns.len();
    if a.steps.is_empty() || n == 0 || a.steps.len() != n {
        return String::new();
    }
    let lines: Vec<Vec<String>> = a.txns.iter().map(box_lines).collect();
    let bw = lines
        .iter()
        .flatten()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(10) as f64
        * CHAR_W
        + 16.0;
    let bh = lines.iter().map(Vec::len).max().unwrap_or(2) as f64 * LINE_H + 10.0;
    // Adjacent boxes on the circle stay apart by at least a label's room.
    let gap = 150.0;
    let r = if n == 2 {
        (bw + gap) / 2.0
    } else {
        (bw.max(bh) + gap) / (2.0 * (PI / n as f64).sin())
    };
    let margin = 40.0;
    let (width, height) = if n == 2 {
        (2.0 * r + bw + 2.0 * margin, bh + 2.0 * margin + 110.0)
    } else {
        (2.0 * (r + margin) + bw, 2.0 * (r + margin) + bh)
    };
    let centre = Pt {
        x: width / 2.0,
        y: height / 2.0,
    };
    let pos: Vec<Pt> = (0..n)
        .map(|i| {
            // From the left (two) or the top (more), clockwise.
            let angle = if n == 2 {
                PI * (1.0 + i as f64)
            } else {
                -PI / 2.0 + 2.0 * PI * i as f64 / n as f64
            };
            Pt {
                x: centre.x + r * angle.cos(),
                y: centre.y + r * angle.sin(),
            }
        })
        .collect();
    let mut s = String::with_capacity(4096);
    let _ = write!(
        s,
        "<svg class=\"cycle\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"{} cycle: {}\" data-class=\"{}\">\
         <defs><marker id=\"arrow-{uid}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
         markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker></defs>",
        a.class.name(),
        esc(&a.txns.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(" → ")),
        a.class.name(),
    );
    for (i, step) in a.steps.iter().enumerate() {
        let j = (i + 1) % n;
        let (p0, p1) = (pos[i], pos[j]);
        let (dx, dy) = (p1.x - p0.x, p1.y - p0.y);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let mut normal = Pt {
            x: -dy / len,
            y: dx / len,
        };
        let mid = Pt {
            x: (p0.x + p1.x) / 2.0,
            y: (p0.y + p1.y) / 2.0,
        };
        // Bend away from the circle's centre (two boxes: each direction to its own side).
        if n > 2
            && (mid.x + normal.x - centre.x).powi(2) + (mid.y + normal.y - centre.y).powi(2)
                < (mid.x - centre.x).powi(2) + (mid.y - centre.y).powi(2)
        {
            normal = Pt {
                x: -normal.x,
                y: -normal.y,
            };
        }
        let bend = if n == 2 { 55.0 } else { 30.0 };
        let ctrl = Pt {
            x: mid.x + normal.x * bend,
            y: mid.y + normal.y * bend,
        };
        let a0 = exit(p0, bw / 2.0, bh / 2.0, ctrl);
        let a1 = exit(p1, bw / 2.0 + 3.0, bh / 2.0 + 3.0, ctrl);
        let on_curve = Pt {
            x: 0.25 * a0.x + 0.5 * ctrl.x + 0.25 * a1.x,
            y: 0.25 * a0.y + 0.5 * ctrl.y + 0.25 * a1.y,
        };
        let (from, to) = (&a.txns[i], &a.txns[j]);
        let label = edge_label(step, from, to);
        let lw = label.chars().count() as f64 * CHAR_W + 8.0;
        let lp = Pt {
            x: on_curve.x + normal.x * 12.0,
            y: on_curve.y + normal.y * 12.0,
        };
        let colour = match step.relation {
            Relation::Ww => "#8e44ad",
            Relation::Wr => "#2471a3",
            Relation::Rw => "#c0392b",
            Relation::Process => "#7f8c8d",
            Relation::Realtime => "#d68910",
        };
        let mop_attr = |m: Option<&Mop>| {
            m.map(|m| esc(&serde_json::to_string(m).unwrap_or_default()))
                .unwrap_or_default()
        };
        let _ = write!(
            s,
            "<g class=\"edge\" data-from=\"{}\" data-to=\"{}\" data-rel=\"{}\" data-key=\"{}\" \
             data-from-mop=\"{}\" data-to-mop=\"{}\"><title>{}</title>\
             <path d=\"M{:.1},{:.1} Q{:.1},{:.1} {:.1},{:.1}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"2\"{} marker-end=\"url(#arrow-{uid})\"/>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{lw:.1}\" height=\"16\" rx=\"3\" fill=\"#fff\" \
             fill-opacity=\"0.9\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
             font-family=\"monospace\" font-size=\"11\" fill=\"{colour}\">{}</text></g>",
            esc(&step.from),
            esc(&step.to),
            step.relation.name(),
            esc(step.key.as_deref().unwrap_or("")),
            mop_attr(step.evidence.as_ref().map(|e| &e.from)),
            mop_attr(step.evidence.as_ref().map(|e| &e.to)),
            esc(&step.explanation),
            a0.x,
            a0.y,
            ctrl.x,
            ctrl.y,
            a1.x,
            a1.y,
            if step.relation == Relation::Rw {
                " stroke-dasharray=\"6 3\""
            } else {
                ""
            },
            lp.x - lw / 2.0,
            lp.y - 11.0,
            lp.x,
            lp.y,
            esc(&label),
        );
    }
    for (t, (p, ls)) in a.txns.iter().zip(pos.iter().zip(&lines)) {
        let (x, y) = (p.x - bw / 2.0, p.y - bh / 2.0);
        let _ = write!(
            s,
            "<g class=\"node\" data-txn=\"{}\" data-process=\"{}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" \
             width=\"{bw:.1}\" height=\"{bh:.1}\" rx=\"6\" fill=\"#fdfefe\" stroke=\"#34495e\"/>",
            esc(&t.name),
            t.process
        );
        for (k, l) in ls.iter().enumerate() {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-family=\"monospace\" font-size=\"11\"{}>{}</text>",
                x + 8.0,
                y + 16.0 + k as f64 * LINE_H,
                if k == 0 { " font-weight=\"bold\"" } else { "" },
                esc(l)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}
