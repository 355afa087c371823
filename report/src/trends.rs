//! Suites in the results browser: the stored suite runs listed beside single runs, and the
//! trends page — detection rate and p99 per variant across the stored runs of each suite (a
//! nightly job's history), so a regression shows the morning after.
//!
//! Reads only `suite.json` files ([`SuiteResult`]) under `<results>/suites/<name>/<timestamp>/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::html::{esc, ms, page};
use crate::suite::{EntryStats, Outcome, SuiteResult, SUITE_JSON};

/// Every readable `suite.json` under `root/suites/*/*/`, oldest first by directory name;
/// unreadable files are skipped (the listing must not fail on one bad file).
pub fn find_suites(root: &Path) -> Vec<(PathBuf, SuiteResult)> {
    let mut out = Vec::new();
    let Ok(names) = std::fs::read_dir(root.join("suites")) else {
        return out;
    };
    for name in names.flatten() {
        let Ok(runs) = std::fs::read_dir(name.path()) else {
            continue;
        };
        for run in runs.flatten() {
            let dir = run.path();
            if dir.is_symlink() {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(dir.join(SUITE_JSON)) else {
                continue;
            };
            if let Ok(s) = SuiteResult::from_json(&text) {
                out.push((dir, s));
            }
        }
    }
    out.sort_by(|a, b| (&a.1.name, a.0.file_name()).cmp(&(&b.1.name, b.0.file_name())));
    out
}

/// A URL path relative to `root`.
fn href(root: &Path, dir: &Path) -> String {
    dir.strip_prefix(root)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The suites section of the results listing: every stored suite run, newest first, linking
/// to its comparison page, and to the trends page. Empty when there are none.
pub fn suites_section(root: &Path) -> String {
    let suites = find_suites(root);
    if suites.is_empty() {
        return String::new();
    }
    let mut b = format!(
        "<h2 id=\"suites\">Suites</h2><p><a href=\"trends\">Trends: detection rate and p99 per \
         variant across the {} stored suite runs</a></p><table id=\"suite-runs\"><tr><th>suite</th>\
         <th>started</th><th class=\"num\">runs</th><th class=\"num\">as expected</th>\
         <th class=\"num\">not</th><th class=\"num\">undecided</th><th class=\"num\">exit</th>\
         <th class=\"num\">wall time</th></tr>",
        suites.len()
    );
    let mut sorted: Vec<&(PathBuf, SuiteResult)> = suites.iter().collect();
    sorted.sort_by(|a, b| b.1.started.cmp(&a.1.started));
    for (dir, s) in sorted {
        let count = |f: &dyn Fn(Outcome) -> bool| s.runs.iter().filter(|r| f(r.outcome)).count();
        let css = match s.exit_code {
            0 => "valid",
            1 => "invalid",
            2 => "unknown",
            _ => "none",
        };
        let _ = write!(
            b,
            "<tr><td><span class=\"dot {css}\"></span>{name}</td><td><a href=\"{h}/index.html\">{st}</a></td>\
             <td class=\"num\">{n}</td><td class=\"num\">{held}</td><td class=\"num\">{not}</td>\
             <td class=\"num\">{und}</td><td class=\"num\">{code}</td><td class=\"num\">{w:.0} s</td></tr>",
            name = esc(&s.name),
            h = esc(&href(root, dir)),
            st = esc(&s.started),
            n = s.runs.len(),
            held = count(&|o| matches!(o, Outcome::Held | Outcome::Reported)),
            not = count(&|o| o == Outcome::NotHeld),
            und = count(&|o| matches!(o, Outcome::Unknown | Outcome::Error)),
            code = s.exit_code,
            w = s.wall_s,
        );
    }
    b.push_str("</table>");
    b
}

/// The trends page: per suite name, one row per variant and one column per stored run, each
/// cell the detection rate and median p99 of that run, linking to its comparison page.
pub fn render_trends(root: &Path) -> String {
    let suites = find_suites(root);
    let mut by_name: BTreeMap<&str, Vec<&(PathBuf, SuiteResult)>> = BTreeMap::new();
    for s in &suites {
        by_name.entry(s.1.name.as_str()).or_default().push(s);
    }
    let mut b = String::from(
        "<h1>Suite trends</h1><p class=\"muted\">Per variant and stored suite run, oldest \
         first: runs found invalid / runs with a verdict, and the median p99 latency. A cell is \
         red when the verdicts contradicted the entry's expectation. <a href=\"./\">All runs</a></p>",
    );
    if by_name.is_empty() {
        b.push_str("<p>No suite runs yet. Start one with <code>faultline suite suites/nightly.toml</code>.</p>");
    }
    for (name, runs) in by_name {
        let mut variants: Vec<&str> = Vec::new();
        for (_, s) in &runs {
            for e in &s.entries {
                if !variants.contains(&e.name.as_str()) {
                    variants.push(&e.name);
                }
            }
        }
        let _ = write!(
            b,
            "<h2>{}</h2><table class=\"trend\"><tr><th>variant</th>",
            esc(name)
        );
        for (dir, s) in &runs {
            let _ = write!(
                b,
                "<th><a href=\"{}/index.html\">{}</a></th>",
                esc(&href(root, dir)),
                esc(&s.started)
            );
        }
        b.push_str("</tr>");
        for v in &variants {
            let _ = write!(b, "<tr><td>{}</td>", esc(v));
            for (dir, s) in &runs {
                if !s.entries.iter().any(|e| e.name == *v) {
                    b.push_str("<td class=\"num\">–</td>");
                    continue;
                }
                let st = EntryStats::of(s.runs_of(v));
                let style = if st.missed.is_empty() {
                    ""
                } else {
                    " style=\"background:#f8d7d3\""
                };
                let _ = write!(
                    b,
                    "<td class=\"num\"{style}><a href=\"{}/index.html\">{}/{}</a><br><small>p99 {}</small></td>",
                    esc(&href(root, dir)),
                    st.invalid,
                    st.runs,
                    st.p99_ms.map(ms).unwrap_or_else(|| "–".into())
                );
            }
            b.push_str("</tr>");
        }
        b.push_str("</table>");
    }
    page("faultline suite trends", &b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{EntryInfo, Expect, RunFigures, RunRecord, SUITE_SCHEMA};
    use checkers::analysis::Verdict;

    fn record(entry: &str, seed: u64, verdict: Verdict, p99: f64) -> RunRecord {
        let expect = Expect::Invalid;
        RunRecord {
            entry: entry.into(),
            seed,
            expect,
            outcome: Outcome::of(expect, Some(verdict)),
            figures: RunFigures {
                verdict: Some(verdict),
                p99_ms: Some(p99),
                ..RunFigures::default()
            },
            run_dir: None,
            log: format!("runs/{entry}-s{seed}.log"),
            exit_code: Some(0),
            wall_s: 1.0,
            reproduce: String::new(),
            error: None,
        }
    }

    fn suite(started: &str, runs: Vec<RunRecord>) -> SuiteResult {
        SuiteResult {
            schema: SUITE_SCHEMA,
            name: "nightly".into(),
            file: "suites/nightly.toml".into(),
            started: started.into(),
            wall_s: 10.0,
            jobs: 1,
            entries: vec![EntryInfo {
                name: "raft-unsafe-local".into(),
                description: String::new(),
                args: vec![],
                expect: Expect::Invalid,
                seeds: vec![1, 2],
            }],
            exit_code: SuiteResult::exit_code_of(&runs),
            runs,
        }
    }

    #[test]
    fn a_regression_shows_across_stored_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let store = |s: &SuiteResult| {
            let dir = tmp.path().join("suites/nightly").join(&s.started);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(SUITE_JSON), serde_json::to_vec(s).unwrap()).unwrap();
        };
        let day1 = suite(
            "20261201T031700Z",
            vec![
                record("raft-unsafe-local", 1, Verdict::Invalid, 12.0),
                record("raft-unsafe-local", 2, Verdict::Invalid, 14.0),
            ],
        );
        let day2 = suite(
            "20261202T031700Z",
            vec![
                record("raft-unsafe-local", 1, Verdict::Invalid, 30.0),
                record("raft-unsafe-local", 2, Verdict::Valid, 50.0),
            ],
        );
        store(&day1);
        store(&day2);
        std::fs::create_dir_all(tmp.path().join("suites/nightly/broken")).unwrap();
        std::fs::write(tmp.path().join("suites/nightly/broken/suite.json"), "{").unwrap();
        assert_eq!(find_suites(tmp.path()).len(), 2);
        let page = render_trends(tmp.path());
        let d1 = page.find("20261201T031700Z").unwrap();
        let d2 = page.find("20261202T031700Z").unwrap();
        assert!(d1 < d2, "oldest first");
        assert!(page.contains(">2/2</a><br><small>p99 13"), "{page}");
        assert!(page.contains("background:#f8d7d3\"><a href=\"suites/nightly/20261202T031700Z/index.html\">1/2</a><br><small>p99 40"), "{page}");
        let listing = suites_section(tmp.path());
        assert!(
            listing.find("20261202T031700Z").unwrap() < listing.find("20261201T031700Z").unwrap()
        );
        assert!(suites_section(&tmp.path().join("none")).is_empty());
    }
}
