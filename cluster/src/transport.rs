//! Peer transport: one-directional TCP links carrying length-delimited JSON [`Frame`]s.
//!
//! Node i sends to node j ONLY over the connection i dialed to j's `--peers` address;
//! connections accepted on `--peer-listen` are receive-only, and their first frame
//! (`Hello`) names the sender. This lets the harness put one proxy on each *directed* link
//! and cut links one direction at a time.
//!
//! Partitions are usually blackholes (bytes stop flowing, nothing closes), so every write
//! has a deadline ([`TransportConfig::write_timeout`]); a stalled link is dropped and
//! re-dialed with capped exponential backoff. A dialed connection is also watched for EOF
//! (the receiver never writes, so any read completion means the link died).
//!
//! The engine is never blocked by a slow peer: each peer has a bounded queue and
//! [`Transport::send`] drops the newest message when it is full (replication engines
//! tolerate message loss and retransmit). Inbound messages go to the driver through a
//! bounded channel with the same drop-on-full policy.

use crate::msg::{Frame, NodeId};
use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

/// Largest frame accepted from a peer.
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Most messages coalesced into one write.
const MAX_WRITE_BATCH: usize = 256;

/// Tunables for the transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// This node's id (sent in `Hello`).
    pub id: NodeId,
    /// Messages queued per peer before new ones are dropped.
    pub queue_len: usize,
    /// A write (or dial) taking longer than this means the link is stalled: re-dial.
    pub write_timeout: Duration,
    /// First reconnect delay; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Reconnect delay ceiling.
    pub max_backoff: Duration,
}

impl TransportConfig {
    /// Defaults for node `id`.
    pub fn new(id: &str) -> Self {
        TransportConfig {
            id: id.to_string(),
            queue_len: 4096,
            write_timeout: Duration::from_millis(1000),
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(500),
        }
    }
}

/// Per peer: its queue and the address its sender task dials.
type PeerTable<M> = HashMap<NodeId, (mpsc::Sender<M>, String)>;

/// Handle for sending to peers; cheap to clone.
#[derive(Clone)]
pub struct Transport<M> {
    /// Peers are added at run time when a membership change brings a node the flags did
    /// not name.
    peers: Arc<Mutex<PeerTable<M>>>,
    dropped: Arc<AtomicU64>,
    cfg: TransportConfig,
    shutdown: CancellationToken,
}

impl<M: Serialize + Send + 'static> Transport<M> {
    /// Starts one sender task per peer (`(id, address)`), each dialing and re-dialing.
    pub fn start(
        cfg: &TransportConfig,
        peers: &[(NodeId, String)],
        shutdown: CancellationToken,
    ) -> Self {
        let t = Transport {
            peers: Arc::new(Mutex::new(HashMap::new())),
            dropped: Arc::new(AtomicU64::new(0)),
            cfg: cfg.clone(),
            shutdown,
        };
        for (peer, addr) in peers {
            t.set_peer(peer, addr);
        }
        t
    }

    /// Sends to `peer` at `addr` from now on: starts a sender task for a new peer, or
    /// replaces the one of a peer whose address changed (its queued messages are dropped).
    pub fn set_peer(&self, peer: &str, addr: &str) {
        let mut peers = self.peers.lock().expect("peer table lock");
        if peers.get(peer).is_some_and(|(_, a)| a == addr) {
            return;
        }
        let (tx, rx) = mpsc::channel(self.cfg.queue_len);
        peers.insert(peer.to_string(), (tx, addr.to_string()));
        tokio::spawn(peer_sender(
            self.cfg.clone(),
            peer.to_string(),
            addr.to_string(),
            rx,
            self.shutdown.clone(),
        ));
    }

    /// Whether `peer` has a sender (from flags or [`Transport::set_peer`]).
    pub fn has_peer(&self, peer: &str) -> bool {
        self.peers
            .lock()
            .expect("peer table lock")
            .contains_key(peer)
    }

    /// Queues `msg` for `to`; drops it if the peer's queue is full or `to` is unknown.
    pub fn send(&self, to: &str, msg: M) {
        let peers = self.peers.lock().expect("peer table lock");
        if let Some((tx, _)) = peers.get(to) {
            if tx.try_send(msg).is_err() {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::debug!(
                        peer = to,
                        dropped_total = n + 1,
                        "peer queue full, dropping"
                    );
                }
            }
        }
    }
}

