//! etcd, a system nobody here wrote, under test on local processes (no root):
//!
//! - the local peer proxies cut real etcd traffic: an isolated leader loses its quorum and
//!   the others elect a new one; after the heal everybody follows one leader again;
//! - 3 members, linearizable reads, partitions of every shape, kills, pauses and packet
//!   faults: valid; test.json and
//!   cluster.json name the system and its version, every member's log is in the run
//!   directory, nothing outlives the run;
//! - serializable reads under leader-isolating partitions: caught (stale reads, which etcd
//!   documents), and the history names the member that served each stale read;
//! - flags that do not apply to etcd, clock faults libfaketime cannot inject into Go, and a
//!   missing etcd binary are refused with a clear message;
//! - `faultline bench --system etcd,kvnode` prints one row per system and leaves nothing.
//!
//! Runs are serialized (two cores) and short.

mod common;
mod etcd_common;

use common::{bound_ports, faultline, processes_mentioning, results_dir};
use etcd_common::{applied_fault_kinds, etcd_run, read_json};
use harness::db::etcd::{Etcd, EtcdSpec, PEER_PROTOCOL};
use harness::db::Db;
use harness::env::local::PeerLinks;
use harness::testbed::Testbed;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn history(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One completed client op.
#[derive(Debug, Clone)]
struct Op {
    f: String,
    ok: bool,
    call: u64,
    ret: u64,
    value: Value,
    node: Option<String>,
}

/// Client ops paired invoke -> completion, in completion order.
fn ops(events: &[Value]) -> Vec<Op> {
    let mut open = std::collections::HashMap::new();
    let mut out = Vec::new();
    for e in events.iter().filter(|e| e["process"] != "nemesis") {
        let p = e["process"].as_u64().unwrap();
        if e["type"] == "invoke" {
            open.insert(p, e["time"].as_u64().unwrap());
        } else if let Some(call) = open.remove(&p) {
            out.push(Op {
                f: e["f"].as_str().unwrap().into(),
                ok: e["type"] == "ok",
                call,
                ret: e["time"].as_u64().unwrap(),
                value: e["value"].clone(),
                node: e["node"].as_str().map(String::from),
            });
        }
    }
    out
}

/// Reads that returned a value which an acknowledged write had already overwritten before the
/// read began — stale, whatever the rest of the history (register values are unique). An
/// oracle independent of the linearizability checker.
fn stale_reads(ops: &[Op]) -> Vec<(Op, Op)> {
    let written = |o: &Op| match o.f.as_str() {
        "write" => o.value.as_i64(),
        "cas" => o.value[1].as_i64(),
        _ => None,
    };
    let writes: Vec<&Op> = ops
        .iter()
        .filter(|o| o.ok && written(o).is_some())
        .collect();
    let mut out = Vec::new();
    for r in ops.iter().filter(|o| o.ok && o.f == "read") {
        let Some(v) = r.value.as_i64() else { continue };
        let Some(w) = writes.iter().find(|w| written(w) == Some(v)) else {
            continue;
        };
        if let Some(u) = writes
            .iter()
            .find(|u| u.call > w.ret && u.ret < r.call && written(u) != Some(v))
        {
            out.push((r.clone(), (*u).clone()));
        }
    }
    out
}

/// Waits until no process mentions `needle` (teardown reaps asynchronously at most briefly).
fn assert_no_process(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left running: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn etcd_spec() -> EtcdSpec {
    EtcdSpec {
        binary: harness::db::etcd::find_binary(),
        serializable_reads: false,
        token: "faultline-test".into(),
    }
}

async fn put(url: &str, value: &str) -> Option<u16> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let r = http
        .post(format!("{url}/v3/kv/put"))
        .json(&json!({"key": b64("k"), "value": b64(value)}))
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

/// Polls until `check` holds on the statuses, or panics after `secs` with the last ones.
async fn until<D: Db>(
    tb: &Testbed<D>,
    secs: u64,
    what: &str,
    check: impl Fn(&[Option<harness::db::NodeStatus>]) -> bool,
) -> Vec<Option<harness::db::NodeStatus>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = tb.statuses().await;
        if check(&st) {
            return st;
        }
        assert!(Instant::now() < deadline, "{what}: statuses {st:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
#[cfg_attr(missing_etcd, ignore = "needs etcd: apt-get install -y etcd-server")]
fn local_proxies_isolate_a_real_etcd_leader_and_heal() {
    if testkit::require(testkit::Need::Etcd).is_none() {
        return;
    }
    let _g = serial();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(isolate_the_leader_and_heal());
}

async fn isolate_the_leader_and_heal() {
    let dir = results_dir();
    let ids: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    let environment =
        harness::env::local::build_with(&ids, dir.path(), None, PeerLinks::PerNode(PEER_PROTOCOL))
            .await
            .unwrap();
    let db = Etcd::new(etcd_spec(), &*environment.env).unwrap();
    let tb = Testbed::start(environment, db).await.unwrap();
    tb.await_ready(Duration::from_secs(20)).await.unwrap();
    let leader = tb.await_leader(Duration::from_secs(10)).await.unwrap();
    let l = tb.ids().iter().position(|i| *i == leader).unwrap();
    let st = tb.statuses().await;
    let term = st[l].as_ref().unwrap().term;
    for s in &st {
        let s = s.as_ref().unwrap();
        assert_eq!(s.leader.as_deref(), Some(leader.as_str()), "{st:?}");
    }
    let url = |i: usize| tb.env().hosts()[i].client_url();

    tb.net()
        .partition(&nemesis::partition::isolate(tb.ids(), &leader))
        .unwrap();
    // The other two elect one of themselves at a higher term ...
    let others: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    let st = until(&tb, 10, "a new leader among the majority", |st| {
        let named: Vec<Option<&str>> = others
            .iter()
            .map(|&i| st[i].as_ref().and_then(|s| s.leader.as_deref()))
            .collect();
        named[0].is_some() && named[0] == named[1] && named[0] != Some(leader.as_str())
    })
    .await;
    let new = st[others[0]].as_ref().unwrap().leader.clone().unwrap();
    assert!(st[others[0]].as_ref().unwrap().term > term, "{st:?}");
    let n = tb.ids().iter().position(|i| *i == new).unwrap();
    assert_eq!(
        put(&url(n), "majority").await,
        Some(200),
        "the majority commits"
    );
    // ... and the old leader, cut off, commits nothing and steps down (check-quorum).
    let cut_off = put(&url(l), "minority").await;
    assert_ne!(cut_off, Some(200), "an isolated member committed a write");
    until(&tb, 5, "the isolated leader steps down", |st| {
        st[l]
            .as_ref()
            .is_some_and(|s| s.role != checkers::cluster_state::Role::Leader)
    })
    .await;

    tb.net().heal().unwrap();
    until(&tb, 10, "one leader for everybody after the heal", |st| {
        let leaders: std::collections::BTreeSet<Option<&str>> = st
            .iter()
            .map(|s| s.as_ref().and_then(|s| s.leader.as_deref()))
            .collect();
        leaders.len() == 1 && !leaders.contains(&None)
    })
    .await;
    let pids = tb.pids();
    assert_eq!(pids.len(), 3);
    tb.teardown();
    for pid in pids.values() {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "etcd pid {pid} survived teardown"
        );
    }
}

#[test]
#[cfg_attr(missing_etcd, ignore = "needs etcd: apt-get install -y etcd-server")]
fn linearizable_reads_stay_valid_under_partitions_kills_pauses_and_packet_faults() {
    let Some(binary) = testkit::require(testkit::Need::Etcd) else {
        return;
    };
    let _g = serial();
    let dir = results_dir();
    let (code, text, run) = etcd_run(
        dir.path(),
        &[
            "--time-limit",
            "12",
            "--nemesis",
            "partition,kill,pause,packet",
            "--nemesis-interval",
            "1",
            "--seed",
            "11",
        ],
    );
    assert_eq!(
        code, 0,
        "etcd with linearizable reads must be valid:\n{text}"
    );
    assert_eq!(read_json(&run.join("results.json"))["verdict"], "valid");
    let kinds: Vec<String> = applied_fault_kinds(&run).into_iter().collect();
    assert_eq!(
        kinds,
        ["kill", "packet", "partition", "pause"],
        "every kind applied"
    );
    let events = history(&run);
    let ops = ops(&events);
    for f in ["read", "write", "cas"] {
        assert!(
            ops.iter().filter(|o| o.ok && o.f == f).count() > 5,
            "few ok {f}s:\n{text}"
        );
    }
    assert!(
        ops.iter()
            .filter(|o| o.ok)
            .all(|o| matches!(o.node.as_deref(), Some("n1" | "n2" | "n3"))),
        "every ok op names the member that served it"
    );
    // The system and its version, in both records.
    let version = harness::db::etcd::local_version(&binary).unwrap();
    let test = read_json(&run.join("test.json"));
    assert_eq!(test["system"], "etcd");
    assert_eq!(test["system_version"], version.as_str());
    assert_eq!(test["etcd"]["serializable_reads"], false);
    let cluster = read_json(&run.join("cluster.json"));
    assert_eq!(cluster["system"], "etcd");
    assert_eq!(cluster["version"], version.as_str());
    // Every member's log is in the run directory; a killed member started again.
    let mut starts = Vec::new();
    for n in ["n1", "n2", "n3"] {
        let log = std::fs::read_to_string(run.join(n).join("node.log")).unwrap();
        assert!(
            log.contains(&format!("\"name\":\"{n}\"")),
            "{n}'s log: {log:.300}"
        );
        starts.push(log.matches("starting an etcd server").count());
    }
    assert!(
        starts.iter().sum::<usize>() > 3,
        "a killed member restarts: starts per member {starts:?}"
    );
    assert_no_process(&run.display().to_string());
    assert!(bound_ports(&run).is_empty(), "ports still bound");
}

#[test]
#[cfg_attr(missing_etcd, ignore = "needs etcd: apt-get install -y etcd-server")]
fn serializable_reads_are_caught_stale_under_leader_isolation() {
    if testkit::require(testkit::Need::Etcd).is_none() {
        return;
    }
    let _g = serial();
    let dir = results_dir();
    let (code, text, run) = etcd_run(
        dir.path(),
        &[
            "--etcd-serializable-reads",
            "--time-limit",
            "10",
            "--nemesis",
            "partition",
            "--partition-shapes",
            "leader",
            "--nemesis-interval",
            "2",
            "--seed",
            "12",
        ],
    );
    assert_eq!(code, 1, "stale serializable reads must be caught:\n{text}");
    let test = read_json(&run.join("test.json"));
    assert_eq!(test["name"], "etcd-serializable-register");
    assert_eq!(test["etcd"]["serializable_reads"], true);
    let results = read_json(&run.join("results.json"));
    assert_eq!(results["verdict"], "invalid");
    // The checker's verdict agrees with an independent oracle: there are stale reads, and the
    // history names the member that served each.
    let events = history(&run);
    let stale = stale_reads(&ops(&events));
    assert!(
        !stale.is_empty(),
        "the checker said invalid but no read is stale:\n{text}"
    );
    for (r, newer) in &stale {
        assert!(
            matches!(r.node.as_deref(), Some("n1" | "n2" | "n3")),
            "stale read {r:?} (after {newer:?}) names no member"
        );
    }
    // The counterexample's ops can be traced to the members that served them.
    let part = &results["linearizability"]["partitions"][0];
    let cx = &part["counterexample"];
    let traced = cx["unplaceable"]
        .as_array()
        .unwrap()
        .iter()
        .chain(cx["prefix"].as_array().unwrap().iter().rev().take(1))
        .filter_map(|o| o["op"]["complete_index"].as_u64())
        .filter_map(|i| events.iter().find(|e| e["index"] == i))
        .filter(|e| e["node"].is_string())
        .count();
    assert!(traced > 0, "no counterexample op names its member: {cx}");
    // The explanation names the member that served the op it blames, and that is the member
    // the history recorded for it.
    let key = &results["counterexamples"][0];
    let culprit = &key["ops"][key["culprit"].as_u64().expect("a culprit") as usize];
    let done = events
        .iter()
        .find(|e| e["index"] == culprit["complete_index"])
        .expect("the culprit completed");
    let member = done["node"]
        .as_str()
        .expect("the culprit's member is recorded");
    let summary = results["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("via {member}")),
        "the explanation does not name {member}, which served the blamed op: {summary}"
    );
    assert!(text.contains(&format!("via {member}")), "terminal: {text}");
}

#[test]
fn flags_that_do_not_apply_to_etcd_are_refused() {
    for (args, want) in [
        (
            &["--system", "etcd", "--engine", "raft"][..],
            "--engine only applies to --system kvnode",
        ),
        (
            &["--system", "etcd", "--kvnode-args", "--prevote"],
            "--kvnode-args only applies",
        ),
        (
            &["--system", "etcd", "--nwr", "3,2,2"],
            "--nwr only applies",
        ),
        (
            &["--etcd-serializable-reads"],
            "--etcd-serializable-reads only applies to --system etcd",
        ),
        (&["--system", "etcd", "--nemesis", "clock"], "vDSO"),
        (&["--system", "mysql"], "unknown --system \"mysql\""),
    ] {
        let out = faultline()
            .arg("test")
            .args(args)
            .arg("--dry-run")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_missing_etcd_says_how_to_install_it() {
    let dir = results_dir();
    for sub in [
        &["test", "--system", "etcd", "--dry-run"][..],
        &["bench", "--system", "etcd"],
    ] {
        let out = faultline()
            .args(sub)
            .current_dir(dir.path())
            .env("FAULTLINE_ETCD", dir.path().join("no-etcd-here"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{sub:?}: {err}");
        assert!(
            err.contains("apt-get install -y etcd-server"),
            "{sub:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was created (no results/, no node directories)"
    );
}

#[test]
#[cfg_attr(missing_etcd, ignore = "needs etcd: apt-get install -y etcd-server")]
fn the_default_nemesis_skips_clock_faults_for_etcd_and_says_why() {
    if testkit::require(testkit::Need::Etcd).is_none() {
        return;
    }
    let out = faultline()
        .args(["test", "--system", "etcd", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["system"], "etcd");
    assert_eq!(plan["name"], "etcd-register");
    let kinds: Vec<&str> = plan["nemesis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"clock"), "{kinds:?}");
    assert!(
        kinds.contains(&"partition") && kinds.contains(&"kill"),
        "{kinds:?}"
    );
    assert!(
        plan["notes"].to_string().contains("vDSO"),
        "the plan says why clock faults are skipped: {}",
        plan["notes"]
    );
}

#[test]
#[cfg_attr(missing_etcd, ignore = "needs etcd: apt-get install -y etcd-server")]
fn bench_puts_etcd_and_kvnode_side_by_side_and_leaves_nothing() {
    if testkit::require(testkit::Need::Etcd).is_none() {
        return;
    }
    let _g = serial();
    let child = faultline()
        .args([
            "bench",
            "--system",
            "etcd,kvnode",
            "--seconds",
            "0.5",
            "--concurrency",
            "4",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for system in ["etcd ", "kvnode raft "] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(system))
            .unwrap_or_else(|| panic!("no {system}row:\n{stdout}"));
        let rates: Vec<f64> = row
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert!(
            rates.len() >= 9 && rates.iter().take(9).all(|r| *r > 0.0),
            "puts, gets and cas measured for {system}: {row}"
        );
    }
    let tmp = std::env::temp_dir();
    let needle = format!("faultline-bench-{pid}-");
    assert_no_process(&needle);
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&needle))
        .collect();
    assert!(left.is_empty(), "bench left {left:?}");
}

#[test]
fn bench_numeric_flags_are_checked_before_anything_starts() {
    for flag in ["seconds", "nodes", "concurrency", "ops"] {
        for v in ["nan", "inf", "-1", "0", "1e30", "1e-300", ""] {
            let out = faultline()
                .args(["bench", "--system", "kvnode", &format!("--{flag}={v}")])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(255), "--{flag}={v}: {err}");
            assert!(
                err.contains(flag) && !err.contains("panicked"),
                "--{flag}={v}: {err}"
            );
        }
    }
    for args in [
        &["bench", "harness", "--system", "etcd"][..],
        &["bench", "--system", "kvnode", "--history", "h.jsonl"],
        &["bench", "--engine", "raft"],
        &["bench", "cluster"],
    ] {
        let out = faultline().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {err}");
    }
}
