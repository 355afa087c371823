//! The userspace TCP proxy on one directed peer link, so partitions and delays need no root.
//!
//! Node `i` sends to node `j` only over the connection it dials to the address it was given
//! for `j`; the local environment gives it this proxy's address, and the proxy forwards to
//! `j`'s real peer port. Cutting the link behaves like a firewall dropping packets, not like a
//! polite close: bytes already in flight stop being forwarded in either direction, the sockets
//! stay open (so the nodes see timeouts), and new connections are accepted by the kernel but
//! never answered. Healing closes every blackholed connection so both sides reconnect cleanly.
//! A delay holds every chunk for `delay_ms` before forwarding it.
//!
//! Loss cannot drop bytes out of a TCP stream without corrupting it, and a real lost segment
//! is not lost to the application either: the sender retransmits it after a retransmission
//! timeout. So a lost chunk is held for one RTO (200 ms, Linux's minimum, doubling while the
//! retransmission is lost too) and then forwarded — the stall, in-order, that the nodes
//! would see from a lossy network.
//!
//! The proxy is a set of tokio tasks in the harness process: when the harness exits, so does
//! every proxy, and no port stays bound.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the link does right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    /// Blackhole all traffic.
    pub cut: bool,
    /// Added one-way delay per forwarded chunk, milliseconds.
    pub delay_ms: u64,
    /// Probability that a chunk is lost (and retransmitted), in thousandths.
    pub loss_permille: u32,
}

/// First retransmission timeout of a lost chunk (Linux's TCP_RTO_MIN).
const RTO_MIN: Duration = Duration::from_millis(200);
/// Retransmission backoff stops doubling here.
const RTO_MAX: Duration = Duration::from_secs(3);
/// A chunk is delivered after at most this many lost retransmissions, so even 100% loss
/// stalls a link rather than wedging it (a partition is the fault for that).
const MAX_RETRANSMITS: u32 = 6;

/// A running proxy for one directed link; dropping it stops it.
pub struct Proxy {
    addr: SocketAddr,
    state: watch::Sender<LinkState>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Binds `127.0.0.1:0` and forwards every accepted connection to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, rx) = watch::channel(LinkState::default());
        let task = tokio::spawn(accept_each(listener, move |inbound| {
            serve(inbound, target, rx.clone())
        }));
        Ok(Proxy { addr, state, task })
    }

    /// The address nodes should dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts (`true`) or heals (`false`) the link.
    pub fn set_cut(&self, cut: bool) {
        self.state.send_modify(|s| s.cut = cut);
    }

    /// Sets the added delay (0 = none).
    pub fn set_delay(&self, delay_ms: u64) {
        self.state.send_modify(|s| s.delay_ms = delay_ms);
    }

    /// Sets the probability in [0, 1] that a chunk is lost and retransmitted (0 = none).
    pub fn set_loss(&self, loss: f64) {
        let permille = (loss.clamp(0.0, 1.0) * 1000.0).round() as u32;
        self.state.send_modify(|s| s.loss_permille = permille);
    }

    /// The current state.
    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections forever, each served by its own task (Nagle off); dropping the
/// future stops every one of them.
pub(super) async fn accept_each<F, Fut>(listener: TcpListener, mut serve: F)
where
    F: FnMut(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else { continue };
                let _ = inbound.set_nodelay(true);
                conns.spawn(serve(inbound));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Waits until the link is healed.
pub(super) async fn until_healed(rx: &mut watch::Receiver<LinkState>) {
    let _ = rx.wait_for(|s| !s.cut).await;
}

async fn serve(inbound: TcpStream, target: SocketAddr, mut rx: watch::Receiver<LinkState>) {
    if rx.borrow().cut {
        // No answer while cut; the connection is closed on heal.
        until_healed(&mut rx).await;
        return;
    }
    let Some(upstream) = dial(target).await else {
        return;
    };
    let (ar, aw) = inbound.into_split();
    let (br, bw) = upstream.into_split();
    tokio::select! {
        _ = pump(ar, bw, rx.clone()) => {}
        _ = pump(br, aw, rx.clone()) => {}
    }
    // Either side closed, or the link was cut and then healed: drop both sockets.
}

/// Connects to the link's target (bounded, like a SYN that gets no answer), Nagle off.
pub(super) async fn dial(target: SocketAddr) -> Option<TcpStream> {
    let s = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(target))
        .await
        .ok()?
        .ok()?;
    let _ = s.set_nodelay(true);
    Some(s)
}

