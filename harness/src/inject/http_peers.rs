//! Partitions and packet faults in the local environment for systems whose members must all
//! dial one and the same address for a given peer — etcd: it derives member and cluster IDs
//! from the peer URLs in `--initial-cluster`, so member `i` cannot be told "reach `j` at the
//! proxy `i -> j`" (the per-link proxies of [`super::proxies`]) without every member
//! computing a different cluster.
//!
//! So every node gets one proxy, its advertised peer address, shared by all senders, and the
//! proxy learns who sends from the peer protocol itself: etcd's rafthttp puts the sender's own
//! advertised peer URLs in an `X-PeerURLs` header of every raft request (pipeline `POST
//! /raft`, snapshots, stream `GET /raft/stream/...`), and those URLs are our proxies'
//! addresses, so they name the sending node. The proxy splits each connection's client side
//! into HTTP/1.1 requests (Content-Length and chunked bodies) and reads every request head,
//! because Go reuses an idle keep-alive connection for whatever request comes next: a
//! connection first used by an anonymous health probe may carry a raft stream later.
//!
//! Which way messages flow decides which link a connection belongs to. A pipeline `POST`
//! from `s` to `d` carries `s`'s messages to `d`; a stream `GET` from `s` to `d` carries
//! nothing but its request, and `d` then writes its messages to `s` down the response for as
//! long as the stream lives. A grudge "`d` drops traffic from `s`" therefore cuts the
//! connections carrying messages `s -> d`, wherever they were dialed: as with the per-link
//! proxies, one-way grudges stay one-way at the message level. A cut connection behaves like
//! a dropping firewall (see [`super::proxy`]): nothing more is forwarded either way, the
//! sockets stay open, and it is closed on heal.
//!
//! What no request names: a connection whose requests never carry the header (etcd's
//! `/version` polls and `/raft/probing` health probes on connections not otherwise used for
//! raft) is forwarded whatever the partition, because its sender is unknown. None of these
//! carries a raft message, so none can decide what commits or who leads; packet faults still
//! apply to them when they touch a faulted destination.

use super::proxy::{accept_each, dial, pump, until_healed, LinkState};
use super::NetFaults;
use anyhow::{Context, Result};
use nemesis::Grudge;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a peer protocol over HTTP/1.1 names a request's sender and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerProtocol {
    /// The request header (any case) in which the sender lists its own advertised peer
    /// URLs, comma-separated.
    pub sender_header: &'static str,
    /// Path prefixes of requests whose response streams the receiver's messages to the
    /// sender (the reverse of a `POST`).
    pub reverse_paths: &'static [&'static str],
}

/// A request head is never longer than this; a longer one makes the connection opaque.
const MAX_HEAD: usize = 64 * 1024;
/// How long a new connection may take to send its first request head.
const FIRST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The faults in force, shared by every connection of every proxy.
#[derive(Debug, Clone, Default, PartialEq)]
struct Faults {
    /// Directed links (from, to) whose messages are dropped.
    cut: BTreeSet<(usize, usize)>,
    /// Nodes whose traffic is delayed / lossy.
    packet_nodes: Vec<usize>,
    delay_ms: u64,
    loss_permille: u32,
}

/// What the proxies share.
struct Shared {
    /// Every node's advertised peer address (its proxy), index-aligned with the node ids.
    advertised: Vec<SocketAddr>,
    protocol: PeerProtocol,
    faults: watch::Sender<Faults>,
}

impl Shared {
    /// The node whose advertised URL a header value lists.
    fn sender(&self, value: &str) -> Option<usize> {
        value.split(',').find_map(|url| {
            let rest = url.trim();
            let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
            let hostport = rest.split('/').next()?;
            let addr: SocketAddr = hostport.parse().ok()?;
            self.advertised.iter().position(|a| *a == addr)
        })
    }
}

