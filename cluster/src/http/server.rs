//! The HTTP connection layer under the API router: the accept loop, the connection cap,
//! per-connection timeouts, and JSON bodies for the error answers hyper writes by itself.
//! Routing, handlers and the status-code contract stay in the parent module.
//!
//! `axum::serve` keeps a connection for as long as the client does, so sockets that send
//! nothing, half a head or half a body pile up until the process runs out of file
//! descriptors and the API is unreachable. Here every connection is always in one of three
//! phases, each with its own clock (the split Go's `net/http` uses too):
//!
//! - **head**: from accept, or from the first byte after an idle gap, until the request
//!   head is complete. Past [`HttpLimits::header_timeout`] the connection is dropped
//!   (there is no request to answer).
//! - **busy**: a request is being served. Reading its body is bounded by
//!   [`HttpLimits::body_timeout`] in the handler (answer 408), the rest by the request
//!   deadline (504). No clock of its own: both end the request.
//! - **idle**: after an answer, until the next request's first byte on a kept-alive
//!   connection. Past [`HttpLimits::idle_timeout`] the connection is dropped. The default
//!   exceeds reqwest's 90 s pool idle timeout, so pooled clients close first and never
//!   send a request into a connection the server is closing.
//!
//! The service wrapper marks busy and idle around each request, the I/O wrapper marks the
//! first byte read while idle, and the connection task checks the current phase's
//! deadline after every poll of hyper's connection (see [`Connection::run`]).
//!
//! The cap is a semaphore, like mini-redis's `MAX_CONNECTIONS`. At the cap a new
//! connection makes room by closing the one that has waited longest without a request in
//! progress (head or idle phase): without that, a few hundred silent sockets would keep
//! the API unreachable until their header timeouts expire. A busy connection is never
//! closed; if all are busy, the new one waits for a permit.
//!
//! hyper answers an unparsable request itself (400, 414, 431) with an empty body. The I/O
//! wrapper recognises such an answer (an error status with `content-length: 0`, which no
//! handler here sends), writes the JSON error shape instead, and after shutting down its
//! side reads and discards what the client still sends (bounded), so that closing with
//! unread input does not turn into a TCP reset that destroys the answer.

use super::error_json;
use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Largest request head (request line and headers) hyper buffers; beyond it: 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields in a request; beyond it: 431 (hyper's default).
pub const MAX_HEADERS: usize = 100;
/// Most bytes read and discarded after an automatic error answer before closing.
const LINGER_MAX: usize = 256 * 1024;
/// At most one log line per kind of event in this interval (a flood must not flood the log).
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Limits of the HTTP server (`--http-header-timeout-ms`, `--http-body-timeout-ms`,
/// `--http-idle-timeout-ms`, `--max-connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time for a complete request head, from accept or from the first byte after idle.
    pub header_timeout: Duration,
    /// Time for a request body, once its head has arrived (enforced by the handlers).
    pub body_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl HttpLimits {
    /// Default `--http-header-timeout-ms`.
    pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
    /// Default `--http-body-timeout-ms`.
    pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
    /// Default `--http-idle-timeout-ms` (above reqwest's 90 s pool idle timeout).
    pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 120_000;
    /// Largest `--max-connections`.
    pub const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

    /// Default `--max-connections` for a soft open-file limit: half of it (the rest is for
    /// peer links, the log and the runtime), at least 16 and at most 1024.
    pub fn default_max_connections(open_file_limit: Option<u64>) -> usize {
        open_file_limit.map_or(1024, |l| (l / 2).clamp(16, 1024) as usize)
    }
}

/// This process's soft limit on open files (None: unlimited or unknown).
pub fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    (ok && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data is a few plain fields, valid even if a holder panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a connection is in its request cycle (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
}

/// One connection's phase, shared by its I/O wrapper, service wrapper, watchdog and the
/// accept loop (which picks whom to close at the cap).
struct Conn {
    /// Phase and when it began.
    clock: Mutex<(Phase, Instant)>,
    /// Cancelled to close the connection to make room at the cap.
    evict: CancellationToken,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            clock: Mutex::new((Phase::Head, Instant::now())),
            evict: CancellationToken::new(),
        }
    }

    fn phase(&self) -> (Phase, Instant) {
        *lock(&self.clock)
    }

    fn enter(&self, phase: Phase) {
        *lock(&self.clock) = (phase, Instant::now());
    }

    /// Bytes arrived: on an idle connection that starts the next request's head clock.
    fn bytes_read(&self) {
        let mut clock = lock(&self.clock);
        if clock.0 == Phase::Idle {
            *clock = (Phase::Head, Instant::now());
        }
    }

    /// When the current phase runs out, and which phase that is (None: busy, no clock).
    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, Phase)> {
        let (phase, since) = self.phase();
        match phase {
            Phase::Head => Some((since + limits.header_timeout, phase)),
            Phase::Idle => Some((since + limits.idle_timeout, phase)),
            Phase::Busy => None,
        }
    }
}

