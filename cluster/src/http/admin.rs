//! The membership admin API: `GET /admin/members` shows this node's view of the
//! configuration, `POST /admin/members` adds a learner, promotes one, or (unsafe variant
//! only) adds voters, `DELETE /admin/members/{id}` removes a member. Changes go to the
//! driver over their own channel and are answered once committed (200), refused at once with
//! the reason (4xx, nothing done), or 504 when the outcome is unknown. Errors have the API's
//! one JSON shape, `{"error": slug, "message": ...}`:
//!
//! | status | `error` | meaning (all definite: nothing was done) |
//! |---|---|---|
//! | 400 | `bad-request` | malformed body, invalid id, missing `peer_addr` |
//! | 400 | `multi-server-change` | several voters at once without `--unsafe-multi-server-change` |
//! | 404 | `not-member` | the node to promote or remove is not a member |
//! | 409 | `change-in-progress` | the previous change is not committed yet (one at a time) |
//! | 409 | `leader-not-ready` | the leader has not committed an entry of its term yet |
//! | 409 | `learner-behind` | the learner to promote has not caught up |
//! | 409 | `already-member`, `already-voter`, `last-voter` | the change makes no sense now |
//! | 421 | `not-leader` (+ `leader`) | send it to the leader |
//! | 501 | `unsupported` | the engine has no membership changes |
//! | 409 | `sharded` | the node runs `--shards` > 1 (groups' members are fixed) |
//! | 503 | `unavailable` | the node is overloaded or stopping |
//! | 504 | `timeout` | UNKNOWN: the change may still commit |

use super::{error_response, parse_body, reply_response, ApiState};
use crate::membership::{ChangeError, ConfChange, MemberAddr, NewMember};
use crate::msg::{NodeId, Reply};
use crate::node::AdminRequest;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// `POST /admin/members` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostBody {
    /// What to do; `add-learner` when absent.
    #[serde(default)]
    action: Option<Action>,
    id: Option<NodeId>,
    peer_addr: Option<String>,
    client_addr: Option<String>,
    #[serde(default)]
    peer_addr_via: BTreeMap<NodeId, String>,
    members: Option<Vec<NewMember>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Action {
    AddLearner,
    Promote,
    AddVoters,
}

/// The change a POST body asks for, or what is missing.
fn post_change(b: PostBody) -> Result<ConfChange, String> {
    let need_id = |id: Option<NodeId>, what: &str| id.ok_or(format!("{what} needs \"id\""));
    match b.action.unwrap_or(Action::AddLearner) {
        Action::AddLearner => Ok(ConfChange::AddLearner(NewMember {
            id: need_id(b.id, "add-learner")?,
            addr: MemberAddr {
                peer_addr: b
                    .peer_addr
                    .ok_or("add-learner needs \"peer_addr\" (where peers reach the node)")?,
                client_addr: b.client_addr,
                peer_addr_via: b.peer_addr_via,
            },
        })),
        Action::Promote => Ok(ConfChange::Promote(need_id(b.id, "promote")?)),
        Action::AddVoters => match b.members {
            Some(m) if !m.is_empty() => Ok(ConfChange::AddVoters(m)),
            _ => Err("add-voters needs a non-empty \"members\" list".into()),
        },
    }
}

/// A JSON error with an explicit slug (the admin API's refusals are finer than statuses).
fn refusal(status: StatusCode, slug: &str, message: String) -> Response {
    let json = HeaderValue::from_static("application/json");
    let body = json!({"error": slug, "message": message}).to_string();
    (status, [(header::CONTENT_TYPE, json)], body).into_response()
}

/// Maps a refusal to its status and slug (table in the module doc).
fn change_error(e: ChangeError) -> Response {
    let message = e.to_string();
    let (status, slug) = match &e {
        ChangeError::NotLeader(leader) => {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                Json(json!({"error": "not-leader", "leader": leader, "message": message})),
            )
                .into_response()
        }
        ChangeError::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, "unsupported"),
        ChangeError::InProgress { .. } => (StatusCode::CONFLICT, "change-in-progress"),
        ChangeError::LeaderNotReady => (StatusCode::CONFLICT, "leader-not-ready"),
        ChangeError::LearnerBehind { .. } => (StatusCode::CONFLICT, "learner-behind"),
        ChangeError::AlreadyMember(_) => (StatusCode::CONFLICT, "already-member"),
        ChangeError::AlreadyVoter(_) => (StatusCode::CONFLICT, "already-voter"),
        ChangeError::LastVoter => (StatusCode::CONFLICT, "last-voter"),
        ChangeError::NotMember(_) => (StatusCode::NOT_FOUND, "not-member"),
        ChangeError::MultiServer(_) => (StatusCode::BAD_REQUEST, "multi-server-change"),
        ChangeError::Sharded => (StatusCode::CONFLICT, "sharded"),
        _ => (StatusCode::BAD_REQUEST, "bad-request"),
    };
    refusal(status, slug, message)
}