/// One node's shared proxy per destination; see the module documentation.
pub struct HttpPeerNet {
    ids: Vec<String>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl HttpPeerNet {
    /// Starts one proxy per node, forwarding to `targets[j]` (the node's real peer port).
    pub async fn start(
        ids: Vec<String>,
        targets: &[SocketAddr],
        protocol: PeerProtocol,
    ) -> Result<HttpPeerNet> {
        let mut listeners = Vec::new();
        for _ in targets {
            let l = TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot start a peer proxy")?;
            listeners.push(l);
        }
        let advertised = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<std::io::Result<Vec<_>>>()?;
        let (faults, _) = watch::channel(Faults::default());
        let shared = Arc::new(Shared {
            advertised,
            protocol,
            faults,
        });
        let tasks = listeners
            .into_iter()
            .zip(targets)
            .enumerate()
            .map(|(dest, (l, &target))| {
                let shared = shared.clone();
                tokio::spawn(accept_each(l, move |inbound| {
                    serve(inbound, target, dest, shared.clone())
                }))
            })
            .collect();
        Ok(HttpPeerNet { ids, shared, tasks })
    }

    /// The address every node dials (and node `to` advertises) for node `to`.
    pub fn addr(&self, to: usize) -> Option<SocketAddr> {
        self.shared.advertised.get(to).copied()
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|n| n == id)
    }
}

impl Drop for HttpPeerNet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl NetFaults for HttpPeerNet {
    fn partition(&self, grudge: &Grudge) -> Result<()> {
        let cut: BTreeSet<(usize, usize)> = nemesis::partition::cut_links(grudge)
            .into_iter()
            .filter_map(|(src, dst)| Some((self.index(&src)?, self.index(&dst)?)))
            .collect();
        self.shared.faults.send_modify(|f| f.cut = cut);
        Ok(())
    }

    fn heal(&self) -> Result<()> {
        self.shared.faults.send_modify(|f| f.cut.clear());
        Ok(())
    }

    fn packet(&self, nodes: &[usize], delay_ms: u64, loss: f64) -> Result<()> {
        let permille = (loss.clamp(0.0, 1.0) * 1000.0).round() as u32;
        self.shared.faults.send_modify(|f| {
            f.packet_nodes = nodes.to_vec();
            f.delay_ms = delay_ms;
            f.loss_permille = permille;
        });
        Ok(())
    }

    fn clear_packet(&self) -> Result<()> {
        self.shared.faults.send_modify(|f| {
            f.packet_nodes.clear();
            f.delay_ms = 0;
            f.loss_permille = 0;
        });
        Ok(())
    }

    fn describe(&self) -> String {
        "userspace peer proxies, one per node, senders learned from the HTTP peer protocol \
         (partitions, delay, TCP-style stalls for loss)"
            .into()
    }
}

/// What a connection's requests said so far.
#[derive(Debug, Default, Clone, Copy)]
struct Who {
    /// The sending node, once a request named it (it never changes: one process dialed).
    sender: Option<usize>,
    /// The directed link whose messages the current request carries.
    link: Option<(usize, usize)>,
}

/// One proxied connection: who sent it, which link it belongs to now, and the link state
/// its pumps obey.
struct Conn {
    dest: usize,
    shared: Arc<Shared>,
    who: Mutex<Who>,
    state: watch::Sender<LinkState>,
}

impl Conn {
    /// Learns from one request head; the new state takes effect before its bytes move on.
    fn classify(&self, head: &RequestHead) {
        let proto = self.shared.protocol;
        {
            let mut who = self.who.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = head
                .header(proto.sender_header)
                .and_then(|v| self.shared.sender(v))
            {
                who.sender = Some(s);
            }
            if let Some(s) = who.sender {
                let reverse = proto.reverse_paths.iter().any(|p| head.path.starts_with(p));
                who.link = Some(if reverse {
                    (self.dest, s)
                } else {
                    (s, self.dest)
                });
            }
        }
        self.refresh();
    }

