//! Faults are real: against real kvnode processes, a partition cut through the proxies stops
//! traffic between the named nodes in both directions and healing restores it; a killed
//! node's pid is gone and the restarted node rejoins.

use harness::local::{ClusterSpec, LocalCluster};
use nemesis::partition::isolate;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn cluster(dir: &std::path::Path) -> LocalCluster {
    let spec = ClusterSpec {
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        kvnode: env!("CARGO_BIN_EXE_faultline").into(),
        kvnode_subcommand: true,
        engine: "raft".into(),
        extra_args: vec![],
        faketime: None,
        dir: dir.to_path_buf(),
        seed: 7,
    };
    let c = LocalCluster::start(spec).await.unwrap();
    c.await_ready(Duration::from_secs(20)).await.unwrap();
    c
}

async fn applied(c: &LocalCluster, i: usize) -> u64 {
    c.status(i)
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

/// Writes through whoever leads (following 421 redirects), retrying until `deadline`.
async fn put_anywhere(c: &LocalCluster, key: &str, v: i64, deadline: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < deadline {
        if let Some(l) = c.leader().await {
            let i = c.ids().iter().position(|x| *x == l).unwrap();
            if put(&c.urls()[i], key, v).await == 200 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
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
    let leader = c
        .await_leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let l = c.ids().iter().position(|x| *x == leader).unwrap();
    assert!(put_anywhere(&c, "a", 1, Duration::from_secs(5)).await);

    c.partition(&isolate(&c.ids(), &leader));
    // Exactly the links to and from the isolated node are cut.
    for i in 0..3 {
        for j in 0..3 {
            if i != j {
                let cut = c.proxy(i, j).unwrap().state().cut;
                assert_eq!(cut, i == l || j == l, "link {i}->{j}");
            }
        }
    }
    // The majority elects a new leader and commits; nothing reaches the isolated node ...
    let before = applied(&c, l).await;
    let others: Vec<usize> = (0..3).filter(|&i| i != l).collect();
    let new_leader = wait_until(
        || async {
            let mut found = false;
            for &i in &others {
                if c.status(i).await.is_some_and(|s| s["role"] == "leader") {
                    found = true;
                }
            }
            found
        },
        Duration::from_secs(10),
    )
    .await;
    assert!(new_leader, "majority side elected no leader");
    let ni = {
        let mut ni = others[0];
        for &i in &others {
            if c.status(i).await.is_some_and(|s| s["role"] == "leader") {
                ni = i;
            }
        }
        ni
    };
    assert_eq!(put(&c.urls()[ni], "a", 2).await, 200, "majority commits");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        applied(&c, l).await,
        before,
        "isolated node received entries"
    );
    // ... and nothing from it reaches the majority: a write there cannot commit.
    assert_ne!(
        put(&c.urls()[l], "b", 3).await,
        200,
        "isolated node committed a write"
    );

    c.heal_network();
    let target = applied(&c, ni).await;
    assert!(
        wait_until(
            || async { applied(&c, l).await >= target },
            Duration::from_secs(10)
        )
        .await,
        "healed node did not catch up"
    );
    let v: Value = reqwest::get(format!("{}/kv/a", c.urls()[ni]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["value"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_is_gone_and_rejoins_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path()).await;
    c.await_leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let victim = 2;
    let pid = c.pid(victim).unwrap();
    c.kill_node(victim).unwrap();
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
    assert!(!alive, "killed pid {pid} still exists");
    assert!(c.pid(victim).is_none());
    assert!(
        put_anywhere(&c, "k", 42, Duration::from_secs(10)).await,
        "2 of 3 still commit"
    );

    c.restart_node(victim).unwrap();
    assert_ne!(c.pid(victim), Some(pid));
    let leader = c.leader().await.unwrap();
    let li = c.ids().iter().position(|x| *x == leader).unwrap();
    let target = applied(&c, li).await;
    assert!(
        wait_until(
            || async { applied(&c, victim).await >= target },
            Duration::from_secs(15)
        )
        .await,
        "restarted node did not rejoin"
    );
    let pids = c.pids();
    c.teardown();
    for p in pids {
        assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), None).is_err());
    }
}
