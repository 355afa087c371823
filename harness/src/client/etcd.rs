//! The etcd client: workload ops over etcd's v3 JSON gateway (`POST /v3/kv/range`,
//! `/v3/kv/put`, `/v3/kv/txn`), the gRPC API as JSON: keys and values are base64, 64-bit
//! integers (revisions, ids) are decimal strings. Register values are the workloads'
//! integers stored as decimal text, so `etcdctl get r` shows them.
//!
//! A cas is one transaction: compare the key's value with `from`, put `to` on success, read
//! the key on failure (the current value a failed cas reports, like kvnode's 409).
//!
//! Outcomes, the way the checker needs them:
//! - writes and cas: `fail` only when the op definitely did not happen: the compare failed,
//!   a 4xx (invalid request, too many requests, ...), or the connection was refused before
//!   anything was sent. A timeout, a 5xx (etcd answers `Unavailable` — "leader changed",
//!   "no leader", "request timed out" — as 503), a reset connection or an unreadable answer
//!   is `info`: the proposal may still commit.
//! - reads: every error is `fail`, because a read changes nothing, so one that returned no
//!   value definitely took no effect (Jepsen's etcd client does the same); it keeps the
//!   worker's process instead of retiring it.
//!
//! One [`reqwest::Client`] is shared by every worker: its pool hands each in-flight request
//! its own keep-alive HTTP/1.1 connection, so with `concurrency` workers there are
//! `concurrency` long-lived connections — one per worker, as if each had its own client —
//! while the run loop and `faultline bench` hand the same `Arc<Client>` to every worker for
//! kvnode and etcd alike.

use super::{Client, Outcome, REGISTER_KEY};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::time::Duration;
use workloads::Op;

/// A client of an etcd cluster.
#[derive(Debug, Clone)]
pub struct EtcdClient {
    http: reqwest::Client,
    /// Member names, index-aligned with `urls`.
    ids: Vec<String>,
    /// Client URLs, `http://host:port`.
    urls: Vec<String>,
    /// Serve reads from the member's local state (`serializable`) instead of a read-index
    /// round through the leader.
    serializable: bool,
}

impl EtcdClient {
    /// A client for members `ids` at `urls`, each op bounded by `timeout`.
    pub fn new(
        ids: Vec<String>,
        urls: Vec<String>,
        timeout: Duration,
        serializable: bool,
    ) -> anyhow::Result<EtcdClient> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_millis(500))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(EtcdClient {
            http,
            ids,
            urls,
            serializable,
        })
    }
}

/// A workload value as etcd stores it: decimal text, base64 on the wire.
pub fn encode_value(v: i64) -> String {
    B64.encode(v.to_string())
}

/// A stored value back as a workload value: the integer it spells, else the raw text (a
/// value no workload wrote, which the checker must see rather than have hidden).
pub fn decode_value(b64: &str) -> Value {
    let Ok(bytes) = B64.decode(b64) else {
        return Value::String(format!("(not base64: {b64})"));
    };
    let text = String::from_utf8_lossy(&bytes);
    match text.parse::<i64>() {
        Ok(i) => json!(i),
        Err(_) => Value::String(text.into_owned()),
    }
}

/// The value of the first key-value in a range response (`null` when the key is absent).
fn range_value(range: &Value) -> Value {
    range
        .get("kvs")
        .and_then(|k| k.get(0))
        .and_then(|kv| kv.get("value"))
        .and_then(Value::as_str)
        .map_or(Value::Null, decode_value)
}

/// The request for `op`: gateway path and JSON body; `None` for the transactional
/// workloads' ops, which this client does not offer (the test plan refuses them for etcd).
pub fn request(op: &Op, serializable: bool) -> Option<(&'static str, Value)> {
    let key = B64.encode(op.key().unwrap_or(REGISTER_KEY));
    Some(match op {
        Op::Read { .. } if serializable => {
            ("/v3/kv/range", json!({"key": key, "serializable": true}))
        }
        Op::Read { .. } => ("/v3/kv/range", json!({ "key": key })),
        Op::Write { value, .. } => (
            "/v3/kv/put",
            json!({"key": key, "value": encode_value(*value)}),
        ),
        Op::Cas { from, to, .. } => (
            "/v3/kv/txn",
            json!({
                "compare": [{"key": key, "target": "VALUE", "result": "EQUAL",
                             "value": encode_value(*from)}],
                "success": [{"requestPut": {"key": key, "value": encode_value(*to)}}],
                "failure": [{"requestRange": {"key": key}}],
            }),
        ),
        _ => return None,
    })
}

