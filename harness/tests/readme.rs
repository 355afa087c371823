//! The README cannot drift from the CLI: every command line it shows is parsed, every flag it
//! names must exist in that (sub)command's `--help`, and the concrete `faultline test`
//! examples must resolve with `--dry-run` (the ones that need root or SSH hosts only when
//! those are at hand). Runs in a second or two.

mod common;

use common::faultline;
use std::collections::BTreeSet;
use std::path::Path;

/// Splits a shell-ish line into words, honouring single and double quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Every faultline command line the README shows, as words after `faultline`.
fn commands(readme: &str) -> Vec<Vec<String>> {
    // Join continuation lines first.
    let joined = readme.replace("\\\n", " ");
    let mut lines: Vec<String> = Vec::new();
    let mut fenced = false;
    for raw in joined.lines() {
        let t = raw.trim();
        if t.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        // Code lines: indented code blocks and fenced blocks.
        if fenced || raw.starts_with("    ") {
            for prefix in ["sudo faultline ", "faultline ", "cargo run --release -- "] {
                if let Some(rest) = t.strip_prefix(prefix) {
                    lines.push(rest.to_string());
                }
            }
        }
        // Inline code spans: `faultline ...`.
        let mut rest = t;
        while let Some(i) = rest.find("`faultline ") {
            let after = &rest[i + "`faultline ".len()..];
            let Some(end) = after.find('`') else { break };
            lines.push(after[..end].to_string());
            rest = &after[end + 1..];
        }
    }
    lines
        .into_iter()
        .map(|l| {
            // Drop a trailing shell comment.
            let l = match l.find(" # ") {
                Some(i) if !l[..i].contains('"') || l[..i].matches('"').count() % 2 == 0 => {
                    l[..i].to_string()
                }
                _ => l,
            };
            words(&l)
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// The `--help` text of `faultline <path...>`, or None if that is not a command.
fn help(path: &[&str]) -> Option<String> {
    let out = faultline().args(path).arg("--help").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_readme_command_and_flag_exists() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let cmds = commands(&readme);
    assert!(cmds.len() >= 15, "found only {} command lines", cmds.len());
    let mut checked = BTreeSet::new();
    for cmd in &cmds {
        let sub = cmd[0].as_str();
        assert!(
            help(&[sub]).is_some(),
            "README shows `faultline {}`, but `{sub}` is not a subcommand",
            cmd.join(" ")
        );
        // A nested subcommand (env clean, clock offset, bench harness) when it has its own help.
        let nested = cmd
            .get(1)
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
            .and_then(|w| help(&[sub, w]).map(|h| (w.clone(), h)));
        let text = match &nested {
            Some((_, h)) => h.clone(),
            None => help(&[sub]).unwrap_or_default(),
        };
        // A quoted value ("--read unsafe-local" for --kvnode-args) is not a flag of ours;
        // synopsis brackets ([--nodes 5]) are not part of one.
        for w in cmd
            .iter()
            .map(|w| w.trim_start_matches('['))
            .filter(|w| w.starts_with("--") && !w.contains(char::is_whitespace))
        {
            let flag = w
                .split('=')
                .next()
                .unwrap_or(w)
                .trim_end_matches(['.', ',', ']']);
            assert!(
                text.contains(&format!("{flag} ")) || text.contains(&format!("{flag}\n")),
                "README's `faultline {}` uses {flag}, which `faultline {sub}{} --help` does not list",
                cmd.join(" "),
                nested.as_ref().map(|(n, _)| format!(" {n}")).unwrap_or_default()
            );
            checked.insert(format!("{sub} {flag}"));
        }
    }
    assert!(checked.len() >= 30, "only {} flags checked", checked.len());
}

#[test]
fn readme_test_examples_resolve() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let root = testkit::is_root();
    let mut ran = 0;
    for cmd in commands(&readme) {
        let concrete = !cmd.iter().any(|w| {
            w.contains('[') || w.contains('|') || w.contains("...") || w == "RUN_DIR" || w == "FILE"
        });
        if cmd[0] != "test" || !concrete {
            continue;
        }
        // Needs SSH hosts that exist only where a person brought them up.
        if cmd.iter().any(|w| w == "ssh") || cmd.iter().any(|w| w == "--repeat") {
            continue;
        }
        if cmd.iter().any(|w| w == "netns") && !root {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = faultline()
            .args(&cmd)
            .arg("--dry-run")
            .arg("--results")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README example `faultline {}` does not resolve:\n{}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 3, "only {ran} README test examples were resolved");
}