    /// Recomputes the link state from the faults in force.
    fn refresh(&self) {
        let link = self.who.lock().unwrap_or_else(|p| p.into_inner()).link;
        let s = link_state(&self.shared.faults.borrow(), self.dest, link);
        self.state.send_if_modified(|cur| {
            let changed = *cur != s;
            *cur = s;
            changed
        });
    }
}

fn link_state(f: &Faults, dest: usize, link: Option<(usize, usize)>) -> LinkState {
    let touches = |n: usize| match link {
        Some((a, b)) => a == n || b == n,
        None => dest == n,
    };
    let hit = f.packet_nodes.iter().any(|&n| touches(n));
    LinkState {
        cut: link.is_some_and(|l| f.cut.contains(&l)),
        delay_ms: if hit { f.delay_ms } else { 0 },
        loss_permille: if hit { f.loss_permille } else { 0 },
    }
}

async fn serve(mut inbound: TcpStream, target: SocketAddr, dest: usize, shared: Arc<Shared>) {
    let (state, rx) = watch::channel(LinkState::default());
    let conn = Arc::new(Conn {
        dest,
        shared: shared.clone(),
        who: Mutex::default(),
        state,
    });
    let mut scanner = RequestScanner::default();
    // The first request names its sender before anything is forwarded, so a connection
    // opened across a cut link is never connected upstream.
    let mut first = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + FIRST_HEAD_TIMEOUT;
    while scanner.heads == 0 && !scanner.is_opaque() {
        let n = match tokio::time::timeout_at(deadline, inbound.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        first.extend_from_slice(&buf[..n]);
        scanner.feed(&buf[..n], |h| conn.classify(h));
    }
    let mut faults = shared.faults.subscribe();
    let mut rx2 = rx.clone();
    if rx2.borrow_and_update().cut {
        // No answer while cut; the connection is closed on heal.
        tokio::select! {
            _ = until_healed(&mut rx2) => {}
            _ = follow(&conn, &mut faults) => {}
        }
        return;
    }
    let Some(upstream) = dial(target).await else {
        return;
    };
    let (ar, aw) = inbound.into_split();
    let (br, mut bw) = upstream.into_split();
    if bw.write_all(&first).await.is_err() {
        return;
    }
    let tap = Tap {
        inner: ar,
        scanner,
        conn: conn.clone(),
    };
    tokio::select! {
        _ = pump(tap, bw, rx.clone()) => {}
        _ = pump(br, aw, rx) => {}
        _ = follow(&conn, &mut faults) => {}
    }
}

/// Keeps the connection's link state current as faults change; returns when the net is gone.
async fn follow(conn: &Conn, faults: &mut watch::Receiver<Faults>) {
    while faults.changed().await.is_ok() {
        conn.refresh();
    }
}

/// The client side of a connection, read through the request scanner.
struct Tap<R> {
    inner: R,
    scanner: RequestScanner,
    conn: Arc<Conn>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Tap<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut me.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let (scanner, conn) = (&mut me.scanner, &me.conn);
            scanner.feed(&buf.filled()[before..], |h| conn.classify(h));
        }
        r
    }
}

/// The parts of an HTTP request head the proxy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first header named `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn parse(bytes: &[u8]) -> Option<RequestHead> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_string();
        let path = first.next()?.to_string();
        if !first.next()?.starts_with("HTTP/1.") {
            return None;
        }
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(RequestHead {
            method,
            path,
            headers,
        })
    }

    /// How the body that follows is framed.
    fn body(&self) -> Option<Framing> {
        let chunked = self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return Some(Framing::Chunked);
        }
        match self.header("content-length") {
            Some(v) => v.trim().parse().ok().map(Framing::Length),
            None => Some(Framing::Length(0)),
        }
    }
}

enum Framing {
    Length(u64),
    Chunked,
}