/// How an op ended, given etcd's answer: the HTTP status and body, or why there was none.
/// Pure, so every mapping is tested without a server.
pub fn classify(op: &Op, node: &str, answer: Result<(u16, &[u8]), Transport>) -> Outcome {
    let read = matches!(op, Op::Read { .. });
    let node_id = Some(node.to_string());
    // Unknown for a write or cas; a read that got nothing definitely did nothing.
    let unknown = |error: String| {
        if read {
            Outcome::Fail {
                error,
                node: node_id.clone(),
            }
        } else {
            Outcome::Info {
                error,
                node: node_id.clone(),
            }
        }
    };
    let (status, body) = match answer {
        Ok(a) => a,
        Err(Transport::Refused) => {
            return Outcome::Fail {
                error: "connection refused".into(),
                node: node_id,
            }
        }
        Err(Transport::Timeout) => return unknown("timeout".into()),
        Err(Transport::Lost(e)) => return unknown(format!("connection lost: {e}")),
    };
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if status != 200 {
        let msg = parsed
            .as_ref()
            .and_then(|v| v.get("message").or_else(|| v.get("error")))
            .and_then(Value::as_str)
            .map_or_else(
                || String::from_utf8_lossy(body).trim().to_string(),
                str::to_string,
            );
        let error = format!("http {status}: {msg}");
        return if (400..500).contains(&status) {
            Outcome::Fail {
                error,
                node: node_id,
            }
        } else {
            unknown(error)
        };
    }
    let node = node.to_string();
    match (op, parsed) {
        // 200 to a put: it committed, whatever the body says.
        (Op::Write { .. }, _) => Outcome::Ok {
            value: op.invoke_value(),
            node,
        },
        (Op::Read { .. }, Some(v)) => Outcome::Ok {
            value: range_value(&v),
            node,
        },
        (Op::Cas { .. }, Some(v)) if v.get("succeeded").and_then(Value::as_bool) == Some(true) => {
            Outcome::Ok {
                value: op.invoke_value(),
                node,
            }
        }
        (Op::Cas { .. }, Some(v)) => {
            // `succeeded` is omitted when false (proto3 JSON); the failure branch read the key.
            let current = v
                .get("responses")
                .and_then(|r| r.get(0))
                .and_then(|r| r.get("response_range"))
                .map_or(Value::Null, range_value);
            Outcome::Mismatch { current, node }
        }
        (_, Some(_)) => Outcome::Fail {
            error: format!("the etcd client offers no {} op", op.f()),
            node: Some(node),
        },
        (_, None) => unknown(format!(
            "unreadable answer: {}",
            String::from_utf8_lossy(body)
        )),
    }
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The connection was refused: nothing was sent.
    Refused,
    /// The op's deadline passed.
    Timeout,
    /// The connection broke after the request may have been sent.
    Lost(String),
}

