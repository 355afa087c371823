//! `faultline test` with the transactional workloads, end to end on real kvnode processes
//! (loopback, free ports): Raft and Multi-Paxos apply each transaction as one log entry, so
//! their list-append histories pass Elle (strict serializable) and their bank reads all show
//! the same total under partitions and kills; NWR runs each micro-op on its own quorums, and
//! Elle names the anomalies that follows from. Each run is a few seconds.

mod common;

use common::{results_dir, run_dir, run_test};
use serde_json::Value;

/// Runs `faultline test` with `args` (plus 3 nodes and a short time limit); returns the exit
/// code, results.json, stdout and the history's nemesis `f`s.
fn run(args: &[&str]) -> (i32, Value, String, Vec<String>) {
    let dir = results_dir();
    let mut all = vec![
        "--nodes",
        "3",
        "--time-limit",
        "5",
        "--nemesis-interval",
        "1",
    ];
    all.extend_from_slice(args);
    let (code, out) = run_test(dir.path(), &all);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let run = run_dir(dir.path());
    let results: Value = serde_json::from_slice(
        &std::fs::read(run.join("results.json")).unwrap_or_else(|e| {
            panic!(
                "{args:?}: no results.json ({e}); stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }),
    )
    .unwrap();
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let faults = history
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["process"] == "nemesis")
        .filter_map(|e| e["f"].as_str().map(String::from))
        .collect();
    (code, results, stdout, faults)
}

fn assert_faults_happened(faults: &[String], kinds: &[&str]) {
    for k in kinds {
        let start = format!("{k}-start");
        assert!(
            faults.contains(&start),
            "no {start} in the history: {faults:?}"
        );
    }
}

fn list_append_valid_under_partitions_and_kills(engine: &str) {
    let (code, r, stdout, faults) = run(&[
        "--engine",
        engine,
        "--workload",
        "list-append",
        "--nemesis",
        "partition,kill",
        "--seed",
        "11",
    ]);
    assert_faults_happened(&faults, &["partition", "kill"]);
    let t = &r["transactions"];
    assert_eq!(code, 0, "{engine}: {stdout}");
    assert_eq!(r["verdict"], "valid", "{engine}: {}", r["summary"]);
    assert_eq!(t["checker"], "elle");
    assert_eq!(t["model"], "strict-serializable");
    assert!(
        t["txns"]["ok"].as_u64().unwrap() > 50,
        "{engine}: too few committed transactions to judge: {}",
        t["txns"]
    );
    assert!(
        r.get("linearizability").is_none(),
        "judged by Elle, not linearizability"
    );
    assert!(
        stdout.contains("Elle list-append (strict-serializable): No anomaly"),
        "{stdout}"
    );
}

#[test]
fn raft_list_append_is_strict_serializable_under_partitions_and_kills() {
    list_append_valid_under_partitions_and_kills("raft");
}

#[test]
fn multipaxos_list_append_is_strict_serializable_under_partitions_and_kills() {
    list_append_valid_under_partitions_and_kills("multipaxos");
}

/// NWR list-append without faults: anomalies from non-atomic transactions alone.
const NWR_LIST_APPEND: [&str; 10] = [
    "--engine",
    "nwr",
    "--workload",
    "list-append",
    "--nemesis",
    "none",
    "--concurrency",
    "8",
    "--seed",
    "3",
];

#[test]
fn nwr_list_append_shows_named_anomalies() {
    // No faults needed: concurrent read-modify-write appends on separate quorums lose each
    // other's elements and expose half-done transactions.
    let (code, r, stdout, _) = run(&NWR_LIST_APPEND);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(r["verdict"], "invalid");
    assert_eq!(r["decided_by"], "transactions");
    let violations: Vec<&str> = r["transactions"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!violations.is_empty());
    // Every class in results.json is named in the printed summary, with an explained example.
    for v in &violations {
        assert!(stdout.contains(v), "{v} not named in:\n{stdout}");
    }
    assert!(stdout.contains("  - "), "no explained example:\n{stdout}");
}

fn bank_conserved(engine: &str) {
    let (code, r, stdout, faults) = run(&[
        "--engine",
        engine,
        "--workload",
        "bank",
        "--nemesis",
        "partition,kill",
        "--seed",
        "5",
    ]);
    assert_faults_happened(&faults, &["partition", "kill"]);
    assert_eq!(code, 0, "{engine}: {stdout}");
    let t = &r["transactions"];
    assert_eq!(t["checker"], "bank");
    assert_eq!(t["verdict"], "valid");
    assert!(
        t["transfers"]["ok"].as_u64().unwrap() > 10,
        "{}",
        t["transfers"]
    );
    assert!(t["reads"].as_u64().unwrap() > 10, "{t}");
    assert!(stdout.contains("total 500"), "{stdout}");
}

#[test]
fn raft_bank_total_is_conserved_under_partitions_and_kills() {
    bank_conserved("raft");
}

#[test]
fn multipaxos_bank_total_is_conserved_under_partitions_and_kills() {
    bank_conserved("multipaxos");
}

#[test]
fn raft_set_and_counter_are_valid_under_kills() {
    for w in ["set", "counter"] {
        let (code, r, stdout, _) = run(&["--workload", w, "--nemesis", "kill", "--seed", "9"]);
        assert_eq!(code, 0, "{w}: {stdout}");
        assert_eq!(r["transactions"]["checker"], w);
        assert_eq!(r["transactions"]["verdict"], "valid");
    }
}

#[test]
fn isolation_is_recorded_used_and_means_what_check_means() {
    // NWR breaks atomicity, so its list-append history shows anomalies; judged against
    // read committed only the classes read committed prohibits may count.
    let dir = results_dir();
    let args = [
        &["--nodes", "3", "--time-limit", "4"][..],
        &NWR_LIST_APPEND,
        &["--isolation", "read-committed"],
    ]
    .concat();
    let (code, out) = run_test(dir.path(), &args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let run = run_dir(dir.path());
    let read = |f: &str| -> Value {
        serde_json::from_slice(&std::fs::read(run.join(f)).unwrap()).unwrap()
    };
    let (test, r) = (read("test.json"), read("results.json"));
    assert_eq!(test["isolation"], "read-committed");
    let t = &r["transactions"];
    assert_eq!(t["model"], "read-committed", "{stdout}");
    assert!(
        r["summary"].as_str().unwrap().contains("read-committed"),
        "the verdict names the model: {}",
        r["summary"]
    );
    let rc = checkers::elle::ConsistencyModel::ReadCommitted;
    for v in t["violations"].as_array().unwrap() {
        let class: checkers::elle::AnomalyClass = serde_json::from_value(v.clone()).unwrap();
        assert!(
            rc.prohibits(class),
            "{class:?} counted against read committed"
        );
    }
    // `faultline check --isolation` reads the same history the same way.
    for iso in ["read-committed", "strict-serializable"] {
        let check = common::faultline()
            .args(["check", "--json", "--isolation", iso])
            .arg(run.join("history.jsonl"))
            .output()
            .unwrap();
        let c: Value = serde_json::from_slice(&check.stdout).unwrap();
        assert_eq!(c["model"], iso);
        if iso == "read-committed" {
            assert_eq!(c["verdict"], t["verdict"]);
            assert_eq!(c["violations"], t["violations"]);
            assert_eq!(code, if t["verdict"] == "valid" { 0 } else { 1 });
        } else {
            // The strongest model prohibits at least what the weakest does.
            let n = |x: &Value| x.as_array().unwrap().len();
            assert!(n(&c["violations"]) >= n(&t["violations"]), "{c}");
            assert_eq!(c["verdict"], "invalid", "NWR is not strict serializable");
        }
    }
    // --isolation belongs to list-append, and names only models Elle knows.
    for (bad, says) in [
        (
            &["--workload", "bank", "--isolation", "serializable"][..],
            "applies to --workload list-append",
        ),
        (
            &["--workload", "list-append", "--isolation", "acid"][..],
            "unknown consistency model",
        ),
    ] {
        let (code, out) = run_test(dir.path(), &[bad, &["--dry-run"]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(code, 0, "{bad:?}: {stderr}");
        assert!(stderr.contains(says), "{bad:?}: {stderr}");
    }
}

/// One short run of 5 nodes with keys over 2 Raft groups under partitions and kills, at a
/// fault change every second: (verdict, violations, presumed commits the nodes logged).
fn sharded_list_append(kvnode_args: &str, seed: &str) -> (String, Vec<String>, usize) {
    let dir = results_dir();
    let args = [
        "--nodes",
        "5",
        "--time-limit",
        "8",
        "--nemesis-interval",
        "1",
        "--nemesis",
        "partition,kill",
        "--workload",
        "list-append",
        "--kvnode-args",
        kvnode_args,
        "--seed",
        seed,
    ];
    let (_, out) = run_test(dir.path(), &args);
    let run = run_dir(dir.path());
    let r: Value = serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap_or_else(
        |e| {
            panic!(
                "no results.json ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        },
    ))
    .unwrap();
    let presumed = (1..=5)
        .map(|i| {
            std::fs::read_to_string(run.join(format!("n{i}/node.log")))
                .unwrap_or_default()
                .matches("UNSAFE presumed commit")
                .count()
        })
        .sum();
    let violations = r["transactions"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    (
        r["verdict"].as_str().unwrap().to_string(),
        violations,
        presumed,
    )
}

#[test]
fn presumed_commit_2pc_is_caught_by_a_plain_run_and_safe_2pc_stays_valid() {
    // A participant group that prepared commits on its own after 20% of the request
    // deadline; the coordinator gives up on a group whose leader a partition or kill cut off
    // only at 40%, and tells the client the transaction failed: reads then show a failed
    // transaction's appends (G1a). Safe 2PC under the same flags and seeds aborts cleanly.
    let mut caught = Vec::new();
    for seed in ["1", "2"] {
        let (verdict, violations, presumed) =
            sharded_list_append("--shards 2 --unsafe-2pc-presumed-commit", seed);
        if verdict == "invalid" {
            assert!(
                presumed > 0,
                "seed {seed}: invalid without a presumed commit"
            );
            caught.push((seed, violations));
        }
        let (verdict, violations, presumed) = sharded_list_append("--shards 2", seed);
        assert_eq!(verdict, "valid", "safe 2PC, seed {seed}: {violations:?}");
        assert_eq!(presumed, 0);
    }
    assert!(
        !caught.is_empty(),
        "presumed commit caught in no seed of two"
    );
    assert!(
        caught.iter().any(|(_, v)| v.iter().any(|c| c == "G1a")),
        "{caught:?}"
    );
}
