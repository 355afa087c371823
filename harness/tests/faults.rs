//! The local environment's fault injection, driven directly (no run loop): a partition cuts
//! exactly the isolated node's links and healing restores them; kill -9 removes a node and a
//! restart brings it back on the same data; teardown leaves no process behind.
//!
//! Nothing here assumes who leads: every request goes to the node that says it leads right
//! now and is retried until a deadline (a healed node may start an election and move the
//! leadership at any moment).

use harness::db::kvnode::{Kvnode, KvnodeSpec};
use harness::env;
use harness::testbed::Testbed;
use nemesis::partition::isolate;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

type Cluster = Testbed<Kvnode>;

async fn cluster(dir: &std::path::Path) -> Cluster {
    let ids: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    let environment = env::local::build(&ids, dir, None).await.unwrap();
    let spec = KvnodeSpec {
        binary: env!("CARGO_BIN_EXE_faultline").into(),
        subcommand: true,
        engine: "raft".into(),
        extra_args: vec![],
        seed: 7,
    };
    let db = Kvnode::new(spec, &*environment.env).unwrap();
    let c = Testbed::start(environment, db).await.unwrap();
    c.await_ready(Duration::from_secs(20)).await.unwrap();
    c
}

fn url(c: &Cluster, i: usize) -> String {
    c.env().hosts()[i].client_url()
}

async fn status(c: &Cluster, i: usize) -> Option<Value> {
    reqwest::get(format!("{}/status", url(c, i)))
        .await
        .ok()?
        .json()
        .await
        .ok()
}

async fn applied(c: &Cluster, i: usize) -> u64 {
    status(c, i)
        .await
        .and_then(|s| s["applied_index"].as_u64())
        .unwrap_or(0)
}

async fn put(url: &str, key: &str, v: i64) -> u16 {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    match http
        .put(format!("{url}/kv/{key}"))
        .json(&json!({"value": v}))
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Writes through whoever leads among `among`, retrying until `deadline`.
async fn put_via_leader(
    c: &Cluster,
    among: &[usize],
    key: &str,
    v: i64,
    deadline: Duration,
) -> bool {
    let t = Instant::now();
    while t.elapsed() < deadline {
        for &i in among {
            if status(c, i).await.is_some_and(|s| s["role"] == "leader")
                && put(&url(c, i), key, v).await == 200
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Reads `key` through whoever leads, retrying until `deadline`.
async fn get_via_leader(c: &Cluster, key: &str, deadline: Duration) -> Option<Value> {
    let t = Instant::now();
    while t.elapsed() < deadline {
        for i in 0..c.ids().len() {
            if status(c, i).await.is_some_and(|s| s["role"] == "leader") {
                if let Ok(r) = reqwest::get(format!("{}/kv/{key}", url(c, i))).await {
                    if r.status() == 200 {
                        if let Ok(v) = r.json::<Value>().await {
                            return Some(v["value"].clone());
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    mut f: impl FnMut() -> F,
    d: Duration,
) -> bool {
    let t = Instant::now();
    while t.elapsed() < d {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_blocks_both_directions_and_heal_restores() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path()).await;
    let all: Vec<usize> = (0..3).collect();
    assert!(put_via_leader(&c, &all, "a", 1, Duration::from_secs(10)).await);
    let leader = c
        .await_leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let l = c.ids().iter().position(|x| *x == leader).unwrap();

    c.net().partition(&isolate(c.ids(), &leader)).unwrap();
    // Entries committed before the cut may still be applied on the old leader; let them land
    // before taking the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The majority elects a new leader and commits; nothing reaches the isolated node ...
    let before = applied(&c, l).await;
    let others: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    assert!(
        put_via_leader(&c, &others, "a", 2, Duration::from_secs(15)).await,
        "the majority side did not elect a leader and commit"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        applied(&c, l).await,
        before,
        "isolated node received entries"
    );
    // ... and nothing from it reaches the majority: a write there cannot commit.
    assert_ne!(
        put(&url(&c, l), "b", 3).await,
        200,
        "isolated node committed a write"
    );

    c.net().heal().unwrap();
    let mut target = 0;
    for &i in &others {
        target = target.max(applied(&c, i).await);
    }
    assert!(
        wait_until(
            || async { applied(&c, l).await >= target },
            Duration::from_secs(10)
        )
        .await,
        "healed node did not catch up"
    );
    assert_eq!(
        get_via_leader(&c, "a", Duration::from_secs(10)).await,
        Some(json!(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_is_gone_and_rejoins_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path()).await;
    c.await_leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let victim = 2;
    let pid = c.env().pid(victim).unwrap();
    c.kill_node(victim).await.unwrap();
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
    assert!(!alive, "killed pid {pid} still exists");
    assert!(c.env().pid(victim).is_none());
    assert!(
        put_via_leader(&c, &[0, 1], "k", 42, Duration::from_secs(10)).await,
        "2 of 3 still commit"
    );

    c.restart_node(victim).unwrap();
    assert_ne!(c.env().pid(victim), Some(pid));
    let mut target = 0;
    for i in 0..2 {
        target = target.max(applied(&c, i).await);
    }
    assert!(
        wait_until(
            || async { applied(&c, victim).await >= target },
            Duration::from_secs(15)
        )
        .await,
        "restarted node did not rejoin"
    );
    let pids: Vec<u32> = c.pids().into_values().collect();
    assert_eq!(pids.len(), 3);
    c.teardown();
    for p in pids {
        assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), None).is_err());
    }
}
