//! Helpers shared by the etcd tests: one `faultline test --system etcd` run on 3 members,
//! and what the run directory records.

#![allow(dead_code)]

use crate::common::{run_dir, run_test};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Runs `faultline test --system etcd --nodes 3 ARGS` into `dir`; returns (exit code,
/// everything it printed, run directory).
pub fn etcd_run(dir: &Path, args: &[&str]) -> (i32, String, PathBuf) {
    let mut all = vec!["--system", "etcd", "--nodes", "3"];
    all.extend_from_slice(args);
    let (code, out) = run_test(dir, &all);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (code, text, run_dir(dir))
}

/// A JSON file of the run.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The fault kinds results.json says were applied, after checking none failed to apply.
pub fn applied_fault_kinds(run: &Path) -> BTreeSet<String> {
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    if let Some(l) = history.lines().find(|l| l.contains("-failed\"")) {
        panic!("a fault failed to apply: {l}");
    }
    read_json(&run.join("results.json"))["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}