/// Hands a change to the driver and waits for its outcome.
async fn submit_change(state: &ApiState, change: ConfChange) -> Response {
    let what = change.describe();
    let (tx, rx) = oneshot::channel();
    let req = AdminRequest { change, reply: tx };
    if state.admin.try_send(req).is_err() {
        return reply_response(Reply::Unavailable("node overloaded or stopping".into()));
    }
    match tokio::time::timeout(state.request_timeout, rx).await {
        Ok(Ok(Ok(Reply::Ok))) => {
            (StatusCode::OK, Json(json!({"ok": true, "change": what}))).into_response()
        }
        Ok(Ok(Ok(other))) => reply_response(other),
        Ok(Ok(Err(e))) => change_error(e),
        Ok(Err(_)) | Err(_) => reply_response(Reply::Unknown),
    }
}

/// `POST /admin/members`.
pub(super) async fn post_members(State(state): State<ApiState>, body: Body) -> Response {
    let b: PostBody = match parse_body(body, state.body_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match post_change(b) {
        Ok(change) => submit_change(&state, change).await,
        Err(m) => error_response(StatusCode::BAD_REQUEST, m),
    }
}

/// `DELETE /admin/members/{id}` (`{id}` may list several ids, comma-separated).
pub(super) async fn delete_member(
    State(state): State<ApiState>,
    Path(ids): Path<String>,
) -> Response {
    let ids: Vec<NodeId> = ids.split(',').map(str::to_string).collect();
    if ids.iter().any(|i| i.is_empty() || i.len() > super::MAX_KEY) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "node ids must be non-empty (several: comma-separated)",
        );
    }
    submit_change(&state, ConfChange::Remove(ids)).await
}

/// `GET /admin/members`: this node's view (possibly not committed, possibly stale on a
/// node cut off from the leader).
pub(super) async fn get_members(State(state): State<ApiState>) -> Response {
    let s = state.status.lock().expect("status lock").clone();
    if !s.shards.is_empty() {
        return change_error(ChangeError::Sharded);
    }
    let Some(m) = s.membership else {
        return change_error(ChangeError::Unsupported(s.engine));
    };
    let members: Vec<_> = m
        .members()
        .into_iter()
        .map(|id| {
            let role = if m.voters.contains(&id) {
                "voter"
            } else {
                "learner"
            };
            let addr = m.addrs.get(&id);
            json!({
                "id": id,
                "role": role,
                "peer_addr": addr.map(|a| &a.peer_addr),
                "client_addr": addr.and_then(|a| a.client_addr.as_ref()),
            })
        })
        .collect();
    Json(json!({
        "id": s.id,
        "role": s.role.as_str(),
        "leader": s.leader,
        "term": s.term,
        "commit_index": s.commit_index,
        "config_index": m.index,
        "config_committed": m.index <= s.commit_index,
        "voters": m.voters,
        "learners": m.learners,
        "members": members,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Result<ConfChange, String> {
        post_change(serde_json::from_str(json).map_err(|e| e.to_string())?)
    }

    #[test]
    fn post_bodies_map_to_changes_or_say_what_is_missing() {
        let add = body(r#"{"id":"n4","peer_addr":"a:1","peer_addr_via":{"n1":"p:2"}}"#).unwrap();
        let ConfChange::AddLearner(m) = add else {
            panic!("{add:?}")
        };
        assert_eq!(m.addr.for_dialer("n1"), "p:2");
        assert_eq!(
            body(r#"{"action":"promote","id":"n4"}"#),
            Ok(ConfChange::Promote("n4".into()))
        );
        assert!(body(r#"{"id":"n4"}"#).unwrap_err().contains("peer_addr"));
        assert!(body(r#"{"action":"promote"}"#)
            .unwrap_err()
            .contains("needs \"id\""));
        assert!(body(r#"{"action":"add-voters","members":[]}"#)
            .unwrap_err()
            .contains("non-empty"));
        assert!(body(r#"{"action":"kick","id":"n4"}"#).is_err());
        assert!(body(r#"{"id":"n4","peer_addr":"a:1","extra":1}"#).is_err());
        let two = body(
            r#"{"action":"add-voters","members":[{"id":"n4","peer_addr":"a:1"},{"id":"n5","peer_addr":"b:1"}]}"#,
        )
        .unwrap();
        assert!(matches!(two, ConfChange::AddVoters(v) if v.len() == 2));
    }
}
