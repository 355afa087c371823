//! Raft membership changes through the admin HTTP API on real kvnode processes
//! (`http/admin.rs`): a fresh node joins as a learner, catches up by snapshot, is promoted;
//! the leader removes itself and steps down; refusals (not leader, not a member, several
//! voters at once, a second change while one is uncommitted) carry their status and slug.

mod common;

use common::Cluster;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SECS: Duration = Duration::from_secs(20);

/// GET /admin/members on node `i`.
async fn members(c: &Cluster, i: usize) -> Value {
    let (code, body) = c.request(i, Method::GET, "/admin/members", None).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// POST /admin/members on node `i`.
async fn post(c: &Cluster, i: usize, body: Value) -> (u16, Value) {
    c.request(i, Method::POST, "/admin/members", Some(body.to_string()))
        .await
}

/// Retries `what` on node `i` while it answers 409 `retry_on` (e.g. a learner still
/// behind), up to [`SECS`].
async fn until_not(
    c: &Cluster,
    retry_on: &str,
    what: impl Fn() -> Value,
    i: usize,
) -> (u16, Value) {
    let deadline = Instant::now() + SECS;
    loop {
        let r = post(c, i, what()).await;
        if r.0 != 409 || r.1["error"] != retry_on || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `check` holds for node `i`'s view of the configuration.
async fn wait_members(c: &Cluster, i: usize, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + SECS;
    loop {
        let (code, m) = c.request(i, Method::GET, "/admin/members", None).await;
        if code == 200 && check(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: node {i} shows {code} {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_joins_by_snapshot_is_promoted_and_the_leader_removes_itself() {
    let snap = ["--snapshot-entries", "20"];
    let mut c = Cluster::start(3, &snap).await;
    let leader = c.wait_leader(&[0, 1, 2], SECS).await;
    for k in 0..60 {
        let (code, body) = c
            .put_following(leader, &format!("k{}", k % 10), json!(k))
            .await;
        assert_eq!(code, 200, "{body}");
    }
    let m = members(&c, leader).await;
    assert_eq!(ids(&m["voters"]), ["n1", "n2", "n3"]);
    assert_eq!(m["config_committed"], true);

    let n4 = c.add_joining(&snap);
    c.wait_up(n4, SECS).await;
    let fresh = members(&c, n4).await;
    assert!(
        ids(&fresh["voters"]).is_empty(),
        "a joining node has no configuration: {fresh}"
    );
    let add = json!({"id": "n4", "peer_addr": c.nodes[n4].peer_listen, "client_addr": c.nodes[n4].client_addr});
    let follower = (leader + 1) % 3;
    let (code, body) = post(&c, follower, add.clone()).await;
    assert_eq!(
        (code, &body["error"]),
        (421, &json!("not-leader")),
        "{body}"
    );
    assert_eq!(body["leader"], c.nodes[leader].id.as_str());
    let (code, body) = post(&c, leader, add.clone()).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = post(&c, leader, add).await;
    assert_eq!(
        (code, &body["error"]),
        (409, &json!("already-member")),
        "{body}"
    );

    // The learner gets the leader's snapshot (the leader's log starts above index 20) and
    // the configuration.
    let m = wait_members(&c, n4, "learner caught up", |m| {
        ids(&m["learners"]) == ["n4"]
    })
    .await;
    assert_eq!(ids(&m["voters"]), ["n1", "n2", "n3"]);
    let snap_file = c.nodes[n4].data_dir.join(cluster::storage::SNAPSHOT_FILE);
    let deadline = Instant::now() + SECS;
    while !snap_file.exists() {
        assert!(Instant::now() < deadline, "no snapshot installed on n4");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, body) = until_not(
        &c,
        "learner-behind",
        || json!({"action": "promote", "id": "n4"}),
        leader,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let m = wait_members(&c, n4, "promoted", |m| ids(&m["voters"]).len() == 4).await;
    assert!(ids(&m["learners"]).is_empty());
    // The new voter serves the data written before it joined.
    let (code, body) = c.put_following(n4, "after", json!(1)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(c.read_linearizable(&[0, 1, 2, 3], "k9").await, json!(59));

    // Refusals, each definite.
    let (code, body) = c
        .request(leader, Method::DELETE, "/admin/members/n9", None)
        .await;
    assert_eq!(
        (code, &body["error"]),
        (404, &json!("not-member")),
        "{body}"
    );
    let (code, body) = c
        .request(leader, Method::DELETE, "/admin/members/n2,n3", None)
        .await;
    assert_eq!(
        (code, &body["error"]),
        (400, &json!("multi-server-change")),
        "{body}"
    );
    let (code, body) = post(&c, leader, json!({"action": "promote"})).await;
    assert_eq!(code, 400, "{body}");

    // The leader removes itself: committed, then it steps down and the rest elect.
    let me = c.nodes[leader].id.clone();
    let (code, body) = c
        .request(
            leader,
            Method::DELETE,
            &format!("/admin/members/{me}"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let rest: Vec<usize> = (0..4).filter(|i| *i != leader).collect();
    let new_leader = c.wait_leader(&rest, SECS).await;
    let m = members(&c, new_leader).await;
    assert!(!ids(&m["voters"]).contains(&me), "{m}");
    assert_eq!(ids(&m["voters"]).len(), 3);
    let old = members(&c, leader).await;
    assert_ne!(
        old["role"], "leader",
        "the removed leader stepped down: {old}"
    );
    let (code, body) = c.put(new_leader, "after-removal", json!(2)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(c.read_linearizable(&rest, "after").await, json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_change_while_the_first_is_uncommitted_is_refused_with_409() {
    let mut c = Cluster::start(3, &[]).await;
    let leader = c.wait_leader(&[0, 1, 2], SECS).await;
    let n4 = c.add_joining(&[]);
    let n5 = c.add_joining(&[]);
    // The followers are cut off: the first change is appended but cannot commit.
    for f in (0..3).filter(|i| *i != leader) {
        c.isolate(f, true);
    }
    let add = |i: usize| json!({"id": c.nodes[i].id, "peer_addr": c.nodes[i].peer_listen});
    let first = {
        let (http, url, body) = (
            c.http.clone(),
            format!("http://{}/admin/members", c.nodes[leader].client_addr),
            add(n4).to_string(),
        );
        tokio::spawn(async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            r.map(|r| r.status().as_u16()).unwrap_or(0)
        })
    };
    wait_members(&c, leader, "first change appended", |m| {
        m["config_committed"] == false
    })
    .await;
    let (code, body) = post(&c, leader, add(n5)).await;
    assert_eq!(
        (code, &body["error"]),
        (409, &json!("change-in-progress")),
        "{body}"
    );
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("not committed yet") && msg.contains("one change at a"),
        "{body}"
    );
    // The first one's outcome is unknown to its client (504) or, if the leader was deposed
    // first, the change may still commit: either way nobody was told it failed.
    let first = first.await.unwrap();
    assert!(
        first == 504 || first == 200,
        "first change answered {first}"
    );
    for f in 0..3 {
        c.isolate(f, false);
    }
    // Healed: one committed configuration agreed by all three voters, n5 in none.
    let l = c.wait_leader(&[0, 1, 2], SECS).await;
    let m = wait_members(&c, l, "committed", |m| m["config_committed"] == true).await;
    assert!(!ids(&m["learners"]).contains(&"n5".to_string()), "{m}");
    let (code, body) = until_not(&c, "change-in-progress", || add(n5), l).await;
    assert_eq!(code, 200, "{body}");
}
