//! The "Ghost writes" section of a run's `index.html`, from `results.json`'s `ghosts`
//! (see `checkers::ghost`): abandoned writes that became visible after newer writes.
//!
//! Read as untyped JSON like the rest of the page, so a results.json from an older or newer
//! faultline still renders.

use std::fmt::Write as _;

use serde_json::Value;

use crate::html::{esc, secs, value_text};

/// Rows shown; the full list is in results.json.
const MAX_ROWS: usize = 20;

/// Appends the section to `b` when `results` holds at least one ghost; otherwise nothing.
pub fn section(b: &mut String, results: Option<&Value>) {
    let Some(results) = results else {
        return;
    };
    let Some(report) = results.get("ghosts").filter(|g| g.is_object()) else {
        return;
    };
    let count = report.get("count").and_then(Value::as_u64).unwrap_or(0);
    let ghosts = report
        .get("ghosts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if count == 0 || ghosts.is_empty() {
        return;
    }
    let _ = write!(
        b,
        "<h2 id=\"ghosts\">Ghost writes: {count}</h2><p>Writes whose clients gave up (outcome \
         unknown) became visible <b>after</b> writes that were only issued later — OceanBase's \
         \"ghost reappearance\". Linearizability allows an unknown write to take effect at any \
         later time, so this check, not the linearizability checker, found it."
    );
    if let Some(why) = results.get("explanation").and_then(Value::as_str) {
        let _ = write!(b, " {}", esc(why));
    }
    b.push_str("</p>");
    b.push_str(
        "<table id=\"ghost-table\"><tr><th>key</th><th>abandoned write</th>\
         <th class=\"num\">gave up</th><th>newer write</th><th class=\"num\">issued</th>\
         <th class=\"num\">newer read done</th><th class=\"num\">ghost read</th>\
         <th>what happened</th></tr>",
    );
    let text = |g: &Value, k: &str| g.get(k).map(value_text).unwrap_or_default();
    let time = |g: &Value, path: &str| {
        g.pointer(path)
            .and_then(Value::as_u64)
            .map(secs)
            .unwrap_or_default()
    };
    for g in ghosts.iter().take(MAX_ROWS) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{} {} (process {})</td><td class=\"num\">{}</td>\
             <td>{} (process {})</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&g
                .get("key")
                .map(value_text)
                .unwrap_or_else(|| "(all)".into())),
            esc(&text(g, "f")),
            esc(&text(g, "value")),
            esc(&text(g, "process")),
            time(g, "/gave_up_ns"),
            esc(&text(g, "newer_value")),
            esc(&text(g, "newer_process")),
            time(g, "/newer_invoke_ns"),
            time(g, "/newer_read/complete_ns"),
            time(g, "/ghost_read/invoke_ns"),
            esc(&text(g, "explanation")),
        );
    }
    b.push_str("</table>");
    if count as usize > MAX_ROWS.min(ghosts.len()) {
        let _ = write!(
            b,
            "<p class=\"muted\">{} more in results.json.</p>",
            count as usize - MAX_ROWS.min(ghosts.len())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_only_when_ghosts_exist() {
        let mut b = String::new();
        section(&mut b, None);
        section(&mut b, Some(&json!({"verdict": "valid"})));
        assert!(b.is_empty());
        let results = json!({
            "verdict": "invalid",
            "explanation": "invalid because of ghost writes",
            "ghosts": {"count": 1, "indeterminate_writes": 3, "indeterminate_writes_read": 1,
                "ghosts": [{"key": "3", "value": 17, "f": "write", "process": 5,
                    "invoke_ns": 1, "gave_up_ns": 3_200_000_000u64, "newer_value": 42,
                    "newer_process": 2, "newer_invoke_ns": 4_000_000_000u64,
                    "newer_read": {"process": 3, "invoke_ns": 1, "complete_ns": 4_500_000_000u64},
                    "ghost_read": {"process": 4, "invoke_ns": 9_100_000_000u64, "complete_ns": 1},
                    "explanation": "write of 17 <came back>"}]}
        });
        section(&mut b, Some(&results));
        assert!(b.contains("id=\"ghosts\""), "{b}");
        assert!(b.contains("3.200 s") && b.contains("9.100 s") && b.contains("4.500 s"));
        assert!(b.contains("&lt;came back&gt;"));
    }
}
