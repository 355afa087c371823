//! The "Ghost writes" section of a run's `index.html`, from the analysis's `ghosts` (see
//! `checkers::ghost`): abandoned writes that became visible after newer writes.

use std::fmt::Write as _;

use checkers::analysis::Analysis;
use checkers::layout;

use crate::html::{esc, secs, value_text};

/// Rows shown; the full list is in results.json.
const MAX_ROWS: usize = 20;

/// Appends the section to `b` when the analysis holds at least one ghost; otherwise nothing.
pub fn section(b: &mut String, a: Option<&Analysis>) {
    let Some(report) = a.and_then(|a| a.ghosts.as_ref()) else {
        return;
    };
    if report.is_empty() {
        return;
    }
    let _ = write!(
        b,
        "<h2 id=\"ghosts\">Ghost writes: {}</h2><p>Writes whose clients gave up (outcome \
         unknown) became visible <b>after</b> writes that were only issued later — OceanBase's \
         \"ghost reappearance\". Linearizability allows an unknown write to take effect at any \
         later time, so this check, not the linearizability checker, found it.</p>",
        report.count
    );
    b.push_str(
        "<table id=\"ghost-table\"><tr><th>key</th><th>abandoned write</th>\
         <th class=\"num\">gave up</th><th>newer write</th><th class=\"num\">issued</th>\
         <th class=\"num\">newer read done</th><th class=\"num\">ghost read</th>\
         <th>what happened</th></tr>",
    );
    for g in report.ghosts.iter().take(MAX_ROWS) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{} {} (p{})</td><td class=\"num\">{}</td>\
             <td>{} (p{})</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            esc(g.key.as_deref().unwrap_or("(all)")),
            esc(&g.f),
            esc(&value_text(&g.value)),
            g.process,
            secs(g.gave_up_ns),
            esc(&value_text(&g.newer_value)),
            g.newer_process,
            secs(g.newer_invoke_ns),
            secs(g.newer_read.complete_ns),
            secs(g.ghost_read.invoke_ns),
            esc(&g.explanation),
        );
    }
    b.push_str("</table>");
    let shown = MAX_ROWS.min(report.ghosts.len());
    if report.count > shown {
        let _ = write!(
            b,
            "<p class=\"muted\">{} more in <a href=\"{}\">results.json</a>.</p>",
            report.count - shown,
            layout::RESULTS
        );
    }
}
