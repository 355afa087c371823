//! Regression tests for issue 10 item 6: kvnode's HTTP server must not hold idle or
//! half-sent connections forever, must stay reachable when more sockets are opened than it
//! has file descriptors, and must answer every error status with the JSON error shape.
//! Real `kvnode` processes on loopback, spoken to over raw TCP sockets; every loop has a
//! count and a deadline.

mod common;

use common::Cluster;
use futures::future::join_all;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SEC: Duration = Duration::from_secs(1);

/// Short timeouts so the tests take a second, not the defaults' tens of seconds.
const FAST_HTTP: &[&str] = &[
    "--http-header-timeout-ms",
    "400",
    "--http-body-timeout-ms",
    "400",
    "--http-idle-timeout-ms",
    "2500",
];

async fn single_node(extra: &[&str]) -> Cluster {
    let c = Cluster::start(1, extra).await;
    c.wait_leader(&[0], 10 * SEC).await;
    c
}

/// Opens `n` connections to `addr`, each having sent `prefix` (maybe nothing).
async fn open(addr: &str, n: usize, prefix: &[u8]) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        if !prefix.is_empty() {
            s.write_all(prefix).await.expect("send prefix");
        }
        out.push(s);
    }
    out
}

/// Reads until the server closes the connection; returns what arrived, or None if it was
/// still open at `deadline`.
async fn read_until_closed(s: &mut TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Waits for all `socks` to be closed by the server before `deadline`; returns what each
/// received (None: still open).
async fn closed_by(socks: &mut [TcpStream], deadline: Instant) -> Vec<Option<Vec<u8>>> {
    join_all(socks.iter_mut().map(|s| read_until_closed(s, deadline))).await
}

/// Splits a raw HTTP/1.1 response into (status, lower-cased head, body).
fn parse_response(raw: &[u8]) -> (u16, String, Vec<u8>) {
    let text = String::from_utf8_lossy(raw);
    let end = text
        .find("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head in {text:?}"));
    let head = text[..end].to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {text:?}"));
    (status, head, raw[end + 4..].to_vec())
}

