//! `junit.xml`: the format CI systems read. One `<testcase>` per entry × seed; a verdict that
//! contradicts the expectation is a `<failure>` carrying the run's one-sentence explanation
//! and the command that repeats it; an undecided run or one without a verdict is an `<error>`.

use std::fmt::Write as _;

use report::suite::{Outcome, RunRecord, SuiteResult};

/// Escapes text for XML content and attribute values.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The first sentence of a paragraph (up to the first ". " or the end).
fn first_sentence(s: &str) -> &str {
    match s.find(". ") {
        Some(i) => &s[..=i],
        None => s,
    }
}

/// What a test case says beyond pass: `(element, type, message, body)`.
fn problem(r: &RunRecord) -> Option<(&'static str, &'static str, String, String)> {
    let verdict = r.figures.verdict.map_or("no verdict", |v| v.name());
    let why = r
        .error
        .clone()
        .unwrap_or_else(|| first_sentence(&r.figures.summary).to_string());
    let message = format!("expected {}, got {verdict}: {why}", r.expect.name());
    let body = format!(
        "{}\nreproduce: {}\nrun: {}\nlog: {}",
        if r.figures.summary.is_empty() {
            &why
        } else {
            &r.figures.summary
        },
        r.reproduce,
        r.run_dir.as_deref().unwrap_or("(none)"),
        r.log
    );
    match r.outcome {
        Outcome::Held | Outcome::Reported => None,
        Outcome::NotHeld => Some(("failure", "unexpected-verdict", message, body)),
        Outcome::Unknown => Some(("error", "unknown-verdict", message, body)),
        Outcome::Error => Some(("error", "harness-error", message, body)),
    }
}

/// Renders the JUnit report of a suite.
pub fn render(s: &SuiteResult) -> String {
    let failures = s
        .runs
        .iter()
        .filter(|r| r.outcome == Outcome::NotHeld)
        .count();
    let errors = s
        .runs
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Unknown | Outcome::Error))
        .count();
    let mut b = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        b,
        "<testsuites name=\"faultline\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{t:.3}\">\n\
         <testsuite name=\"{name}\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" \
         time=\"{t:.3}\" timestamp=\"{ts}\">",
        n = s.runs.len(),
        t = s.wall_s,
        name = xml(&s.name),
        ts = xml(&s.started),
    );
    for r in &s.runs {
        let _ = write!(
            b,
            "  <testcase classname=\"{suite}.{entry}\" name=\"{entry} seed {seed}\" time=\"{t:.3}\">",
            suite = xml(&s.name),
            entry = xml(&r.entry),
            seed = r.seed,
            t = r.wall_s,
        );
        match problem(r) {
            Some((element, kind, message, body)) => {
                let _ = write!(
                    b,
                    "\n    <{element} type=\"{kind}\" message=\"{}\">{}</{element}>\n  ",
                    xml(&message),
                    xml(&body)
                );
            }
            None => {
                let _ = write!(
                    b,
                    "<system-out>{}</system-out>",
                    xml(&format!(
                        "{}: {}\nreproduce: {}",
                        r.figures.verdict.map_or("no verdict", |v| v.name()),
                        r.figures.summary,
                        r.reproduce
                    ))
                );
            }
        }
        b.push_str("</testcase>\n");
    }
    b.push_str("</testsuite>\n</testsuites>\n");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sentences() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
        assert_eq!(first_sentence("One. Two."), "One.");
        assert_eq!(first_sentence("No stop"), "No stop");
    }
}
