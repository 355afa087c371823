//! `faultline test --engine nwr` end to end: a short partial-quorum run (N=3, W=1, R=1) under
//! partitions must come back with the staleness analysis in results.json, name the anomaly
//! when linearizability fails, and show the NWR section and plot in index.html; `faultline
//! analyze` must rebuild the same section from test.json. Bad quorum flags must be refused
//! before anything starts.

mod common;

use common::{faultline, results_dir, run_dir};
use serde_json::Value;

fn json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn partial_quorum_run_reports_staleness_and_names_the_anomaly() {
    let dir = results_dir();
    let out = faultline()
        .args([
            "test",
            "--engine",
            "nwr",
            "--nwr",
            "3,1,1",
            "--nodes",
            "3",
            "--workload",
            "kv",
            "--nemesis",
            "partition",
            "--partition-shapes",
            "halves,one",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "5",
            "--rate",
            "400",
            "--concurrency",
            "12",
            "--op-timeout-ms",
            "500",
            "--check-timeout",
            "20",
            "--seed",
            "7",
            "--results",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        (0..=2).contains(&code),
        "harness failed (exit {code}):\n{stdout}\n{stderr}"
    );
    // No leader to wait for: the run must not sit out the 10 + 15 s leader timeouts.
    assert!(
        !stderr.contains("no leader") && !stderr.contains("not recovered"),
        "{stderr}"
    );
    let run = run_dir(dir.path());

    let test = json(&run.join("test.json"));
    assert_eq!(test["nwr"]["n"], 3);
    assert_eq!(test["nwr"]["w"], 1);
    assert_eq!(test["nwr"]["r"], 1);
    assert_eq!(test["nwr"]["clock"], "hybrid");
    assert_eq!(test["mix"]["cas_percent"], 0);
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    assert!(!history.contains("\"f\":\"cas\""), "nwr runs send no cas");

    let results = json(&run.join("results.json"));
    let nwr = &results["nwr"];
    assert!(nwr.is_object(), "no nwr section: {results}");
    assert_eq!(nwr["config"]["intersecting"], false);
    let reads = nwr["reads"].as_u64().unwrap();
    let stale = nwr["stale"].as_u64().unwrap();
    let frac = nwr["stale_fraction"].as_f64().unwrap();
    assert!(reads > 100, "only {reads} attributed reads");
    assert!(nwr["acknowledged_writes"].as_u64().unwrap() > 100);
    assert!((0.0..=1.0).contains(&frac));
    assert!((frac - stale as f64 / reads as f64).abs() < 1e-9);
    // W=1, R=1 with links cut half of the time: some reads miss the last write.
    assert!(
        stale > 0,
        "no stale read in a partial-quorum run: {}",
        nwr["summary"]
    );
    assert!(nwr["max_k"].as_u64().unwrap() >= 1);
    let prediction = &nwr["prediction"];
    assert!(prediction.is_object(), "no PBS prediction");
    assert!(
        prediction["p_miss_k"][0].as_f64().unwrap() > 0.5,
        "N=3 W=1 R=1 misses 2/3"
    );

    if results["verdict"] == "invalid" {
        let why = nwr["explanation"]
            .as_str()
            .expect("explanation of the invalid verdict");
        let kind = nwr["verdict_anomaly"]["name"]
            .as_str()
            .expect("named anomaly");
        assert!(why.contains(kind), "{why}");
        let summary_line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with("anomaly:"))
            .unwrap_or_else(|| panic!("summary names no anomaly:\n{stdout}"));
        assert!(summary_line.contains(kind), "{summary_line}");
    }
    assert!(stdout.contains("nwr: N=3 W=1 R=1"), "{stdout}");

    let index = std::fs::read_to_string(run.join("index.html")).unwrap();
    assert!(
        index.contains("id=\"nwr\""),
        "index.html has no NWR section"
    );
    assert!(index.contains("N=3 W=1 R=1"));
    assert!(index.contains("no (W+R = 2"));
    assert!(index.contains("src=\"nwr-staleness.png\""));
    if results["verdict"] == "invalid" {
        assert!(index.contains("id=\"nwr-anomaly\""));
    }
    let png = std::fs::metadata(run.join("nwr-staleness.png")).expect("nwr-staleness.png");
    assert!(png.len() > 10_000);

    // `analyze` rebuilds the section from test.json alone.
    std::fs::remove_file(run.join("results.json")).unwrap();
    let again = faultline()
        .args(["analyze", "--no-report"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(code));
    let redone = json(&run.join("results.json"));
    assert_eq!(redone["nwr"]["stale"], nwr["stale"]);
    assert_eq!(redone["nwr"]["config"], nwr["config"]);
}

#[test]
fn bad_quorum_flags_are_refused_before_anything_starts() {
    for (args, expect) in [
        (&["--engine", "nwr", "--nwr", "3,4,1"][..], "W = 4"),
        (&["--engine", "nwr", "--nwr", "4"][..], "N = 4"),
        (&["--engine", "nwr", "--clock", "sundial"][..], "--clock"),
        (
            &["--engine", "nwr", "--cas-percent", "10"][..],
            "no compare-and-set",
        ),
        (
            &["--engine", "nwr", "--kvnode-args", "--w 1"][..],
            "--nwr N,W,R",
        ),
        (&["--engine", "raft", "--nwr", "3,2,2"][..], "only apply"),
    ] {
        let dir = results_dir();
        let out = faultline()
            .arg("test")
            .args(["--nodes", "3"])
            .args(args)
            .arg("--results")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}