/// Reads one response (complete head, then content-length body bytes, or all until the
/// server closes) before `deadline`.
async fn read_response(s: &mut TcpStream, deadline: Instant) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let (_, head, _) = parse_response(&raw);
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if raw.len() >= end + 4 + len {
                raw.truncate(end + 4 + len);
                return raw;
            }
        }
        let n = tokio::time::timeout_at(deadline.into(), s.read(&mut buf))
            .await
            .expect("response before the deadline")
            .unwrap_or(0);
        if n == 0 {
            return raw;
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// Sends one request on `s` and reads one response: (status, JSON body or null).
async fn roundtrip(s: &mut TcpStream, req: &[u8], deadline: Instant) -> (u16, Value) {
    s.write_all(req).await.expect("send request");
    let raw = read_response(s, deadline).await;
    let (status, _, body) = parse_response(&raw);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Asserts a raw response is `status` with the JSON error shape `{"error": slug, "message"}`.
fn assert_json_error(raw: &[u8], status: u16, slug: &str) {
    let (got, head, body) = parse_response(raw);
    assert_eq!(got, status, "{}", String::from_utf8_lossy(raw));
    assert!(
        head.contains("content-type: application/json"),
        "JSON content type: {head}"
    );
    let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    assert_eq!(v["error"], slug, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

const STATUS: &[u8] = b"GET /status HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_half_header_and_half_body_connections_are_closed_within_the_timeouts() {
    let c = single_node(FAST_HTTP).await;
    let addr = c.nodes[0].client_addr.clone();
    let mut idle = open(&addr, 40, b"").await;
    let mut half_head = open(&addr, 40, b"GET /status HTTP/1.1\r\nHost: t\r\nX-Slow: ").await;
    let half_body = b"PUT /kv/a HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                      Content-Length: 100\r\n\r\n{\"value\": ";
    let mut half_body_socks = open(&addr, 40, half_body).await;
    // 400 ms timeouts; the generous deadline only absorbs a loaded machine.
    let deadline = Instant::now() + 8 * SEC;
    for got in closed_by(&mut idle, deadline).await {
        assert_eq!(
            got.as_deref(),
            Some(&b""[..]),
            "idle socket closed silently"
        );
    }
    for got in closed_by(&mut half_head, deadline).await {
        assert_eq!(got.as_deref(), Some(&b""[..]), "half-header socket closed");
    }
    for got in closed_by(&mut half_body_socks, deadline).await {
        let raw = got.expect("half-body socket closed");
        assert_json_error(&raw, 408, "request-timeout");
    }
    // Nothing was written, and the node still serves.
    assert_eq!(
        c.get(0, "a").await,
        (200, serde_json::json!({"value": null}))
    );
    let log = std::fs::read_to_string(&c.nodes[0].log).unwrap();
    assert!(
        log.contains("header timeout"),
        "closing for timeouts is logged: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_outlives_the_header_timeout_and_closes_after_the_idle_timeout() {
    let c = single_node(FAST_HTTP).await;
    let addr = c.nodes[0].client_addr.clone();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let deadline = Instant::now() + 10 * SEC;
    assert_eq!(roundtrip(&mut s, STATUS, deadline).await.0, 200);
    // Idle for three header timeouts: a kept-alive connection is not a slow header.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(roundtrip(&mut s, STATUS, deadline).await.0, 200);
    let idle_since = Instant::now();
    let got = read_until_closed(&mut s, deadline).await;
    assert_eq!(got.as_deref(), Some(&b""[..]), "idle keep-alive closed");
    assert!(
        idle_since.elapsed() >= Duration::from_millis(2000),
        "closed after {:?}, before the 2.5 s idle timeout",
        idle_since.elapsed()
    );
    // A pooled keep-alive client like the harness's keeps working across idle gaps.
    let http = reqwest::Client::builder()
        .timeout(2 * SEC)
        .pool_max_idle_per_host(8)
        .build()
        .unwrap();
    let url = format!("http://{addr}/status");
    for round in 0..3 {
        for _ in 0..8 {
            let r = http.get(&url).send().await.expect("keep-alive client");
            assert_eq!(r.status(), 200, "round {round}");
        }
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_the_longest_waiting_connection_makes_room() {
    // Default (10 s) timeouts: only the cap can close these sockets within the deadline.
    let c = single_node(&["--max-connections", "8"]).await;
    let addr = c.nodes[0].client_addr.clone();
    let mut socks = open(&addr, 30, b"").await;
    let started = Instant::now();
    let (code, body) = c.get(0, "k").await;
    assert_eq!(code, 200, "the API answers at the cap: {body}");
    assert!(started.elapsed() < 5 * SEC, "{:?}", started.elapsed());
    let closed = closed_by(&mut socks, Instant::now() + 3 * SEC)
        .await
        .into_iter()
        .filter(Option::is_some)
        .count();
    assert!(closed >= 22, "only {closed} of 30 idle sockets made room");
    let log = std::fs::read_to_string(&c.nodes[0].log).unwrap();
    assert!(log.contains("connection cap"), "the cap is logged: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_128_fd_limit_200_idle_sockets_do_not_make_the_api_unreachable() {
    let mut c = Cluster::start(1, &[]).await;
    c.wait_up(0, 10 * SEC).await;
    c.kill(0);
    c.spawn_with(0, |cmd| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 128,
                    rlim_max: 128,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    c.wait_up(0, 10 * SEC).await;
    let log = std::fs::read_to_string(&c.nodes[0].log).unwrap();
    assert!(
        log.contains("max_connections=64"),
        "the default cap is half the 128-fd limit: {log}"
    );
    let addr = c.nodes[0].client_addr.clone();
    let _idle = open(&addr, 200, b"").await;
    let deadline = Instant::now() + 5 * SEC;
    let http = reqwest::Client::builder().timeout(SEC).build().unwrap();
    let url = format!("http://{addr}/status");
    loop {
        if let Ok(r) = http.get(&url).send().await {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "API unreachable with 200 idle sockets open"
        );
    }
    c.wait_leader(&[0], 10 * SEC).await;
    assert_eq!(c.put(0, "fd", serde_json::json!(1)).await.0, 200);
    assert_eq!(c.get(0, "fd").await.1["value"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_answers_with_the_json_error_shape() {
    let c = single_node(&[]).await;
    let addr = c.nodes[0].client_addr.clone();
    let deadline = Instant::now() + 10 * SEC;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            404,
            "not-found",
        ),
        (
            b"DELETE /kv/a HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            405,
            "method-not-allowed",
        ),
        (
            b"GET /kv/%FF HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            400,
            "bad-request",
        ),
        (
            b"PUT /kv/%C3%28 HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n{\"value\":1}"
                .to_vec(),
            400,
            "bad-request",
        ),
        (
            format!(
                "GET /status HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
                "b".repeat(64 * 1024)
            )
            .into_bytes(),
            431,
            "header-too-large",
        ),
        (
            format!(
                "GET /status HTTP/1.1\r\nHost: t\r\n{}\r\n",
                (0..150)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            )
            .into_bytes(),
            431,
            "header-too-large",
        ),
        (
            b"GET /status HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n".to_vec(),
            400,
            "bad-request",
        ),
    ];
    for (req, status, slug) in cases {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        // The server may answer and stop reading before an oversized head is all sent.
        let _ = s.write_all(&req).await;
        let raw = read_response(&mut s, deadline).await;
        assert_json_error(&raw, status, slug);
    }
    assert_eq!(c.put(0, "x", serde_json::json!(1)).await.0, 200);
}