fn encode_frame<M: Serialize>(buf: &mut BytesMut, frame: &Frame<M>) {
    let start = buf.len();
    buf.put_u32(0);
    let mut w = buf.writer();
    serde_json::to_writer(&mut w, frame).expect("frames always serialize");
    let buf = w.into_inner();
    let len = (buf.len() - start - 4) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

async fn peer_sender<M: Serialize>(
    cfg: TransportConfig,
    peer: NodeId,
    addr: String,
    mut rx: mpsc::Receiver<M>,
    shutdown: CancellationToken,
) {
    let mut backoff = cfg.min_backoff;
    let mut buf = BytesMut::new();
    loop {
        let dial = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(cfg.write_timeout, TcpStream::connect(&addr)) => r,
        };
        let stream = match dial {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::trace!(%peer, %addr, error = %e, "dial failed");
                sleep_or_shutdown(&shutdown, &mut backoff, cfg.max_backoff).await;
                continue;
            }
            Err(_) => {
                tracing::debug!(%peer, %addr, "dial timed out");
                sleep_or_shutdown(&shutdown, &mut backoff, cfg.max_backoff).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        buf.clear();
        encode_frame::<M>(
            &mut buf,
            &Frame::Hello {
                from: cfg.id.clone(),
            },
        );
        let mut ok = matches!(
            tokio::time::timeout(cfg.write_timeout, wr.write_all(&buf)).await,
            Ok(Ok(()))
        );
        if ok {
            tracing::debug!(%peer, %addr, "connected");
            backoff = cfg.min_backoff;
        }
        let mut eof_probe = [0u8; 64];
        while ok {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                m = rx.recv() => match m { Some(m) => m, None => return },
                r = rd.read(&mut eof_probe) => {
                    tracing::debug!(%peer, result = ?r.map(|_| ()), "link closed by remote");
                    break;
                }
            };
            buf.clear();
            encode_frame(&mut buf, &Frame::Msg(first));
            for _ in 1..MAX_WRITE_BATCH {
                match rx.try_recv() {
                    Ok(m) => encode_frame(&mut buf, &Frame::Msg(m)),
                    Err(_) => break,
                }
            }
            match tokio::time::timeout(cfg.write_timeout, wr.write_all(&buf)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "write failed, re-dialing");
                    ok = false;
                }
                Err(_) => {
                    tracing::info!(%peer, "write stalled (blackholed link?), re-dialing");
                    ok = false;
                }
            }
        }
        sleep_or_shutdown(&shutdown, &mut backoff, cfg.max_backoff).await;
    }
}

async fn sleep_or_shutdown(shutdown: &CancellationToken, backoff: &mut Duration, max: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(max);
}

/// Accepts peer connections on `listener` and forwards their messages to `inbound`
/// (dropping when the driver is behind). Returns when `shutdown` fires.
pub async fn serve_inbound<M: DeserializeOwned + Send + 'static>(
    listener: TcpListener,
    inbound: mpsc::Sender<(NodeId, M)>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(256));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue; // too many connections: drop this one
        };
        let inbound = inbound.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let codec = LengthDelimitedCodec::builder()
                .max_frame_length(MAX_FRAME)
                .new_codec();
            let mut frames = FramedRead::new(stream, codec);
            let mut from: Option<NodeId> = None;
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    f = frames.next() => f,
                };
                let Some(Ok(bytes)) = next else { return };
                let frame: Frame<M> = match serde_json::from_slice(&bytes) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(%remote, error = %e, "undecodable peer frame, closing");
                        return;
                    }
                };
                match (frame, &from) {
                    (Frame::Hello { from: f }, None) => from = Some(f),
                    (Frame::Msg(m), Some(f)) => {
                        let _ = inbound.try_send((f.clone(), m));
                    }
                    _ => {
                        tracing::warn!(%remote, "peer protocol violation, closing");
                        return;
                    }
                }
            }
        });
    }
}