/// Where the scanner is in the client's byte stream.
#[derive(Debug, Default)]
enum Scan {
    /// Collecting a request head.
    #[default]
    Head,
    /// Inside a body with this many bytes left.
    Body(u64),
    /// Collecting a chunk-size line.
    ChunkSize,
    /// Inside a chunk with this many bytes left, then its CRLF.
    ChunkData(u64),
    /// Collecting trailer lines after the last chunk, until an empty one.
    Trailers,
    /// Something that is not HTTP/1.1 as we know it: stop looking.
    Opaque,
}

/// Splits a client's byte stream into HTTP/1.1 requests, reporting each head; bounded
/// memory (a head or line longer than [`MAX_HEAD`] makes the stream opaque).
#[derive(Debug, Default)]
pub struct RequestScanner {
    scan: Scan,
    /// The partial head or line being collected.
    line: Vec<u8>,
    /// Heads seen so far.
    pub heads: u64,
}

impl RequestScanner {
    /// True once the stream stopped parsing as HTTP/1.1.
    pub fn is_opaque(&self) -> bool {
        matches!(self.scan, Scan::Opaque)
    }

    /// Consumes `data`, calling `on_head` for every complete request head in it.
    pub fn feed(&mut self, mut data: &[u8], mut on_head: impl FnMut(&RequestHead)) {
        while !data.is_empty() {
            match self.scan {
                Scan::Opaque => return,
                Scan::Body(left) | Scan::ChunkData(left) if left > 0 => {
                    let take = (left as usize).min(data.len());
                    data = &data[take..];
                    let left = left - take as u64;
                    self.scan = match self.scan {
                        Scan::Body(_) => Scan::Body(left),
                        _ => Scan::ChunkData(left),
                    };
                }
                Scan::Body(_) => self.scan = Scan::Head,
                Scan::ChunkData(_) => {
                    // The CRLF after a chunk's data: an empty "line".
                    match self.take_line(&mut data) {
                        Some(l) if l.is_empty() => self.scan = Scan::ChunkSize,
                        Some(_) => self.scan = Scan::Opaque,
                        None => {}
                    }
                }
                Scan::Head => {
                    let Some(end) = self.take_until(&mut data, b"\r\n\r\n") else {
                        continue;
                    };
                    let head = std::mem::take(&mut self.line);
                    match RequestHead::parse(&head[..end]) {
                        Some(h) => {
                            self.heads += 1;
                            on_head(&h);
                            self.scan = match h.body() {
                                Some(Framing::Chunked) => Scan::ChunkSize,
                                Some(Framing::Length(n)) => Scan::Body(n),
                                None => Scan::Opaque,
                            };
                        }
                        None => self.scan = Scan::Opaque,
                    }
                }
                Scan::ChunkSize => {
                    let Some(l) = self.take_line(&mut data) else {
                        continue;
                    };
                    let hex = l.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
                    self.scan = match size {
                        Some(0) => Scan::Trailers,
                        Some(n) => Scan::ChunkData(n),
                        None => Scan::Opaque,
                    };
                }
                Scan::Trailers => {
                    if let Some(l) = self.take_line(&mut data) {
                        if l.is_empty() {
                            self.scan = Scan::Head;
                        }
                    }
                }
            }
        }
    }

    /// Moves bytes into `self.line` until `delim` ends it; returns the length before the
    /// delimiter (the delimiter stays in `line`), or `None` when more data is needed.
    fn take_until(&mut self, data: &mut &[u8], delim: &[u8]) -> Option<usize> {
        let old = self.line.len();
        // Only the tail of what was collected before can start a delimiter split across reads.
        let from = old.saturating_sub(delim.len() - 1);
        let room = (MAX_HEAD + delim.len()).saturating_sub(old).max(1);
        let cut = data.len().min(room);
        self.line.extend_from_slice(&data[..cut]);
        if let Some(p) = self.line[from..]
            .windows(delim.len())
            .position(|w| w == delim)
        {
            let end = from + p;
            // The delimiter ends past `old`, so this many bytes of `data` were used.
            *data = &data[end + delim.len() - old..];
            self.line.truncate(end + delim.len());
            return Some(end);
        }
        *data = &data[cut..];
        if self.line.len() > MAX_HEAD {
            self.scan = Scan::Opaque;
            self.line = Vec::new();
        }
        None
    }

