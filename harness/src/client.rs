//! Clients: how a worker turns a workload [`Op`] into a call on the system under test.
//!
//! [`Client`] is the seam for DB adapters (kvnode here, etcd in [`etcd`]). An implementation must
//! classify every outcome the way the checker needs it: `Ok` (took effect), `Fail` (did
//! definitely not take effect: cas mismatch, not-leader, unavailable, connection refused
//! before the request was sent) or `Info` (unknown: timeout, connection lost after sending,
//! 504). Getting `Fail` wrong hides anomalies or invents them, so when in doubt: `Info`.
//! [`NoopClient`] answers instantly in-process; it measures the harness's own overhead.

pub mod etcd;

use serde_json::{json, Value};
use std::future::Future;
use std::time::Duration;
use workloads::Op;

/// How an op ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Took effect; `value` is the completion value (the read result, or the invoke value).
    Ok {
        /// Completion value.
        value: Value,
        /// Node that served it.
        node: String,
    },
    /// Definitely did not take effect.
    Fail {
        /// Why.
        error: String,
        /// Node that answered, if any.
        node: Option<String>,
    },
    /// A cas that definitely did not take effect because the register held `current`.
    Mismatch {
        /// The value the node reported instead of the cas's `from`.
        current: Value,
        /// Node that answered.
        node: String,
    },
    /// Unknown: may take effect at any later time.
    Info {
        /// Why.
        error: String,
        /// Node that was asked.
        node: Option<String>,
    },
}

/// A client of the system under test. `node` is the index of the node the worker is bound to.
pub trait Client: Send + Sync + 'static {
    /// Invokes `op` as `process` (its `seq`-th op), starting at node `node`.
    fn invoke(
        &self,
        process: u64,
        seq: u64,
        node: usize,
        op: &Op,
    ) -> impl Future<Output = Outcome> + Send;
}

/// Answers every op instantly: reads return the last written value of any key, nothing is
/// checked. Only for measuring harness overhead.
#[derive(Debug, Default)]
pub struct NoopClient;

impl Client for NoopClient {
    async fn invoke(&self, _process: u64, _seq: u64, _node: usize, op: &Op) -> Outcome {
        let value = match op {
            Op::Read { .. } => Value::Null,
            other => other.invoke_value(),
        };
        Outcome::Ok {
            value,
            node: "noop".into(),
        }
    }
}

/// The kvnode HTTP client.
#[derive(Debug, Clone)]
pub struct KvClient {
    http: reqwest::Client,
    /// Node ids, index-aligned with `urls`.
    ids: Vec<String>,
    /// Base URLs, `http://127.0.0.1:PORT`.
    urls: Vec<String>,
}

/// Redirects (421 with a leader) followed within one op.
const MAX_REDIRECTS: usize = 2;

/// Key used for the single-register workload.
pub const REGISTER_KEY: &str = "r";

impl KvClient {
    /// A client for nodes `ids` at `urls`, each op bounded by `timeout`.
    pub fn new(ids: Vec<String>, urls: Vec<String>, timeout: Duration) -> anyhow::Result<KvClient> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_millis(500))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(KvClient { http, ids, urls })
    }

    async fn once(
        &self,
        node: usize,
        process: u64,
        seq: u64,
        op: &Op,
    ) -> Result<(u16, Value), Outcome> {
        let key = op.key().unwrap_or(REGISTER_KEY);
        let base = &self.urls[node];
        let cid = format!("p{process}");
        let req = match op {
            Op::Read { .. } => self.http.get(format!("{base}/kv/{key}")),
            Op::Write { value, .. } => self
                .http
                .put(format!("{base}/kv/{key}"))
                .json(&json!({"value": value, "client_id": cid, "seq": seq})),
            Op::Cas { from, to, .. } => self
                .http
                .post(format!("{base}/kv/{key}/cas"))
                .json(&json!({"from": from, "to": to, "client_id": cid, "seq": seq})),
        };
        let node_id = Some(self.ids[node].clone());
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.json::<Value>().await {
                    Ok(v) => Ok((status, v)),
                    Err(e) if status == 200 && matches!(op, Op::Read { .. }) => {
                        Err(Outcome::Fail {
                            error: format!("bad response: {e}"),
                            node: node_id,
                        })
                    }
                    Err(e) => Err(Outcome::Info {
                        error: format!("bad response ({status}): {e}"),
                        node: node_id,
                    }),
                }
            }
            // Refused before anything was sent: definitely not applied.
            Err(e) if e.is_connect() => Err(Outcome::Fail {
                error: "connection refused".into(),
                node: node_id,
            }),
            Err(e) if e.is_timeout() => Err(Outcome::Info {
                error: "timeout".into(),
                node: node_id,
            }),
            Err(e) => Err(Outcome::Info {
                error: format!("connection lost: {e}"),
                node: node_id,
            }),
        }
    }
}

impl Client for KvClient {
    async fn invoke(&self, process: u64, seq: u64, node: usize, op: &Op) -> Outcome {
        let mut node = node % self.urls.len().max(1);
        for _ in 0..=MAX_REDIRECTS {
            let (status, body) = match self.once(node, process, seq, op).await {
                Ok(r) => r,
                Err(o) => return o,
            };
            let id = self.ids[node].clone();
            let err = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match status {
                200 => {
                    let value = match op {
                        Op::Read { .. } => body.get("value").cloned().unwrap_or(Value::Null),
                        other => other.invoke_value(),
                    };
                    return Outcome::Ok { value, node: id };
                }
                409 => {
                    return Outcome::Mismatch {
                        current: body.get("current").cloned().unwrap_or(Value::Null),
                        node: id,
                    }
                }
                421 => {
                    let leader = body.get("leader").and_then(Value::as_str);
                    match leader.and_then(|l| self.ids.iter().position(|i| i == l)) {
                        Some(next) if next != node => node = next,
                        _ => {
                            return Outcome::Fail {
                                error: "not-leader".into(),
                                node: Some(id),
                            }
                        }
                    }
                }
                503 | 400 | 501 => {
                    return Outcome::Fail {
                        error: if err.is_empty() {
                            format!("http {status}")
                        } else {
                            err
                        },
                        node: Some(id),
                    }
                }
                504 => {
                    return Outcome::Info {
                        error: "timeout".into(),
                        node: Some(id),
                    }
                }
                _ => {
                    return Outcome::Info {
                        error: format!("http {status} {err}"),
                        node: Some(id),
                    }
                }
            }
        }
        Outcome::Fail {
            error: "not-leader (too many redirects)".into(),
            node: None,
        }
    }
}
