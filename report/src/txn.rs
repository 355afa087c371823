//! The transactions section of a run's `index.html`: the transactional checker's verdict and
//! sentence (Elle, bank, set or counter), and for Elle every anomaly class found with its
//! description, and its first examples, each beside its one-sentence explanation; a cycle is
//! drawn ([`crate::cycle`]), other anomalies list the transactions they name.
//!
//! Everything shown is the `transactions` section of `results.json` as the checker wrote it.

use std::fmt::Write as _;

use checkers::elle::{Anomaly, ElleResult};
use checkers::txn_section::TxnSection;

use crate::cycle;
use crate::html::{clip, esc, secs};
use crate::run::Run;

/// Examples drawn per anomaly class (the rest are counted).
const DRAWN_PER_CLASS: usize = 2;

/// Writes the section when the run has a transactional check.
pub(crate) fn section(b: &mut String, run: &Run) {
    let Some(t) = run.analysis.as_ref().and_then(|a| a.transactions.as_ref()) else {
        return;
    };
    let verdict = t.verdict();
    let _ = write!(
        b,
        "<h2>Transactions</h2><p id=\"transactions\" data-verdict=\"{}\"><b>{}</b> — {}: {}</p>",
        verdict.name(),
        verdict.name(),
        esc(&t.checker()),
        esc(t.explanation())
    );
    match t {
        TxnSection::Elle(r) => elle(b, r),
        other => {
            let examples = other.examples(10);
            if !examples.is_empty() {
                b.push_str("<ul id=\"txn-examples\">");
                for e in examples {
                    let _ = write!(b, "<li>{}</li>", esc(&e));
                }
                b.push_str("</ul>");
            }
        }
    }
}

fn elle(b: &mut String, r: &ElleResult) {
    let _ = write!(
        b,
        "<p class=\"muted\">{} committed, {} aborted, {} unknown; dependency graph of {} \
         transactions and {} edges, {} cyclic component(s); checked in {:.1} ms.</p>",
        r.txns.ok,
        r.txns.fail,
        r.txns.info,
        r.graph.vertices,
        r.graph.edges,
        r.graph.cyclic_components,
        r.elapsed_ms
    );
    if r.counts.is_empty() {
        return;
    }
    b.push_str(
        "<table id=\"anomalies\"><tr><th>anomaly</th><th class=\"num\">found</th>\
         <th>prohibited by the model</th><th>meaning</th></tr>",
    );
    for (class, n) in &r.counts {
        let _ = write!(
            b,
            "<tr><td><a href=\"#anomaly-{0}\">{0}</a></td><td class=\"num\">{n}</td><td>{1}</td><td>{2}</td></tr>",
            class.name(),
            if r.model.prohibits(*class) {
                format!("yes ({})", r.model)
            } else {
                format!("no, {} allows it", r.model)
            },
            esc(class.description())
        );
    }
    b.push_str("</table>");
    b.push_str(
        "<style>.anomaly{margin:1em 0;padding:.5em 1em;border-left:4px solid #c0392b}\
         .anomaly.allowed{border-color:#95a5a6} .anomaly .pair{display:flex;flex-wrap:wrap;\
         gap:1em;align-items:flex-start} .anomaly .pair p{flex:1 1 22em;max-width:40em}\
         svg.cycle{max-width:100%;height:auto;background:#fbfcfc;border:1px solid #e5e8e8}</style>",
    );
    for (class, list) in &r.anomalies {
        let _ = write!(
            b,
            "<div class=\"anomaly{}\" id=\"anomaly-{}\"><h3>{} <small class=\"muted\">{}</small></h3>",
            if r.model.prohibits(*class) { "" } else { " allowed" },
            class.name(),
            class.name(),
            esc(class.description())
        );
        for (i, a) in list.iter().take(DRAWN_PER_CLASS).enumerate() {
            example(b, a, &format!("{}-{i}", class.name()));
        }
        let total = r.counts.get(class).copied().unwrap_or(list.len());
        if total > DRAWN_PER_CLASS.min(list.len()) {
            let _ = write!(
                b,
                "<p class=\"muted\">{} more of this class (results.json keeps up to {} examples).</p>",
                total - DRAWN_PER_CLASS.min(list.len()),
                list.len()
            );
        }
        b.push_str("</div>");
    }
}

/// One anomaly: its sentence beside its cycle, or beside the transactions it names.
fn example(b: &mut String, a: &Anomaly, uid: &str) {
    let drawing = cycle::svg(a, uid);
    let _ = write!(
        b,
        "<div class=\"pair\" data-class=\"{}\"><p class=\"explanation\">{}</p>",
        a.class.name(),
        esc(&a.explanation)
    );
    if drawing.is_empty() {
        b.push_str("<table class=\"txns\"><tr><th>txn</th><th>process</th><th>status</th><th>invoked</th><th>micro-ops</th></tr>");
        for t in &a.txns {
            let mops: Vec<String> = t.mops.iter().map(cycle::mop_text).collect();
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&t.name),
                t.process,
                t.status,
                secs(t.call),
                esc(&clip(&mops.join("; "), 200))
            );
        }
        b.push_str("</table>");
    } else {
        b.push_str(&drawing);
    }
    b.push_str("</div>");
}
