//! `--shards S` on real kvnode processes: keys split over independent Raft groups in the
//! same processes, transactions across groups by two-phase commit with the decision logged
//! in the coordinator group.
//!
//! - Safe 2PC: concurrent list-append and bank traffic over keys in several groups, then kill
//!   -9 of every node: Elle (strict serializable) and the bank checker find nothing, and the
//!   final state holds every transaction whole or not at all.
//! - A participant group's leader cut off during a cross-group transaction: the coordinator
//!   aborts. Safe 2PC drops the other group's prepared writes; with
//!   `--unsafe-2pc-presumed-commit` that group commits them on its own, and Elle catches the
//!   transaction the client was told failed yet whose append is read (G1a, aborted read).
//! - Membership changes and snapshots under `--shards`: `/admin/members` is refused at once
//!   (409 `sharded`), `--join` / `--unsafe-multi-server-change` stop the node at startup, and
//!   every group snapshots its own log and recovers from it after kill -9.

mod common;
mod txn_support;

use checkers::elle::{self, CheckOptions, ConsistencyModel};
use checkers::history::EventType;
use checkers::txn::Validity;
use cluster::twopc::group_of;
use common::Cluster;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use txn_support::{Outcome, Recorder};

const SEC: Duration = Duration::from_secs(1);

