//! The client API: HTTP/JSON with axum. Parses and validates requests, hands them to the
//! driver (`node.rs`) over a bounded channel, waits with a deadline, and maps the
//! [`Reply`] to a status code. The mapping is the contract the harness relies on:
//!
//! | status | body | meaning |
//! |---|---|---|
//! | 200 | `{"ok":true}` / `{"value":v}` | done |
//! | 400 | `{"error":"bad-request","message":..}` | malformed JSON, wrong value type, oversized body (definite, nothing done) |
//! | 409 | `{"error":"cas-mismatch","current":v}` | CAS compared unequal (definite) |
//! | 421 | `{"error":"not-leader","leader":id\|null}` | not proposed; retry at `leader` (definite) |
//! | 501 | `{"error":"unsupported"}` | the engine does not offer this operation (definite) |
//! | 503 | `{"error":"unavailable","message":..}` | definitely not proposed (e.g. node overloaded) |
//! | 504 | `{"error":"timeout"}` | UNKNOWN outcome: may still take effect later |

use crate::msg::{Command, Op, Reply, Value};
use crate::node::{ClientOp, ClientRequest, StatusHandle};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest accepted key.
pub const MAX_KEY: usize = 1024;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct ApiState {
    /// To the driver.
    pub tx: mpsc::Sender<ClientRequest>,
    /// Published status.
    pub status: StatusHandle,
    /// Server-side deadline of a request; past it the answer is 504 (unknown).
    pub request_timeout: Duration,
}

/// Builds the router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/kv/{key}", get(get_key).put(put_key))
        .route("/kv/{key}/cas", post(cas_key))
        .route("/status", get(status))
        .with_state(state)
}

#[derive(Deserialize)]
struct PutBody {
    value: Value,
    client_id: Option<String>,
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct CasBody {
    from: Value,
    to: Value,
    client_id: Option<String>,
    seq: Option<u64>,
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "bad-request", "message": message.into()})),
    )
        .into_response()
}

fn check_key(key: &str) -> Result<(), Box<Response>> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Box::new(bad_request(format!(
            "key must be 1..={MAX_KEY} bytes long"
        ))));
    }
    Ok(())
}

async fn parse_body<T: for<'de> Deserialize<'de>>(body: Body) -> Result<T, Response> {
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| bad_request(format!("body unreadable or larger than {MAX_BODY} bytes")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        bad_request(format!(
            "invalid JSON body (values must be integers or strings): {e}"
        ))
    })
}

/// Maps a reply to the documented status code and body.
pub fn reply_response(reply: Reply) -> Response {
    match reply {
        Reply::Ok => (StatusCode::OK, Json(json!({"ok": true}))).into_response(),
        Reply::Value(v) => (StatusCode::OK, Json(json!({"value": v}))).into_response(),
        Reply::CasMismatch(cur) => (
            StatusCode::CONFLICT,
            Json(json!({"error": "cas-mismatch", "current": cur})),
        )
            .into_response(),
        Reply::NotLeader(leader) => (
            StatusCode::MISDIRECTED_REQUEST,
            Json(json!({"error": "not-leader", "leader": leader})),
        )
            .into_response(),
        Reply::Unavailable(m) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "unavailable", "message": m})),
        )
            .into_response(),
        Reply::Unknown => timeout_response(),
        Reply::Unsupported => (
            StatusCode::NOT_IMPLEMENTED,
            Json(json!({"error": "unsupported"})),
        )
            .into_response(),
    }
}

fn timeout_response() -> Response {
    (
        StatusCode::GATEWAY_TIMEOUT,
        Json(json!({"error": "timeout"})),
    )
        .into_response()
}

async fn submit(state: &ApiState, op: ClientOp) -> Response {
    let (tx, rx) = oneshot::channel();
    if state.tx.try_send(ClientRequest { op, reply: tx }).is_err() {
        return reply_response(Reply::Unavailable("node overloaded or stopping".into()));
    }
    match tokio::time::timeout(state.request_timeout, rx).await {
        Ok(Ok(reply)) => reply_response(reply),
        // Dropped by the driver (shutdown) or deadline passed: outcome unknown.
        Ok(Err(_)) | Err(_) => timeout_response(),
    }
}

async fn get_key(State(state): State<ApiState>, Path(key): Path<String>) -> Response {
    if let Err(r) = check_key(&key) {
        return *r;
    }
    submit(&state, ClientOp::Read(key)).await
}

async fn put_key(State(state): State<ApiState>, Path(key): Path<String>, body: Body) -> Response {
    if let Err(r) = check_key(&key) {
        return *r;
    }
    let b: PutBody = match parse_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let cmd = Command {
        op: Op::Put {
            key,
            value: b.value,
        },
        client_id: b.client_id,
        seq: b.seq,
    };
    submit(&state, ClientOp::Write(cmd)).await
}

async fn cas_key(State(state): State<ApiState>, Path(key): Path<String>, body: Body) -> Response {
    if let Err(r) = check_key(&key) {
        return *r;
    }
    let b: CasBody = match parse_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let cmd = Command {
        op: Op::Cas {
            key,
            from: b.from,
            to: b.to,
        },
        client_id: b.client_id,
        seq: b.seq,
    };
    submit(&state, ClientOp::Write(cmd)).await
}

async fn status(State(state): State<ApiState>) -> Response {
    let s = state.status.lock().expect("status lock").clone();
    Json(json!({
        "id": s.id,
        "engine": s.engine,
        "role": s.role.as_str(),
        "term": s.term,
        "leader": s.leader,
        "commit_index": s.commit_index,
        "applied_index": s.applied_index,
    }))
    .into_response()
}
