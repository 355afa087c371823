//! `POST /txn` on real kvnode processes (loopback, free ports, per-link proxies): the API
//! and its status contract; Raft and Multi-Paxos apply transactions atomically (one log
//! entry each) and keep them across kill -9 of every node; the histories their clients
//! record pass Elle (strict serializable) and the bank checker, while NWR's per-micro-op
//! quorums produce anomalies Elle names.

mod common;
mod txn_support;

use checkers::bank::{self, BankOptions};
use checkers::elle::{self, CheckOptions, ConsistencyModel};
use checkers::txn::Validity;
use common::Cluster;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use txn_support::{Outcome, Recorder, ACCOUNTS, INITIAL};

const SEC: Duration = Duration::from_secs(1);
const LIST_KEYS: &[&str] = &["x0", "x1", "x2", "x3"];

async fn post(c: &Cluster, i: usize, body: &str) -> (u16, Value) {
    c.request(i, Method::POST, "/txn", Some(body.to_string()))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_api_answers_reads_filled_in_and_maps_every_outcome() {
    let c = Cluster::start(3, &[]).await;
    let l = c.wait_leader(&[0, 1, 2], 10 * SEC).await;
    let (code, body) = post(
        &c,
        l,
        r#"{"txn": [["append","x",1],["append","x","s"],["r","x",null],["w","y",5],
                    ["add","c",2],["add","c",-5],["r","c",null],["r","none",null]]}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"txn": [["append","x",1],["append","x","s"],["r","x",[1,"s"]],["w","y",5],
                       ["add","c",2],["add","c",-5],["r","c",-3],["r","none",null]]})
    );
    // A list is an ordinary value for reads.
    assert_eq!(c.get(l, "x").await.1, json!({"value": [1, "s"]}));
    // Aborts: nothing applied, 409 names the micro-op and the reason.
    for (txn, reason, op) in [
        (r#"[["w","y",6],["expect","y",4]]"#, "precondition", 1),
        (r#"[["w","y",6],["append","y",1]]"#, "type", 1),
        (r#"[["w","y",6],["add","x",1]]"#, "type", 1),
    ] {
        let (code, body) = post(&c, l, &format!(r#"{{"txn": {txn}}}"#)).await;
        assert_eq!(code, 409, "{txn}: {body}");
        assert_eq!(body["error"], "txn-aborted");
        assert_eq!(
            (body["reason"].as_str(), body["op"].as_u64()),
            (Some(reason), Some(op))
        );
        assert!(body["message"].as_str().unwrap().contains('y') || reason == "type");
    }
    assert_eq!(
        c.get(l, "y").await.1["value"],
        json!(5),
        "aborts changed nothing"
    );
    // Malformed transactions: 400, nothing applied.
    let too_many: Vec<Value> = (0..257).map(|i| json!(["w", "k", i])).collect();
    let too_long_key = "k".repeat(1025);
    for bad in [
        r#"{"txn": []}"#.to_string(),
        r#"{"txn": [["cas","x",1]]}"#.into(),
        r#"{"txn": [["r","x",1]]}"#.into(),
        r#"{"txn": [["w","x",[1]]]}"#.into(),
        r#"{"txn": [["w",1,1]]}"#.into(),
        r#"{"txn": [["w","",1]]}"#.into(),
        format!(r#"{{"txn": [["w","{too_long_key}",1]]}}"#),
        r#"{"txn": [["w","x",1]], "extra": 1}"#.into(),
        r#"{"ops": [["w","x",1]]}"#.into(),
        json!({ "txn": too_many }).to_string(),
        "[".into(),
    ] {
        let (code, body) = post(&c, l, &bad).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(body["error"], "bad-request");
    }
    // A follower redirects like for /kv.
    let f = (l + 1) % 3;
    let (code, body) = post(&c, f, r#"{"txn": [["r","x",null]]}"#).await;
    assert_eq!(
        (code, body["leader"].as_str()),
        (421, Some(c.nodes[l].id.as_str()))
    );
    // A retried (client_id, seq) applies once.
    let once = r#"{"txn": [["append","r",1]], "client_id": "c", "seq": 1}"#;
    assert_eq!(post(&c, l, once).await.0, 200);
    assert_eq!(post(&c, l, once).await.0, 200);
    assert_eq!(c.get(l, "r").await.1["value"], json!([1]));
    // PUT still takes scalars only.
    let (code, _) = c
        .request(l, Method::PUT, "/kv/x", Some(r#"{"value":[1]}"#.into()))
        .await;
    assert_eq!(code, 400);
}

/// Concurrent list-append and bank traffic, then kill -9 of every node and a restart: the
/// recorded histories are valid (Elle strict serializable, bank totals conserved) and the
/// final state holds every committed transaction whole and no aborted one.
async fn atomic_and_durable(extra: &[&str]) {
    let c = Cluster::start(3, extra).await;
    c.wait_leader(&[0, 1, 2], 10 * SEC).await;
    let c0 = Arc::new(c);
    let rec = Recorder::new(1000);
    let bank_rec = Recorder::new(1000);
    let (a, b) = tokio::join!(
        txn_support::list_append(&c0, &rec, 4, 3 * SEC, LIST_KEYS),
        txn_support::bank(&c0, &bank_rec, 3, 3 * SEC),
    );
    let _ = (a, b);
    let mut c = Arc::into_inner(c0).expect("workers done");
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.spawn(i);
    }
    let l = c.wait_leader(&[0, 1, 2], 15 * SEC).await;
    let finals = txn_support::read_all(&c, l, LIST_KEYS).await;
    let h = rec.history();
    let bad = txn_support::all_or_nothing(&h, &finals);
    assert!(
        bad.is_empty(),
        "partly applied or lost transactions: {bad:#?}"
    );
    let ok = h
        .events
        .iter()
        .filter(|e| e.kind == checkers::history::EventType::Ok)
        .count();
    assert!(ok > 20, "too little traffic to judge: {ok} ok txns");
    // The final read goes into the history too: Elle must see every committed append.
    let process = rec.fresh();
    let ops: Vec<Value> = LIST_KEYS.iter().map(|k| json!(["r", k, null])).collect();
    txn_support::recorded_txn(&rec, &c, l, process, Value::Array(ops)).await;
    let opts = CheckOptions {
        model: ConsistencyModel::StrictSerializable,
        ..CheckOptions::default()
    };
    let r = elle::check_history(&rec.history(), &opts).unwrap();
    assert_eq!(r.verdict, Validity::Valid, "{}", r.explanation);
    let bank_opts = BankOptions {
        total: Some(INITIAL * ACCOUNTS.len() as i64),
        accounts: Some(ACCOUNTS.iter().map(|a| a.to_string()).collect()),
        ..BankOptions::default()
    };
    let process = bank_rec.fresh();
    bank_rec.record(
        process,
        checkers::history::EventType::Invoke,
        "read",
        Value::Null,
        None,
    );
    match txn_support::read_balances(&c, l).await {
        Outcome::Ok(v) => {
            bank_rec.record(process, checkers::history::EventType::Ok, "read", v, None)
        }
        other => panic!("final balance read: {other:?}"),
    }
    let r = bank::check(&bank_rec.history(), &bank_opts).unwrap();
    assert_eq!(r.verdict, Validity::Valid, "{}", r.explanation);
    assert!(r.transfers.ok > 5, "too few transfers: {:?}", r.transfers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_txns_are_atomic_and_survive_kill9_of_every_node() {
    atomic_and_durable(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipaxos_txns_are_atomic_and_survive_kill9_of_every_node() {
    atomic_and_durable(&["--engine", "multipaxos"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nwr_txns_apply_micro_op_by_micro_op_and_elle_names_the_anomalies() {
    let c = Cluster::start(3, &["--engine", "nwr"]).await;
    for i in 0..3 {
        c.wait_up(i, 10 * SEC).await;
    }
    let c = Arc::new(c);
    let rec = Recorder::new(1000);
    // Few keys, many writers: concurrent read-modify-write appends overwrite each other.
    txn_support::list_append(&c, &rec, 8, 3 * SEC, &["y0", "y1"]).await;
    let process = rec.fresh();
    txn_support::recorded_txn(
        &rec,
        &c,
        0,
        process,
        json!([["r", "y0", null], ["r", "y1", null]]),
    )
    .await;
    let r = elle::check_history(&rec.history(), &CheckOptions::default()).unwrap();
    assert_eq!(
        r.verdict,
        Validity::Invalid,
        "NWR transactions have no isolation; Elle found none: {}",
        r.explanation
    );
    eprintln!("NWR anomalies: {:?} — {}", r.violations, r.explanation);
}