/// A key named `<prefix><n>` for the smallest `n` that lands in `group` of `shards`.
fn key_in(prefix: &str, group: u32, shards: u32) -> String {
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .find(|k| group_of(k, shards) == group)
        .expect("some key lands in every group")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_transactions_are_atomic_serializable_and_survive_kill9() {
    const SHARDS: u32 = 2;
    let c = Cluster::start(3, &["--shards", "2"]).await;
    txn_support::shard_leaders(&c, SHARDS as usize, 15 * SEC).await;
    // Keys of both groups, so most transactions span them.
    let keys: Vec<String> = (0..4)
        .map(|i| key_in(&format!("k{i}_"), i % SHARDS, SHARDS))
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let one = json!([
        ["append", keys[0], 1],
        ["append", keys[1], 1],
        ["r", keys[0], null],
        ["r", keys[1], null]
    ]);
    match txn_support::txn(&c, 0, &one).await {
        Outcome::Ok(body) => assert_eq!(body["txn"][2][2], json!([1]), "{body}"),
        other => panic!("a cross-shard transaction on a healthy cluster: {other:?}"),
    }
    let c0 = Arc::new(c);
    let rec = Recorder::new(1000);
    let bank_rec = Recorder::new(1000);
    let one_rec = rec.fresh();
    rec.record(
        one_rec,
        EventType::Invoke,
        "txn",
        json!([["append", keys[0], 1], ["append", keys[1], 1]]),
        None,
    );
    rec.record(
        one_rec,
        EventType::Ok,
        "txn",
        json!([["append", keys[0], 1], ["append", keys[1], 1]]),
        None,
    );
    tokio::join!(
        txn_support::list_append(&c0, &rec, 4, 3 * SEC, &key_refs),
        txn_support::bank(&c0, &bank_rec, 3, 3 * SEC),
    );
    let mut c = Arc::into_inner(c0).expect("workers done");
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.spawn(i);
    }
    txn_support::shard_leaders(&c, SHARDS as usize, 20 * SEC).await;
    let finals = txn_support::read_all(&c, 0, &key_refs).await;
    let h = rec.history();
    let bad = txn_support::all_or_nothing(&h, &finals);
    assert!(bad.is_empty(), "partly applied transactions: {bad:#?}");
    let committed = h.events.iter().filter(|e| e.kind == EventType::Ok).count();
    assert!(committed > 20, "too little traffic: {committed} committed");
    let process = rec.fresh();
    let ops: Vec<Value> = key_refs.iter().map(|k| json!(["r", k, null])).collect();
    txn_support::recorded_txn(&rec, &c, 0, process, Value::Array(ops)).await;
    let opts = CheckOptions {
        model: ConsistencyModel::StrictSerializable,
        ..CheckOptions::default()
    };
    let r = elle::check_history(&rec.history(), &opts).unwrap();
    assert_eq!(r.verdict, Validity::Valid, "{}", r.explanation);
    let r = checkers::bank::check(
        &bank_rec.history(),
        &checkers::bank::BankOptions {
            total: Some(txn_support::INITIAL * txn_support::ACCOUNTS.len() as i64),
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(r.verdict, Validity::Invalid, "{}", r.explanation);
}

/// Starts 3 nodes with 4 groups and cuts off the leader of one group while another group is
/// led elsewhere; runs one transaction appending to a key in each through the other group's
/// leader; heals and reads both keys. Returns the recorded history (the transaction and the
/// reads).
async fn participant_cut_off(extra: &[&str]) -> checkers::history::History {
    const SHARDS: u32 = 4;
    let mut args = vec!["--shards", "4"];
    args.extend_from_slice(extra);
    let c = Cluster::start(3, &args).await;
    // Two groups with different leaders; if every group has the same leader, cut it off for
    // a moment so the groups elect again (bounded).
    let (ga, gb, la, lb) = 'found: {
        for _ in 0..10 {
            let leaders = txn_support::shard_leaders(&c, SHARDS as usize, 20 * SEC).await;
            for a in 0..SHARDS as usize {
                for b in 0..SHARDS as usize {
                    if leaders[a] != leaders[b] {
                        break 'found (a as u32, b as u32, leaders[a], leaders[b]);
                    }
                }
            }
            c.isolate(leaders[0], true);
            tokio::time::sleep(SEC).await;
            c.isolate(leaders[0], false);
        }
        panic!("every group kept one leader");
    };
    let (ka, kb) = (key_in("a", ga, SHARDS), key_in("b", gb, SHARDS));
    let rec = Recorder::new(1000);
    c.isolate(lb, true);
    // The coordinator (la) prepares in group a; group b's prepare cannot commit.
    let txn = json!([["append", ka, 1], ["append", kb, 1]]);
    let p = rec.fresh();
    rec.record(p, EventType::Invoke, "txn", txn.clone(), None);
    match txn_support::txn(&c, la, &txn).await {
        Outcome::Ok(body) => rec.record(p, EventType::Ok, "txn", body["txn"].clone(), None),
        Outcome::Fail(e) => rec.record(p, EventType::Fail, "txn", txn.clone(), Some(e)),
        Outcome::Info(e) => rec.record(p, EventType::Info, "txn", txn.clone(), Some(e)),
    }
    // Long enough for a participant's timers (presumed commit or recovery) to fire.
    tokio::time::sleep(3 * SEC).await;
    c.isolate(lb, false);
    txn_support::shard_leaders(&c, SHARDS as usize, 20 * SEC).await;
    for k in [&ka, &kb] {
        let p = rec.fresh();
        txn_support::recorded_txn(&rec, &c, la, p, json!([["r", k, null]])).await;
    }
    rec.history()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_participant_never_splits_safe_2pc() {
    let h = participant_cut_off(&[]).await;
    let r = elle::check_history(&h, &CheckOptions::default()).unwrap();
    assert_eq!(
        r.verdict,
        Validity::Valid,
        "{}\n{:#?}",
        r.explanation,
        h.events
    );
    assert!(
        h.events
            .iter()
            .filter(|e| e.f == "txn" && e.kind == EventType::Ok)
            .count()
            >= 2,
        "the final reads must succeed: {:#?}",
        h.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_presumed_commit_splits_a_transaction_and_elle_names_it() {
    let h = participant_cut_off(&["--unsafe-2pc-presumed-commit"]).await;
    let r = elle::check_history(&h, &CheckOptions::default()).unwrap();
    assert_eq!(
        r.verdict,
        Validity::Invalid,
        "not caught: {}\n{:#?}",
        r.explanation,
        h.events
    );
    eprintln!("presumed commit: {}", r.explanation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_node_refuses_membership_changes_and_snapshots_every_group() {
    const SHARDS: u32 = 2;
    let mut c = Cluster::start(3, &["--shards", "2", "--snapshot-entries", "10"]).await;
    txn_support::shard_leaders(&c, SHARDS as usize, 15 * SEC).await;
    let add = r#"{"id":"n4","peer_addr":"127.0.0.1:1"}"#.to_string();
    for (method, path, body) in [
        (reqwest::Method::POST, "/admin/members", Some(add)),
        (reqwest::Method::DELETE, "/admin/members/n3", None),
        (reqwest::Method::GET, "/admin/members", None),
    ] {
        let (code, v) = c.request(0, method.clone(), path, body).await;
        assert_eq!(
            (code, &v["error"]),
            (409, &json!("sharded")),
            "{method} {path}: {v}"
        );
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.contains("not supported with --shards"), "{msg}");
    }
    // Enough writes in each group to pass --snapshot-entries several times over.
    let keys: Vec<String> = (0..SHARDS).map(|g| key_in("s", g, SHARDS)).collect();
    for n in 0..30 {
        for k in &keys {
            let ops = json!([["w", k, n]]);
            match txn_support::txn(&c, 0, &ops).await {
                Outcome::Ok(_) => {}
                other => panic!("write {n} of {k}: {other:?}"),
            }
        }
    }
    for g in 0..SHARDS {
        let snap = |i: usize| {
            c.nodes[i]
                .data_dir
                .join(format!("shard-{g}"))
                .join("kvnode.snap")
        };
        let deadline = tokio::time::Instant::now() + 10 * SEC;
        while !(0..3).all(|i| snap(i).exists()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "group {g}: no kvnode.snap on every node"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.spawn(i);
    }
    txn_support::shard_leaders(&c, SHARDS as usize, 20 * SEC).await;
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let finals = txn_support::read_all(&c, 0, &key_refs).await;
    for k in &keys {
        assert_eq!(
            finals.get(k),
            Some(&json!(29)),
            "{k} after restart: {finals:?}"
        );
    }
}

#[test]
fn membership_flags_are_refused_with_shards_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--join", "--unsafe-multi-server-change"] {
        let out = Command::new(env!("CARGO_BIN_EXE_kvnode"))
            .args(["--id", "n1", "--peer-listen", "127.0.0.1:0"])
            .args(["--client-listen", "127.0.0.1:0"])
            .args(["--peers", "n2=127.0.0.1:1,n3=127.0.0.1:2"])
            .args(["--shards", "2", flag])
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag}: {err}");
        assert!(
            err.contains(flag) && err.contains("--shards"),
            "{flag}: {err}"
        );
    }
}
