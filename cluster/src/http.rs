//! The client API: HTTP/JSON with axum. Parses and validates requests, hands them to the
//! driver (`node.rs`) over a bounded channel, waits with a deadline, and maps the
//! [`Reply`] to a status code. The mapping is the contract the harness relies on:
//!
//! | status | body | meaning |
//! |---|---|---|
//! | 200 | `{"ok":true}` / `{"value":v}` | done |
//! | 400 | `{"error":"bad-request","message":..}` | malformed request or JSON, wrong value type, bad key (not valid percent-encoded UTF-8, too long), oversized body (definite, nothing done) |
//! | 404, 405 | `{"error":"not-found"\|"method-not-allowed","message":..}` | no such route / method (definite) |
//! | 408 | `{"error":"request-timeout","message":..}` | the body did not arrive within the body timeout (definite, nothing done) |
//! | 409 | `{"error":"cas-mismatch","current":v}` | CAS compared unequal (definite) |
//! | 409 | `{"error":"txn-aborted","reason":..,"op":i,"message":..}` | transaction aborted: nothing applied (definite; see [`txn`]) |
//! | 414, 431 | `{"error":"uri-too-long"\|"header-too-large","message":..}` | request head over the limits (definite) |
//! | 421 | `{"error":"not-leader","leader":id\|null}` | not proposed; retry at `leader` (definite) |
//! | 501 | `{"error":"unsupported"}` | the engine does not offer this operation (definite) |
//! | 503 | `{"error":"unavailable","message":..}` | definitely not proposed (e.g. node overloaded) |
//! | 504 | `{"error":"timeout"}` | UNKNOWN outcome: may still take effect later |
//!
//! Every error answer is JSON with an `error` slug: the handlers build theirs, a middleware
//! turns axum's own plain-text or empty rejections (404, 405, path decoding) into that
//! shape, and [`server`] does the same for the answers hyper writes by itself (400 for an
//! unparsable request, 414, 431). [`server`] is the connection layer: timeouts for idle
//! and half-sent connections and the connection cap. The membership admin API
//! (`/admin/members`) and its refusals are in `admin`.

mod admin;
mod server;
pub mod txn;

pub use server::{open_file_limit, serve, HttpLimits, MAX_HEADERS, MAX_HEAD_BYTES};

use crate::msg::{Command, Op, Reply, TxnAbort, Value};
use crate::node::{AdminRequest, ClientOp, ClientRequest, StatusHandle};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
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
    /// Membership changes to the driver.
    pub admin: mpsc::Sender<AdminRequest>,
    /// Published status.
    pub status: StatusHandle,
    /// Server-side deadline of a request; past it the answer is 504 (unknown).
    pub request_timeout: Duration,
    /// How long a request body may take to arrive once its head has; past it the answer is
    /// 408 and the connection is closed (a slow body must not hold a connection forever).
    pub body_timeout: Duration,
}

/// Builds the router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/kv/{key}", get(get_key).put(put_key))
        .route("/kv/{key}/cas", post(cas_key))
        .route("/txn", post(txn::post_txn))
        .route("/status", get(status))
        .route(
            "/admin/members",
            get(admin::get_members).post(admin::post_members),
        )
        .route("/admin/members/{id}", delete(admin::delete_member))
        .with_state(state)
        .layer(middleware::from_fn(json_errors))
}

/// The `error` slug of an error status (one word per status, as the harness reads them).
fn error_slug(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad-request",
        404 => "not-found",
        405 => "method-not-allowed",
        408 => "request-timeout",
        413 => "payload-too-large",
        414 => "uri-too-long",
        431 => "header-too-large",
        503 => "unavailable",
        504 => "timeout",
        s if s >= 500 => "server-error",
        _ => "client-error",
    }
}

/// The JSON error body `{"error": slug, "message": message}`: the one error shape.
fn error_json(status: StatusCode, message: &str) -> String {
    json!({"error": error_slug(status), "message": message}).to_string()
}

/// An error answer with the JSON error shape.
fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let json = HeaderValue::from_static("application/json");
    let body = error_json(status, &message.into());
    (status, [(header::CONTENT_TYPE, json)], body).into_response()
}

