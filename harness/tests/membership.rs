//! The `member` fault on real kvnode processes: safe Raft stays linearizable while nodes
//! are added (fresh ids, empty data dirs) and removed (the leader too) between partitions
//! and kills, and the history records each change resolved; the unsafe multi-server change
//! is caught. Runs are serialized (one lock) to stay within two cores.

mod common;

use common::{results_dir, run_dir, run_test};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

/// Three founders, a fault change every ~2 s, a short op timeout, keys spread (`kv`) so the
/// checker decides quickly.
const BASE: &str = "--nodes 3 --engine raft --workload kv --nemesis-interval 2 \
    --time-limit 20 --rate 400 --concurrency 20 --op-timeout-ms 300 --check-timeout 60";

/// Runs one seed; returns the exit code (0 valid, 1 invalid) and the run directory's
/// `member-start` values.
fn run(seed: u64, extra: &[&str]) -> (i32, Vec<Value>, tempfile::TempDir) {
    let dir = results_dir();
    let seed = seed.to_string();
    let mut args: Vec<&str> = BASE.split_whitespace().collect();
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--seed", &seed]);
    let (code, out) = run_test(dir.path(), &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        (0..=1).contains(&code),
        "harness failed (exit {code}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changes = member_starts(&run_dir(dir.path()));
    (code, changes, dir)
}

fn member_starts(run: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["f"] == "member-start")
        .map(|e| e["value"].clone())
        .collect()
}

fn ids(v: &Value, k: &str) -> Vec<String> {
    v[k].as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn safe_raft_stays_linearizable_while_members_come_and_go_under_partitions_and_kills() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (code, changes, dir) = run(1, &["--nemesis", "member,partition,kill"]);
    assert_eq!(code, 0, "safe Raft must be linearizable");
    let added: Vec<String> = changes.iter().flat_map(|c| ids(c, "added")).collect();
    let removed: Vec<String> = changes.iter().flat_map(|c| ids(c, "removed")).collect();
    assert!(!added.is_empty() && !removed.is_empty(), "{changes:?}");
    // Fresh ids only: an added node was never a founder, and no id is added twice.
    let mut seen = std::collections::BTreeSet::new();
    for a in &added {
        assert!(!["n1", "n2", "n3"].contains(&a.as_str()), "{a} reused");
        assert!(seen.insert(a.clone()), "{a} added twice");
    }
    // Each change was single-server.
    for c in &changes {
        assert_eq!(ids(c, "added").len() + ids(c, "removed").len(), 1, "{c}");
    }
    // test.json says how many founders the run started with.
    let test: Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir(dir.path()).join("test.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(test["members"], 3);
}

/// The scenario that catches `--unsafe-multi-server-change`: the leader is cut off from
/// the other founders while it adds two fresh voters at once; the fresh nodes are on
/// neither side of the grudge, so the leader and the two new voters are a majority of the
/// new configuration while the other founders are one of the old, and each side elects
/// and commits. Slower elections (1-2 s) widen the window in which the cut-off leader
/// still leads when the change arrives.
#[test]
fn unsafe_multi_server_change_is_caught() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let scenario = [
        "--nemesis",
        "member,partition",
        "--partition-shapes",
        "leader",
        "--kvnode-args",
        "--unsafe-multi-server-change --election-ticks 100 --heartbeat-ticks 10",
    ];
    let mut caught = None;
    for seed in 1..=3 {
        let (code, changes, _dir) = run(seed, &scenario);
        assert!(
            changes
                .iter()
                .all(|c| ids(c, "added").len() + ids(c, "removed").len() == 2),
            "two servers at a time: {changes:?}"
        );
        if code == 1 {
            caught = Some(seed);
            break;
        }
    }
    assert!(
        caught.is_some(),
        "the unsafe change was not caught in 3 seeds"
    );
}

/// `--nemesis member` where it cannot work is refused before anything starts, naming why.
#[test]
fn member_fault_is_refused_where_it_cannot_work() {
    for (args, expect) in [
        (
            &["--nemesis", "member", "--engine", "multipaxos"][..],
            "--nemesis member needs --system kvnode --engine raft",
        ),
        (
            &["--nemesis", "member", "--nodes", "7"][..],
            "--nodes 7 must be 3, 4 or 5",
        ),
        (
            &["--nemesis", "member", "--kvnode-args", "--shards 2"][..],
            "membership changes are not supported with --shards",
        ),
        (
            &["--nemesis", "member", "--env", "netns"][..],
            "--nemesis member runs on --env local only",
        ),
    ] {
        let dir = results_dir();
        let (code, out) = run_test(dir.path(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(code, 0, "{args:?} must fail");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(
            !dir.path().join("latest").exists(),
            "{args:?} created a run"
        );
    }
}