    /// A CRLF-terminated line (without the CRLF), or `None` when more data is needed.
    fn take_line(&mut self, data: &mut &[u8]) -> Option<Vec<u8>> {
        let end = self.take_until(data, b"\r\n")?;
        let mut l = std::mem::take(&mut self.line);
        l.truncate(end);
        Some(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETCD: PeerProtocol = PeerProtocol {
        sender_header: "X-PeerURLs",
        reverse_paths: &["/raft/stream/"],
    };

    fn heads(chunks: &[&[u8]]) -> (Vec<(String, String)>, bool) {
        let mut s = RequestScanner::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |h| out.push((h.method.clone(), h.path.clone())));
        }
        (out, s.is_opaque())
    }

    #[test]
    fn scanner_frames_length_and_chunked_bodies_across_any_split() {
        let stream: Vec<u8> = [
            &b"GET /raft/probing HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"POST /raft HTTP/1.1\r\nContent-Length: 10\r\nX-Peerurls: http://a\r\n\r\n",
            b"GET /x\r\n\r\n", // a 10-byte body that looks like a head
            b"POST /raft/snapshot HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5;ext=1\r\nPOST \r\n3\r\n/a \r\n0\r\nTrailer: y\r\n\r\n",
            b"GET /raft/stream/message/1 HTTP/1.1\r\n\r\n",
        ]
        .concat();
        let want = vec![
            ("GET".to_string(), "/raft/probing".to_string()),
            ("POST".into(), "/raft".into()),
            ("POST".into(), "/raft/snapshot".into()),
            ("GET".into(), "/raft/stream/message/1".into()),
        ];
        for split in 1..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(heads(&[a, b]), (want.clone(), false), "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(heads(&bytes), (want, false), "byte by byte");
    }

    #[test]
    fn scanner_gives_up_on_what_is_not_http_and_stays_bounded() {
        let (h, opaque) = heads(&[b"\x16\x03\x01 binary\r\n\r\n"]);
        assert!(h.is_empty() && opaque);
        let long = vec![b'a'; MAX_HEAD * 3];
        let mut s = RequestScanner::default();
        s.feed(&long, |_| panic!("no head"));
        assert!(s.is_opaque());
        assert!(s.line.capacity() <= MAX_HEAD * 2);
    }

    fn shared(n: usize) -> Arc<Shared> {
        let (faults, _) = watch::channel(Faults::default());
        Arc::new(Shared {
            advertised: (0..n)
                .map(|k| SocketAddr::from(([127, 0, 0, 1], 9000 + k as u16)))
                .collect(),
            protocol: ETCD,
            faults,
        })
    }

    fn head(path: &str, from: Option<&str>) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: path.into(),
            headers: from
                .map(|f| vec![("X-Peerurls".to_string(), f.to_string())])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn a_connection_belongs_to_the_link_its_messages_use() {
        let sh = shared(3);
        let conn = Conn {
            dest: 0,
            shared: sh.clone(),
            who: Mutex::default(),
            state: watch::channel(LinkState::default()).0,
        };
        // n3 -> n1 is cut (n1 drops n3's traffic), nothing else.
        sh.faults.send_modify(|f| {
            f.cut.insert((2, 0));
        });
        conn.classify(&head("/raft/probing", None));
        assert!(!conn.state.borrow().cut, "an anonymous probe is not cut");
        conn.classify(&head("/raft", Some("http://127.0.0.1:9002")));
        assert!(conn.state.borrow().cut, "n3's pipeline to n1 is cut");
        conn.classify(&head("/raft/probing", None));
        assert!(
            conn.state.borrow().cut,
            "the connection stays n3's: the sender of a connection never changes"
        );
        conn.classify(&head("/raft/stream/message/3", None));
        assert!(
            !conn.state.borrow().cut,
            "n3's stream from n1 carries n1 -> n3, which is open"
        );
        sh.faults.send_modify(|f| {
            f.cut.insert((0, 2));
            f.packet_nodes = vec![1];
            f.delay_ms = 40;
        });
        conn.refresh();
        assert_eq!(
            *conn.state.borrow(),
            LinkState {
                cut: true,
                delay_ms: 0,
                loss_permille: 0
            },
            "cut once n1 -> n3 is; n2's packet fault does not touch n1<->n3"
        );
        // Several URLs, one of them ours, with a path.
        assert_eq!(
            sh.sender("https://10.0.0.1:1, http://127.0.0.1:9001/"),
            Some(1)
        );
        assert_eq!(sh.sender("http://127.0.0.1:9"), None);
    }

    /// An HTTP peer that records each request's path and answers every POST with 204, and a
    /// stream GET with an endless trickle.
    async fn peer() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let s2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let seen = s2.clone();
                tokio::spawn(async move {
                    let mut scanner = RequestScanner::default();
                    let mut b = [0u8; 4096];
                    loop {
                        let n = match s.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let mut paths = Vec::new();
                        scanner.feed(&b[..n], |h| paths.push(h.path.clone()));
                        for p in paths {
                            seen.lock().unwrap().push(p.clone());
                            let stream = p.starts_with("/raft/stream/");
                            let resp: &[u8] = if stream {
                                b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\ntick"
                            } else {
                                b"HTTP/1.1 204 No Content\r\n\r\n"
                            };
                            if s.write_all(resp).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    async fn request(addr: SocketAddr, req: &[u8]) -> Option<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(req).await.ok()?;
        let mut b = vec![0u8; 256];
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await {
            Ok(Ok(n)) if n > 0 => Some(b[..n].to_vec()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn proxies_cut_exactly_the_grudges_messages_over_real_sockets() {
        let (target, seen) = peer().await;
        let ids: Vec<String> = ["n1", "n2"].map(String::from).to_vec();
        // Both nodes' real peer ports are the one recording peer; n1's proxy is used.
        let net = HttpPeerNet::start(ids.clone(), &[target, target], ETCD)
            .await
            .unwrap();
        let to_n1 = net.addr(0).unwrap();
        let from_n2 = format!("X-PeerURLs: http://{}\r\n", net.addr(1).unwrap());
        let post = format!("POST /raft HTTP/1.1\r\nContent-Length: 2\r\n{from_n2}\r\nhi");
        let stream = format!("GET /raft/stream/message/2 HTTP/1.1\r\n{from_n2}\r\n");
        assert!(request(to_n1, post.as_bytes()).await.is_some());
        // n1 drops n2's traffic: n2's POSTs to n1 stop, n1's stream to n2 still flows.
        let mut g = Grudge::new();
        g.entry("n1".into()).or_default().insert("n2".into());
        net.partition(&g).unwrap();
        assert_eq!(request(to_n1, post.as_bytes()).await, None);
        let got = request(to_n1, stream.as_bytes()).await.unwrap();
        assert!(got.ends_with(b"tick"), "{}", String::from_utf8_lossy(&got));
        // The other way round: the stream is cut, an anonymous probe is not.
        let mut g = Grudge::new();
        g.entry("n2".into()).or_default().insert("n1".into());
        net.partition(&g).unwrap();
        assert_eq!(request(to_n1, stream.as_bytes()).await, None);
        assert!(request(to_n1, b"GET /version HTTP/1.1\r\n\r\n")
            .await
            .is_some());
        net.heal().unwrap();
        assert!(request(to_n1, post.as_bytes()).await.is_some());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            ["/raft", "/raft/stream/message/2", "/version", "/raft"],
            "cut requests never reached the peer"
        );
    }
}
