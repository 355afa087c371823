//! Integration tests of `kvnode --engine nwr` (Dynamo-style N/W/R quorums, see
//! `src/engine/nwr.rs`) against real processes on loopback, each cluster in its own temp
//! dir with a proxy on every directed peer link (`tests/common`).

mod common;

use common::Cluster;
use reqwest::Method;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

/// Waits until every node answers /status, then until a write through every node succeeds
/// (peer links are dialed lazily with backoff). Returns nothing; panics after 15 s.
async fn warm_up(c: &Cluster) {
    for i in 0..c.nodes.len() {
        c.wait_up(i, 10 * SEC).await;
    }
    let deadline = Instant::now() + 15 * SEC;
    for i in 0..c.nodes.len() {
        loop {
            let (code, _) = c.put(i, &format!("warm{i}"), json!(0)).await;
            if code == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "node {i} never accepted a write");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn must_put(c: &Cluster, i: usize, key: &str, v: Value) {
    let (code, body) = c.put(i, key, v).await;
    assert_eq!(code, 200, "put {key} via {}: {body}", c.nodes[i].id);
}

async fn must_get(c: &Cluster, i: usize, key: &str) -> Value {
    let (code, body) = c.get(i, key).await;
    assert_eq!(code, 200, "get {key} via {}: {body}", c.nodes[i].id);
    body["value"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_through_any_node_see_acknowledged_writes() {
    let c = Cluster::start(3, &["--engine", "nwr", "--n", "3", "--w", "2", "--r", "2"]).await;
    warm_up(&c).await;
    let s = c.status(1).await.unwrap();
    assert_eq!(s["engine"], "nwr");
    assert_eq!(s["role"], "leader", "every NWR node coordinates: {s}");
    assert_eq!(s["term"], 0);
    for round in 0..5 {
        for i in 0..3 {
            let key = format!("k{i}");
            let v = json!(round * 10 + i as i64);
            must_put(&c, i, &key, v.clone()).await;
            // W+R>N: any node's read intersects the write quorum.
            for j in 0..3 {
                assert_eq!(
                    must_get(&c, j, &key).await,
                    v,
                    "round {round}, read via n{}",
                    j + 1
                );
            }
        }
    }
    must_put(&c, 2, "s", json!("text")).await;
    assert_eq!(must_get(&c, 0, "s").await, json!("text"));
    assert_eq!(must_get(&c, 0, "missing").await, Value::Null);
    // CAS is not offered: 501, a definite failure.
    let (code, body) = c
        .request(
            0,
            Method::POST,
            "/kv/k0/cas",
            Some(json!({"from": 40, "to": 41}).to_string()),
        )
        .await;
    assert_eq!(code, 501, "{body}");
    assert_eq!(body["error"], "unsupported");
    assert_eq!(must_get(&c, 1, "k0").await, json!(40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_keeps_acknowledged_writes() {
    let mut c = Cluster::start(3, &["--engine", "nwr", "--w", "2", "--r", "2"]).await;
    warm_up(&c).await;
    for k in 0..10 {
        must_put(&c, k % 3, &format!("a{k}"), json!(k)).await;
    }
    c.kill(0);
    // Two of three replicas are enough for W=2 and R=2.
    for k in 0..10 {
        must_put(&c, 1 + k % 2, &format!("b{k}"), json!(100 + k)).await;
    }
    c.spawn(0);
    c.wait_up(0, 10 * SEC).await;
    // n1 was down for the b-writes: its own copy is stale, but R=2 reaches a fresh replica.
    let deadline = Instant::now() + 10 * SEC;
    loop {
        let (code, _) = c.get(0, "b0").await;
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted node never served a read"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for k in 0..10 {
        assert_eq!(must_get(&c, 0, &format!("a{k}")).await, json!(k));
        assert_eq!(must_get(&c, 0, &format!("b{k}")).await, json!(100 + k));
    }
    // Now kill -9 everything at once: every acknowledged write was fsynced on W replicas.
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.spawn(i);
    }
    warm_up(&c).await;
    for k in 0..10 {
        assert_eq!(must_get(&c, k % 3, &format!("a{k}")).await, json!(k));
        assert_eq!(
            must_get(&c, (k + 1) % 3, &format!("b{k}")).await,
            json!(100 + k)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_coordinator_times_out_writes_and_fails_reads() {
    let c = Cluster::start(3, &["--engine", "nwr", "--w", "2", "--r", "2"]).await;
    warm_up(&c).await;
    must_put(&c, 0, "k", json!(1)).await;
    c.isolate(2, true);
    // W=2 cannot be reached from n3 alone: unknown outcome (504).
    let (code, body) = c.put(2, "k", json!(2)).await;
    assert_eq!(code, 504, "{body}");
    // R=2 cannot be reached either: a read has no effect, so this is a definite 503.
    let (code, body) = c.get(2, "k").await;
    assert_eq!(code, 503, "{body}");
    // The majority side keeps serving.
    must_put(&c, 0, "k", json!(3)).await;
    assert_eq!(must_get(&c, 1, "k").await, json!(3));
    c.isolate(2, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_with_three_replicas_per_key() {
    let c = Cluster::start(5, &["--engine", "nwr", "--n", "3", "--w", "2", "--r", "2"]).await;
    warm_up(&c).await;
    for k in 0..20 {
        must_put(&c, k % 5, &format!("key{k}"), json!(k)).await;
    }
    for k in 0..20 {
        assert_eq!(
            must_get(&c, (k + 2) % 5, &format!("key{k}")).await,
            json!(k)
        );
    }
}

#[test]
fn out_of_range_quorums_are_rejected_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (flags, expect) in [
        (vec!["--w", "4"], "--w 4"),
        (vec!["--r", "0"], "--r 0"),
        (vec!["--n", "4"], "--n 4"),
        (vec!["--n", "2", "--r", "3"], "--r 3"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kvnode"))
            .args(["--id", "n1", "--peer-listen", "127.0.0.1:0"])
            .args(["--client-listen", "127.0.0.1:0"])
            .args([
                "--peers",
                "n2=127.0.0.1:1,n3=127.0.0.1:2",
                "--engine",
                "nwr",
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .args(&flags)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {err}");
        assert!(err.contains(expect), "{flags:?}: {err}");
    }
}

/// Restarts node `i` with its wall clock `secs` ahead through libfaketime, the way the
/// harness injects clock faults (monotonic clock untouched, so ticks run at real speed).
fn respawn_skewed(c: &mut Cluster, i: usize, lib: &std::path::Path, secs: i64) {
    c.kill(i);
    let n = &mut c.nodes[i];
    let file = n.data_dir.with_extension("faketime");
    std::fs::write(&file, format!("{secs:+}\n")).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&n.log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kvnode"))
        .args(&n.args)
        .env("LD_PRELOAD", lib)
        .env("FAKETIME_TIMESTAMP_FILE", &file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    n.child = Some(child);
}

/// n1's clock runs 10 s ahead. It writes 1; then, later in real time, n2 writes 2 and
/// both are acknowledged. With `--clock wall` last-writer-wins keeps 1 (the acknowledged
/// later write is lost); with `--clock hybrid` the HLC orders 2 after 1.
async fn skewed_writer(clock: &str) -> Option<Value> {
    let lib = testkit::require(testkit::Need::Faketime)?;
    let mut c = Cluster::start(3, &["--engine", "nwr", "--clock", clock]).await;
    respawn_skewed(&mut c, 0, &lib, 10);
    warm_up(&c).await;
    must_put(&c, 0, "k", json!(1)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    must_put(&c, 1, "k", json!(2)).await;
    Some(must_get(&c, 2, "k").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_faketime,
    ignore = "needs libfaketime: apt-get install -y faketime"
)]
async fn wall_clock_skew_loses_an_acknowledged_write() {
    if let Some(v) = skewed_writer("wall").await {
        assert_eq!(
            v,
            json!(1),
            "LWW on a skewed wall clock should keep the older write"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_faketime,
    ignore = "needs libfaketime: apt-get install -y faketime"
)]
async fn hybrid_clock_orders_writes_despite_skew() {
    if let Some(v) = skewed_writer("hybrid").await {
        assert_eq!(v, json!(2));
    }
}
