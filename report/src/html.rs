//! Small HTML helpers shared by every page: escaping, the stylesheet, time and number formats.
//!
//! Pages are plain `format!` output: self-contained (inline CSS and scripts, no fonts or
//! scripts fetched from the network) so a run directory can be copied or mailed as is.

use std::fmt::Write as _;

use serde_json::Value;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Serializes a value for embedding inside `<script>`: JSON with `<` escaped so the data can
/// never close the script element.
pub fn script_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
}

/// Nanoseconds since the test started as seconds with millisecond precision: `12.345 s`.
pub fn secs(ns: u64) -> String {
    checkers::explain::time_text(ns, false)
}

/// A duration in ns as a short human figure (`850 µs`, `4.2 ms`, `12 ms`, `1.35 s`), the way
/// the checkers' sentences write it.
pub fn dur(ns: u64) -> String {
    checkers::explain::gap_text(ns)
}

/// A latency in ms as a short human figure (see [`dur`]).
pub fn ms(ms: f64) -> String {
    dur((ms * 1e6).max(0.0) as u64)
}

/// A JSON value shown compactly in a table cell (strings without quotes).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "nil".into(),
        other => other.to_string(),
    }
}

/// Shortens text to at most `n` characters, with an ellipsis.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// The stylesheet every page shares.
pub const CSS: &str = r#"
:root { --ok:#4e79a7; --fail:#e15759; --info:#f28e2b; --fg:#1d2330; --muted:#5b6475; --line:#dde2ea; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; color: var(--fg);
       margin: 0; background: #f6f7f9; font-size: 15px; line-height: 1.45; }
main { max-width: 1280px; margin: 0 auto; padding: 18px 24px 60px; }
h1 { font-size: 24px; margin: 6px 0 4px; } h2 { font-size: 19px; margin: 28px 0 10px; }
a { color: #1f5fa8; }
.muted { color: var(--muted); }
.banner { border-radius: 8px; padding: 14px 20px; color: #fff; font-size: 22px; font-weight: bold;
          margin: 12px 0 16px; display: flex; justify-content: space-between; align-items: center; }
.banner > span { white-space: nowrap; margin-right: 24px; }
.banner small { font-size: 14px; font-weight: normal; opacity: .95; text-align: right; }
.banner.valid { background: #2e8b57; } .banner.invalid { background: #c0392b; }
.banner.unknown { background: #d68910; } .banner.none { background: #7f8c8d; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; } .card span { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #eef1f5; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 13px; }
pre { background: #fff; border: 1px solid var(--line); padding: 10px; overflow: auto; max-height: 480px; }
img.plot { display: block; width: 100%; max-width: 1200px; background: #fff; border: 1px solid var(--line);
           border-radius: 4px; margin: 8px 0 18px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: middle; margin-right: 6px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; vertical-align: middle; }
.dot.valid { background: #2e8b57; } .dot.invalid { background: #c0392b; } .dot.unknown { background: #d68910; } .dot.none { background: #7f8c8d; }
nav.links a { margin-right: 16px; }
details { margin: 8px 0; }
.why { background: #fff; border-left: 4px solid #c0392b; padding: 8px 14px; margin: 8px 0; }
.why.valid { border-color: #2e8b57; } .why.unknown { border-color: #d68910; }
.keys a { margin-right: 10px; white-space: nowrap; }
.legend { display:flex; gap:16px; align-items:center; flex-wrap:wrap; margin:8px 0; }
"#;

/// Wraps a body in a complete page with the shared stylesheet.
pub fn page(title: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + CSS.len() + 256);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{}</style></head><body><main>{}</main></body></html>\n",
        esc(title),
        CSS,
        body
    );
    s
}
