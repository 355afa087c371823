//! Integration tests of `kvnode --engine multipaxos` with real processes on loopback, each
//! cluster in its own temp dir behind per-link proxies (the shared `common` support module
//! the Raft tests use). What they check is engine-independent client semantics: election,
//! writes through any node (421 redirect), CAS, no acknowledged write lost across kill -9,
//! catch-up of a restarted node, torn-tail recovery, a partitioned leader being replaced.

mod common;

use common::Cluster;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);
const PAXOS: &[&str] = &["--engine", "multipaxos"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipaxos_elects_a_leader_and_accepts_writes_through_any_node() {
    let c = Cluster::start(3, PAXOS).await;
    let l = c.wait_leader(&[0, 1, 2], 10 * SEC).await;
    let s = c.status(l).await.unwrap();
    assert_eq!(s["role"], "leader");
    assert_eq!(s["engine"], "multipaxos");
    for i in 0..3 {
        let key = format!("k{i}");
        let (code, body) = c.put_following(i, &key, json!(i)).await;
        assert_eq!(code, 200, "write via n{}: {body}", i + 1);
        if i != l {
            let (code, body) = c.put(i, &key, json!(i)).await;
            assert_eq!(code, 421, "followers redirect: {body}");
            assert_eq!(body["leader"], c.nodes[l].id.as_str());
        }
    }
    for i in 0..3 {
        let v = c.read_linearizable(&[0, 1, 2], &format!("k{i}")).await;
        assert_eq!(v, json!(i));
    }
    let cas = |from: serde_json::Value, to: serde_json::Value| {
        Some(json!({"from": from, "to": to}).to_string())
    };
    assert_eq!(c.put(l, "s", json!("a")).await.0, 200);
    let (code, body) = c
        .request(l, Method::POST, "/kv/s/cas", cas(json!("b"), json!("c")))
        .await;
    assert_eq!((code, body["current"].clone()), (409, json!("a")));
    let (code, _) = c
        .request(l, Method::POST, "/kv/s/cas", cas(json!("a"), json!(7)))
        .await;
    assert_eq!(code, 200);
    assert_eq!(c.get(l, "s").await.1["value"], json!(7));
    assert_eq!(c.get(l, "missing").await.1, json!({"value": null}));
    // Retried (client_id, seq) applies once.
    let body = json!({"from": 7, "to": 8, "client_id": "c1", "seq": 1}).to_string();
    let first = c
        .request(l, Method::POST, "/kv/s/cas", Some(body.clone()))
        .await;
    let retry = c.request(l, Method::POST, "/kv/s/cas", Some(body)).await;
    assert_eq!((first.0, retry.0), (200, 200), "{}", retry.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipaxos_leader_kill9_and_restart_keeps_every_acknowledged_write() {
    let mut c = Cluster::start(5, PAXOS).await;
    let all = [0, 1, 2, 3, 4];
    let l = c.wait_leader(&all, 10 * SEC).await;
    let mut acked = Vec::new();
    for k in 0..20 {
        let (code, _) = c.put_following(l, &format!("a{k}"), json!(k)).await;
        if code == 200 {
            acked.push(k);
        }
    }
    assert_eq!(acked.len(), 20);
    c.kill(l);
    let rest: Vec<usize> = all.iter().copied().filter(|i| *i != l).collect();
    let deadline = Instant::now() + 15 * SEC;
    for k in 20..40 {
        loop {
            let target = rest[k % rest.len()];
            let (code, _) = c.put_following(target, &format!("a{k}"), json!(k)).await;
            if code == 200 {
                acked.push(k);
                break;
            }
            assert!(Instant::now() < deadline, "survivors never accepted a{k}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    c.spawn(l);
    c.wait_up(l, 10 * SEC).await;
    let l2 = c.wait_leader(&all, 10 * SEC).await;
    for k in &acked {
        let v = c.read_linearizable(&all, &format!("a{k}")).await;
        assert_eq!(v, json!(k), "acknowledged write a{k} lost");
    }
    // The restarted node learns every chosen instance it missed.
    let deadline = Instant::now() + 10 * SEC;
    loop {
        let lead = c.status(l2).await.unwrap()["commit_index"]
            .as_u64()
            .unwrap();
        let me = c.status(l).await.unwrap()["applied_index"]
            .as_u64()
            .unwrap();
        if me >= lead {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted node stuck at {me} < {lead}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipaxos_restart_after_a_torn_write_at_the_log_tail_recovers() {
    let mut c = Cluster::start(3, PAXOS).await;
    let all = [0, 1, 2];
    let l = c.wait_leader(&all, 10 * SEC).await;
    for k in 0..10 {
        assert_eq!(c.put(l, &format!("t{k}"), json!(k)).await.0, 200);
    }
    let f = (l + 1) % 3;
    c.kill(f);
    let path = c.nodes[f].data_dir.join(cluster::storage::LOG_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 7).unwrap();
    drop(file);
    c.spawn(f);
    c.wait_up(f, 10 * SEC).await;
    let log = std::fs::read_to_string(&c.nodes[f].log).unwrap();
    assert!(log.contains("torn record"), "the torn tail is reported");
    assert_eq!(c.put_following(f, "after", json!(1)).await.0, 200);
    for k in 0..10 {
        assert_eq!(c.read_linearizable(&all, &format!("t{k}")).await, json!(k));
    }
    // A whole-cluster restart recovers too, and the new leader moves the log forward.
    let s = c.status(l).await.unwrap();
    let commit = s["commit_index"].as_u64().unwrap();
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.spawn(i);
    }
    c.wait_leader(&all, 10 * SEC).await;
    assert_eq!(c.read_linearizable(&all, "after").await, json!(1));
    let s = c.status(c.wait_leader(&all, 10 * SEC).await).await.unwrap();
    assert!(s["commit_index"].as_u64().unwrap() > commit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipaxos_partitioned_leader_is_replaced_and_stops_acknowledging() {
    let c = Cluster::start(3, PAXOS).await;
    let all = [0, 1, 2];
    let old = c.wait_leader(&all, 10 * SEC).await;
    assert_eq!(c.put(old, "p", json!(1)).await.0, 200);
    c.isolate(old, true);
    let rest: Vec<usize> = all.iter().copied().filter(|i| *i != old).collect();
    let new = c.wait_leader(&rest, 10 * SEC).await;
    assert_ne!(new, old);
    for k in 0..5 {
        let (code, body) = c.put(old, "p", json!(100 + k)).await;
        assert!(
            code == 504 || code == 421,
            "old leader answered {code} {body}"
        );
        let (code, body) = c.get(old, "p").await;
        assert!(code == 504 || code == 421, "old leader read {code} {body}");
    }
    assert_eq!(c.put(new, "p", json!(2)).await.0, 200);
    c.isolate(old, false);
    c.wait_leader(&all, 10 * SEC).await;
    assert_eq!(c.read_linearizable(&all, "p").await, json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipaxos_lease_reads_and_unsafe_flag_start() {
    let mut args = PAXOS.to_vec();
    args.extend(["--read", "lease", "--unsafe-no-start-working"]);
    let c = Cluster::start(3, &args).await;
    let l = c.wait_leader(&[0, 1, 2], 10 * SEC).await;
    assert_eq!(c.put(l, "q", json!(3)).await.0, 200);
    let (code, body) = c.get(l, "q").await;
    assert_eq!((code, body["value"].clone()), (200, json!(3)));
}