impl Client for EtcdClient {
    async fn invoke(&self, _process: u64, _seq: u64, node: usize, op: &Op) -> Outcome {
        let node = node % self.urls.len().max(1);
        let Some((path, body)) = request(op, self.serializable) else {
            return Outcome::Fail {
                error: format!("the etcd client offers no {} op", op.f()),
                node: None,
            };
        };
        let url = format!("{}{path}", self.urls[node]);
        let sent = self.http.post(url).json(&body).send().await;
        let answer = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(b) => Ok((status, b)),
                    Err(e) if e.is_timeout() => Err(Transport::Timeout),
                    Err(e) => Err(Transport::Lost(e.to_string())),
                }
            }
            Err(e) if e.is_connect() => Err(Transport::Refused),
            Err(e) if e.is_timeout() => Err(Transport::Timeout),
            Err(e) => Err(Transport::Lost(e.to_string())),
        };
        let answer = answer
            .as_ref()
            .map(|(s, b)| (*s, &b[..]))
            .map_err(Clone::clone);
        classify(op, &self.ids[node], answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read() -> Op {
        Op::Read { key: None }
    }
    fn write(v: i64) -> Op {
        Op::Write {
            key: None,
            value: v,
        }
    }
    fn cas(from: i64, to: i64) -> Op {
        Op::Cas {
            key: None,
            from,
            to,
        }
    }

    fn ok(op: &Op, body: &str) -> Outcome {
        classify(op, "n2", Ok((200, body.as_bytes())))
    }

    #[test]
    fn requests_are_base64_and_reads_choose_their_consistency() {
        let (path, body) = request(&write(17), false).unwrap();
        assert_eq!(path, "/v3/kv/put");
        assert_eq!(body, json!({"key": "cg==", "value": "MTc="}));
        let (_, lin) = request(&read(), false).unwrap();
        assert_eq!(
            lin,
            json!({"key": "cg=="}),
            "linearizable is etcd's default"
        );
        let (_, ser) = request(&read(), true).unwrap();
        assert_eq!(ser["serializable"], json!(true));
        let (path, txn) = request(
            &Op::Cas {
                key: Some("k7".into()),
                from: -3,
                to: 4,
            },
            false,
        )
        .unwrap();
        assert_eq!(path, "/v3/kv/txn");
        assert!(request(&Op::SetRead, false).is_none());
        assert_eq!(txn["compare"][0]["key"], json!(B64.encode("k7")));
        assert_eq!(txn["compare"][0]["value"], json!(B64.encode("-3")));
        assert_eq!(
            txn["success"][0]["requestPut"]["value"],
            json!(B64.encode("4"))
        );
    }

    /// Bodies as etcd 3.4's gateway returns them (int64 as strings, false omitted).
    #[test]
    fn answers_map_to_outcomes() {
        let hit = r#"{"header":{"revision":"2"},"kvs":[{"key":"cg==","mod_revision":"2","value":"MTc="}],"count":"1"}"#;
        assert_eq!(
            ok(&read(), hit),
            Outcome::Ok {
                value: json!(17),
                node: "n2".into()
            }
        );
        assert_eq!(
            ok(&read(), r#"{"header":{"revision":"1"}}"#),
            Outcome::Ok {
                value: Value::Null,
                node: "n2".into()
            }
        );
        assert_eq!(
            ok(&write(5), r#"{"header":{}}"#),
            Outcome::Ok {
                value: json!(5),
                node: "n2".into()
            }
        );
        assert_eq!(
            ok(
                &cas(1, 2),
                r#"{"header":{},"succeeded":true,"responses":[{"response_put":{}}]}"#
            ),
            Outcome::Ok {
                value: json!([1, 2]),
                node: "n2".into()
            }
        );
        let failed = r#"{"header":{},"responses":[{"response_range":{"header":{},"kvs":[{"key":"cg==","value":"MTc="}],"count":"1"}}]}"#;
        assert_eq!(
            ok(&cas(1, 2), failed),
            Outcome::Mismatch {
                current: json!(17),
                node: "n2".into()
            }
        );
        let absent = r#"{"header":{},"responses":[{"response_range":{"header":{}}}]}"#;
        assert_eq!(
            ok(&cas(1, 2), absent),
            Outcome::Mismatch {
                current: Value::Null,
                node: "n2".into()
            }
        );
        // A value nobody wrote reaches the checker as what it is.
        let odd = format!(r#"{{"kvs":[{{"value":"{}"}}]}}"#, B64.encode("x1"));
        assert_eq!(
            ok(&read(), &odd),
            Outcome::Ok {
                value: json!("x1"),
                node: "n2".into()
            }
        );
    }

    #[test]
    fn errors_are_fail_only_when_the_op_surely_did_not_happen() {
        let leader_changed =
            br#"{"error":"etcdserver: leader changed","code":14,"message":"etcdserver: leader changed"}"#;
        let too_many = br#"{"error":"etcdserver: too many requests","code":8,"message":"etcdserver: too many requests"}"#;
        let is_info = |o: &Outcome| matches!(o, Outcome::Info { .. });
        let is_fail = |o: &Outcome| matches!(o, Outcome::Fail { .. });
        for op in [write(1), cas(1, 2)] {
            let o = classify(&op, "n1", Ok((503, leader_changed)));
            assert!(is_info(&o), "{o:?}");
            assert!(format!("{o:?}").contains("leader changed"), "{o:?}");
            assert!(is_info(&classify(&op, "n1", Ok((504, b"")))));
            assert!(is_info(&classify(&op, "n1", Err(Transport::Timeout))));
            assert!(is_info(&classify(
                &op,
                "n1",
                Err(Transport::Lost("reset".into()))
            )));
            assert!(is_fail(&classify(&op, "n1", Ok((429, too_many)))));
            assert!(is_fail(&classify(&op, "n1", Ok((400, b"bad")))));
            assert!(is_fail(&classify(&op, "n1", Err(Transport::Refused))));
        }
        assert!(is_info(&classify(&cas(1, 2), "n1", Ok((200, b"garbage")))));
        assert!(matches!(
            classify(&write(1), "n1", Ok((200, b"garbage"))),
            Outcome::Ok { .. }
        ));
        for answer in [
            Ok((503, &leader_changed[..])),
            Ok((200, &b"garbage"[..])),
            Err(Transport::Timeout),
            Err(Transport::Lost("reset".into())),
        ] {
            let o = classify(&read(), "n3", answer);
            assert!(is_fail(&o), "a read that got no value did nothing: {o:?}");
        }
        match classify(&write(1), "n3", Ok((503, leader_changed))) {
            Outcome::Info { node, .. } => assert_eq!(node.as_deref(), Some("n3")),
            o => panic!("{o:?}"),
        }
    }
}
