//! `POST /txn`: a transaction of micro-ops, applied all or nothing.
//!
//! Request: `{"txn": [["append","x",3], ["r","y",null], ["w","z",7], ["add","c",1],
//! ["expect","a",5]], "client_id"?: "p1", "seq"?: 7}` (micro-ops as in
//! [`MicroOp`]; at most [`MAX_TXN_OPS`]; keys as for `/kv`).
//!
//! Answers (the status contract of the parent module):
//!
//! | status | body | meaning |
//! |---|---|---|
//! | 200 | `{"txn": [["append","x",3], ["r","y",[1,2]], ...]}` | committed; the micro-ops as sent, every read filled in (`null` = missing key) |
//! | 409 | `{"error":"txn-aborted","reason":"precondition"\|"type"\|"conflict","op":i,"message":..}` | definitely nothing applied: an `expect` failed, a type error, or (sharded) a key locked by another transaction |
//! | 400, 421, 501, 503 | as for `/kv` | definitely nothing applied |
//! | 504 | `{"error":"timeout"}` | unknown: it may still commit, whole (Raft, Multi-Paxos, sharded 2PC) or in part (NWR) |
//!
//! Raft and Multi-Paxos apply the transaction as one log entry (strictly serializable). NWR
//! runs each micro-op on its own quorums, one after the other, with no isolation and no
//! atomicity (the comparison point for checkers). With `--shards` a transaction whose keys
//! live in several groups runs two-phase commit (`twopc.rs`).

use super::{
    aborted_response, bad_request, check_key, parse_body, reply_response, submit_reply, ApiState,
};
use crate::msg::{Command, MicroOp, Op, RawMicroOp, Reply};
use crate::node::ClientOp;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// Most micro-ops in one transaction.
pub const MAX_TXN_OPS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxnBody {
    txn: Vec<MicroOp>,
    client_id: Option<String>,
    seq: Option<u64>,
}

/// `POST /txn`.
pub async fn post_txn(State(state): State<ApiState>, body: Body) -> Response {
    let b: TxnBody = match parse_body(body, state.body_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.txn.is_empty() || b.txn.len() > MAX_TXN_OPS {
        return bad_request(format!(
            "a transaction has 1..={MAX_TXN_OPS} micro-ops, this one has {}",
            b.txn.len()
        ));
    }
    for m in &b.txn {
        if let Err(r) = check_key(m.key()) {
            return *r;
        }
    }
    let cmd = Command {
        op: Op::Txn { ops: b.txn.clone() },
        client_id: b.client_id,
        seq: b.seq,
    };
    match submit_reply(&state, ClientOp::Write(cmd)).await {
        Reply::Txn(results) if results.len() == b.txn.len() => {
            let done: Vec<RawMicroOp> = b
                .txn
                .into_iter()
                .zip(results)
                .map(|(m, r)| match m {
                    MicroOp::Read { key } => RawMicroOp("r".into(), key, r),
                    other => other.into(),
                })
                .collect();
            (StatusCode::OK, Json(json!({ "txn": done }))).into_response()
        }
        Reply::Txn(results) => {
            // Cannot happen (every engine answers one result per micro-op); if it did, the
            // transaction was applied but its reads cannot be reported.
            tracing::error!(
                ops = b.txn.len(),
                results = results.len(),
                "transaction answered with the wrong number of results"
            );
            reply_response(Reply::Unknown)
        }
        Reply::TxnAborted(abort) => aborted_response(&abort),
        other => reply_response(other),
    }
}