/// All open connections, for choosing whom to close at the cap.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

/// Removes its connection from the registry when the connection task ends.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.registry.conns).remove(&self.id);
    }
}

impl Registry {
    fn add(self: &Arc<Self>, conn: Arc<Conn>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.conns).insert(id, conn);
        Registered {
            registry: self.clone(),
            id,
        }
    }

    /// Closes the connection that has waited longest without a request in progress;
    /// false if every connection is serving a request.
    fn evict_longest_waiting(&self) -> bool {
        let conns = lock(&self.conns);
        let victim = conns
            .values()
            .filter(|c| !c.evict.is_cancelled())
            .filter_map(|c| match c.phase() {
                (Phase::Busy, _) => None,
                (_, since) => Some((since, c)),
            })
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, c)) => {
                c.evict.cancel();
                true
            }
            None => false,
        }
    }
}

/// Counts one kind of event and says when a (rate-limited) log line is due.
#[derive(Default)]
struct Throttle {
    last: Mutex<Option<Instant>>,
    count: AtomicU64,
}

impl Throttle {
    /// Counts one event; returns the number of events to report if a line is due now.
    fn due(&self) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut last = lock(&self.last);
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return None;
        }
        *last = Some(now);
        Some(self.count.swap(0, Ordering::Relaxed))
    }
}

/// The rate-limited log lines of the server.
#[derive(Default)]
struct Logs {
    header_timeout: Throttle,
    idle_timeout: Throttle,
    cap: Throttle,
    accept_error: Throttle,
}

impl Logs {
    fn timed_out(&self, phase: Phase, limits: &HttpLimits) {
        match phase {
            Phase::Head => {
                if let Some(n) = self.header_timeout.due() {
                    tracing::warn!(
                        closed = n,
                        "closed {n} HTTP connection(s) that sent no complete request head \
                         within the header timeout ({} ms, --http-header-timeout-ms)",
                        limits.header_timeout.as_millis()
                    );
                }
            }
            Phase::Idle => {
                if let Some(n) = self.idle_timeout.due() {
                    tracing::info!(
                        closed = n,
                        "closed {n} kept-alive HTTP connection(s) idle for the idle timeout \
                         ({} ms, --http-idle-timeout-ms)",
                        limits.idle_timeout.as_millis()
                    );
                }
            }
            Phase::Busy => {}
        }
    }