/// Turns every error answer that is not JSON (axum's 404 and 405, which are empty, and its
/// plain-text extractor rejections such as a `%FF` key) into the JSON error shape, keeping
/// the status and headers like `allow`.
async fn json_errors(req: Request, next: Next) -> Response {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let what = format!("{method} {}", uri.path());
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match status {
        StatusCode::NOT_FOUND => format!("no route for {what}"),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("{what}: method not allowed (allowed: {allow})")
        }
        _ if !text.is_empty() => format!("{what}: {text}"),
        _ => format!("{what}: {}", status.canonical_reason().unwrap_or("error")),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(error_json(status, &message)))
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
    error_response(StatusCode::BAD_REQUEST, message)
}

fn check_key(key: &str) -> Result<(), Box<Response>> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Box::new(bad_request(format!(
            "key must be 1..={MAX_KEY} bytes long"
        ))));
    }
    Ok(())
}

async fn parse_body<T: for<'de> Deserialize<'de>>(
    body: Body,
    timeout: Duration,
) -> Result<T, Response> {
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            let mut r = bad_request(format!("body unreadable or larger than {MAX_BODY} bytes"));
            // The unread rest of the body is still on the connection: it cannot carry another
            // request, so tell the client not to reuse it (a pooled client otherwise races the
            // close and loses its next request).
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(r);
        }
        Err(_) => {
            let mut r = error_response(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} ms; nothing was done",
                    timeout.as_millis()
                ),
            );
            // The rest of the body may still trickle in: do not wait for it.
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(r);
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        bad_request(format!(
            "invalid JSON body (values must be integers or strings): {e}"
        ))
    })
}

/// The 409 answer of an aborted transaction.
pub fn aborted_response(abort: &TxnAbort) -> Response {
    (
        StatusCode::CONFLICT,
        Json(json!({
            "error": "txn-aborted",
            "reason": abort.reason.as_str(),
            "op": abort.op,
            "message": abort.message,
        })),
    )
        .into_response()
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
        Reply::Unavailable(m) => error_response(StatusCode::SERVICE_UNAVAILABLE, m),
        Reply::Unknown => timeout_response(),
        Reply::Unsupported => (
            StatusCode::NOT_IMPLEMENTED,
            Json(json!({"error": "unsupported"})),
        )
            .into_response(),
        Reply::Txn(results) => (StatusCode::OK, Json(json!({"results": results}))).into_response(),
        Reply::TxnAborted(abort) => aborted_response(&abort),
        // Never the answer to a client request; if it were, the outcome is not known here.
        Reply::TwoPc(r) => {
            tracing::error!(reply = ?r, "internal two-phase-commit reply reached a client");
            timeout_response()
        }
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
    reply_response(submit_reply(state, op).await)
}

/// Hands `op` to the driver and waits for its reply until the request deadline.
async fn submit_reply(state: &ApiState, op: ClientOp) -> Reply {
    let (tx, rx) = oneshot::channel();
    if state.tx.try_send(ClientRequest { op, reply: tx }).is_err() {
        return Reply::Unavailable("node overloaded or stopping".into());
    }
    match tokio::time::timeout(state.request_timeout, rx).await {
        Ok(Ok(reply)) => reply,
        // Dropped by the driver (shutdown) or deadline passed: outcome unknown.
        Ok(Err(_)) | Err(_) => Reply::Unknown,
    }
}

/// A 400 unless `v` is an integer or a string.
fn check_scalar(what: &str, v: &Value) -> Result<(), Box<Response>> {
    if v.is_scalar() {
        return Ok(());
    }
    Err(Box::new(bad_request(format!(
        "{what} must be an integer or a string, got a list"
    ))))
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
    let b: PutBody = match parse_body(body, state.body_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_scalar("value", &b.value) {
        return *r;
    }
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
    let b: CasBody = match parse_body(body, state.body_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_scalar("from", &b.from).and_then(|()| check_scalar("to", &b.to)) {
        return *r;
    }
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
    let mut body = json!({
        "id": s.id,
        "engine": s.engine,
        "role": s.role.as_str(),
        "term": s.term,
        "leader": s.leader,
        "commit_index": s.commit_index,
        "applied_index": s.applied_index,
    });
    if !s.shards.is_empty() {
        body["shards"] = s
            .shards
            .iter()
            .map(|g| {
                json!({
                    "group": g.group,
                    "role": g.role.as_str(),
                    "term": g.term,
                    "leader": g.leader,
                    "commit_index": g.commit_index,
                    "applied_index": g.applied_index,
                })
            })
            .collect();
    }
    Json(body).into_response()
}