/// Forwards bytes from `r` to `w` until EOF or error; once the link is cut it forwards
/// nothing more and returns only after the heal.
pub(super) async fn pump<R, W>(mut r: R, mut w: W, mut rx: watch::Receiver<LinkState>)
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if rx.borrow_and_update().cut {
            return until_healed(&mut rx).await;
        }
        tokio::select! {
            n = r.read(&mut buf) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                let s = *rx.borrow();
                if s.cut {
                    return until_healed(&mut rx).await;
                }
                let mut hold = Duration::from_millis(s.delay_ms);
                let mut rto = RTO_MIN;
                let mut lost = 0;
                while lost < MAX_RETRANSMITS
                    && s.loss_permille > 0
                    && rand::random::<u32>() % 1000 < s.loss_permille
                {
                    lost += 1;
                    hold += rto;
                    rto = (rto * 2).min(RTO_MAX);
                }
                if !hold.is_zero() {
                    tokio::time::sleep(hold).await;
                    if rx.borrow().cut {
                        return until_healed(&mut rx).await;
                    }
                }
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server: returns everything it reads.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut b = [0u8; 1024];
                    loop {
                        match s.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&b[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Option<Vec<u8>> {
        s.write_all(msg).await.ok()?;
        let mut b = vec![0u8; msg.len()];
        match tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut b)).await {
            Ok(Ok(_)) => Some(b),
            _ => None,
        }
    }

    #[tokio::test]
    async fn cut_blackholes_both_ways_and_heal_restores() {
        let p = Proxy::start(echo().await).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(
            roundtrip(&mut s, b"hello").await.as_deref(),
            Some(&b"hello"[..])
        );
        p.set_cut(true);
        // Established connection: nothing comes back, and it is not closed either.
        assert_eq!(roundtrip(&mut s, b"lost").await, None);
        // New connection: accepted by the kernel, never answered.
        let mut s2 = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut s2, b"x").await, None);
        p.set_cut(false);
        // Blackholed connections are closed on heal ...
        let mut b = [0u8; 8];
        let r = tokio::time::timeout(Duration::from_secs(1), s.read(&mut b)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "closed after heal: {r:?}"
        );
        // ... and new ones work.
        let mut s3 = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(
            roundtrip(&mut s3, b"again").await.as_deref(),
            Some(&b"again"[..])
        );
    }

    #[tokio::test]
    async fn delay_holds_bytes() {
        let p = Proxy::start(echo().await).await.unwrap();
        p.set_delay(100);
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let t = std::time::Instant::now();
        s.write_all(b"d").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn loss_stalls_chunks_but_keeps_the_stream_intact() {
        let p = Proxy::start(echo().await).await.unwrap();
        p.set_loss(0.2);
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let mut stalls = 0;
        for i in 0..30u8 {
            let t = std::time::Instant::now();
            s.write_all(&[i, i ^ 0xff]).await.unwrap();
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.unwrap();
            assert_eq!(b, [i, i ^ 0xff], "bytes arrive intact and in order");
            if t.elapsed() >= RTO_MIN {
                stalls += 1;
            }
        }
        // 60 chunks at 20% loss: P(no stall at all) = 0.8^60, about 1e-6.
        assert!(stalls > 0, "20% loss never stalled a roundtrip");
        p.set_loss(0.0);
        let t = std::time::Instant::now();
        s.write_all(b"z").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert!(
            t.elapsed() < RTO_MIN,
            "no loss, no stall: {:?}",
            t.elapsed()
        );
    }
}