    fn cap_reached(&self, max: usize, made_room: bool) {
        let Some(n) = self.cap.due() else { return };
        if made_room {
            tracing::warn!(
                max_connections = max,
                times = n,
                "HTTP connection cap reached ({max} open, --max-connections): closing the \
                 connection that waited longest without a request to make room ({n} time(s) \
                 since the last report)"
            );
        } else {
            tracing::warn!(
                max_connections = max,
                times = n,
                "HTTP connection cap reached ({max} open, --max-connections) and every \
                 connection is serving a request: new connections wait for one to finish"
            );
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown`, then lets open
/// connections finish their requests (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let max = limits
        .max_connections
        .clamp(1, HttpLimits::MAX_CONNECTIONS_LIMIT);
    let permits = Arc::new(Semaphore::new(max));
    let registry = Arc::new(Registry::default());
    let logs = Arc::new(Logs::default());
    let mut http = http1::Builder::new();
    http.max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        // One flat buffer per write, so an automatic error answer is recognisable.
        .writev(false)
        // The watchdog below owns all timeouts.
        .header_read_timeout(None);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // The client gave up before we accepted: nothing to wait for.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue
            }
            Err(e) => {
                if let Some(n) = logs.accept_error.due() {
                    tracing::warn!(
                        error = %e,
                        failures = n,
                        "cannot accept HTTP connections ({n} failure(s) since the last \
                         report): {e}; retrying every 100 ms (out of file descriptors? lower \
                         --max-connections or raise the open-file limit)"
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                logs.cap_reached(max, registry.evict_longest_waiting());
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let conn = Arc::new(Conn::new());
        let task = Connection {
            _registered: registry.add(conn.clone()),
            conn,
            _permit: permit,
            limits,
            logs: logs.clone(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(task.run(stream, http.clone(), router.clone()));
    }
    // Every task holds a permit until it ends: having them all back means all are done.
    let _ = permits.acquire_many(max as u32).await;
}

/// What one connection task owns besides the socket.
struct Connection {
    conn: Arc<Conn>,
    /// Keeps the connection visible to the accept loop while the task runs.
    _registered: Registered,
    /// One of the `--max-connections` permits, returned when the task ends.
    _permit: OwnedSemaphorePermit,
    limits: HttpLimits,
    logs: Arc<Logs>,
    shutdown: CancellationToken,
}

/// How a connection task ends.
enum End {
    /// hyper finished (client closed, graceful shutdown, or a protocol error).
    Served(Result<(), hyper::Error>),
    /// The phase's clock ran out.
    TimedOut(Phase),
    /// Closed to make room at the cap.
    Evicted,
}

impl Connection {
    /// Serves one connection and enforces its phase deadlines.
    ///
    /// The phase changes only while hyper's connection future is polled (the service
    /// wrapper and the I/O wrapper run inside that poll), so checking the deadline right
    /// after each poll sees every change without any wake-up of its own. The timer is
    /// re-armed lazily: only when the deadline moves earlier than the armed instant; when
    /// it moves later the timer fires early, the check finds time left and re-arms. A
    /// connection serving one request after another thus touches the timer about once
    /// per header timeout, not on every request.
    async fn run(self, stream: TcpStream, http: http1::Builder, router: Router) {
        let conn = &self.conn;
        let io = TokioIo::new(Watched {
            inner: stream,
            conn: conn.clone(),
            rewrite: None,
            shut: false,
            drained: 0,
        });
        let service = Tracked {
            inner: TowerToHyperService::new(router),
            conn: conn.clone(),
        };
        let served = http.serve_connection(io, service);
        tokio::pin!(served);
        let timer = tokio::time::sleep_until(Instant::now().into());
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        let evicted = conn.evict.cancelled();
        tokio::pin!(evicted);
        let stop = self.shutdown.cancelled();
        tokio::pin!(stop);
        let mut stopping = false;
        let end = std::future::poll_fn(|cx| {
            if !stopping && stop.as_mut().poll(cx).is_ready() {
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
            if let Poll::Ready(r) = served.as_mut().poll(cx) {
                return Poll::Ready(End::Served(r));
            }
            if evicted.as_mut().poll(cx).is_ready() {
                return Poll::Ready(End::Evicted);
            }
            // Busy has no clock: the loop ends, and a timer still armed fires early and is
            // re-checked like any other.
            while let Some((due, phase)) = conn.deadline(&self.limits) {
                if due <= Instant::now() {
                    return Poll::Ready(End::TimedOut(phase));
                }
                if !matches!(armed, Some(a) if a <= due) {
                    timer.as_mut().reset(due.into());
                    armed = Some(due);
                }
                if timer.as_mut().poll(cx).is_pending() {
                    break;
                }
                // Fired before the (later) deadline: re-arm for the current one.
                armed = None;
            }
            Poll::Pending
        })
        .await;
        match end {
            End::Served(Err(e)) => {
                tracing::debug!(error = %e, "HTTP connection ended with an error")
            }
            End::TimedOut(phase) => self.logs.timed_out(phase, &self.limits),
            End::Served(Ok(())) | End::Evicted => {}
        }
    }
}

/// The router as a hyper service that marks the connection busy while a request is served.
struct Tracked {
    inner: TowerToHyperService<Router>,
    conn: Arc<Conn>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.conn.enter(Phase::Busy);
        let answer = self.inner.call(req);
        let conn = self.conn.clone();
        Box::pin(async move {
            let r = answer.await;
            conn.enter(Phase::Idle);
            r
        })
    }
}

/// The socket as hyper sees it: reports bytes read to the phase clock, and replaces
/// hyper's empty-bodied automatic error answers with the JSON error shape.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
    /// The JSON answer written instead of hyper's, and how much of it is written.
    rewrite: Option<(Vec<u8>, usize)>,
    /// Whether our write side is shut down.
    shut: bool,
    /// Bytes discarded after the rewritten answer (bounded by [`LINGER_MAX`]).
    drained: usize,
}

impl Watched {
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some((bytes, written)) = &mut self.rewrite {
            while *written < bytes.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads and discards input until EOF, an error or [`LINGER_MAX`] bytes.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0u8; 4096];
        while self.drained < LINGER_MAX {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    self.drained += buf.filled().len();
                }
                Poll::Ready(_) => break,
            }
        }
        Poll::Ready(())
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.conn.bytes_read();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_none() {
            match json_for_automatic_error(buf) {
                Some(answer) => this.rewrite = Some((answer, 0)),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // hyper's bytes are replaced; it writes nothing else on a connection it answered
        // that way (it closes it).
        ready!(this.poll_rewrite(cx))?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_rewrite(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_rewrite(cx))?;
        if !this.shut {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.shut = true;
        }
        if this.rewrite.is_some() {
            ready!(this.poll_linger(cx));
        }
        Poll::Ready(Ok(()))
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// If `buf` starts an answer hyper wrote by itself (an error status with an empty body),
/// the complete JSON answer to send instead.
fn json_for_automatic_error(buf: &[u8]) -> Option<Vec<u8>> {
    let rest = buf
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    let code: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    let status = StatusCode::from_u16(code).ok()?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let needle = b"\r\ncontent-length: 0\r\n";
    if !buf[..head_end + 2]
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
    {
        return None;
    }
    let message = match code {
        400 => "malformed HTTP request: the request line or a header could not be parsed".into(),
        414 => "request URI too long".into(),
        431 => format!(
            "request head larger than {MAX_HEAD_BYTES} bytes or with more than {MAX_HEADERS} \
             header fields"
        ),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let body = error_json(status, &message);
    let reason = status.canonical_reason().unwrap_or("Error");
    Some(
        format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_empty_bodied_error_answers() {
        let auto = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
                     date: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(json_for_automatic_error(auto).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "header-too-large");
        for not_auto in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 52\r\n\r\n{\"error\":",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 01\r\n\r\nx",
            b"{\"error\":\"x\"}",
            b"HTTP/1.1 4",
        ] {
            assert!(json_for_automatic_error(not_auto).is_none());
        }
    }

    #[test]
    fn default_cap_follows_the_open_file_limit() {
        assert_eq!(HttpLimits::default_max_connections(Some(128)), 64);
        assert_eq!(HttpLimits::default_max_connections(Some(10)), 16);
        assert_eq!(HttpLimits::default_max_connections(Some(1 << 20)), 1024);
        assert_eq!(HttpLimits::default_max_connections(None), 1024);
    }
}
