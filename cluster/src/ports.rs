//! Free loopback ports for nodes that are started later by another process.
//!
//! Binding port 0 and dropping the listener hands out a port from the kernel's
//! ephemeral range — the same range outgoing connections draw from, so by the time
//! the node binds it, a client socket (or a proxy in a parallel test) may hold it.
//! Ports here come from below the ephemeral range instead, start at an offset that
//! differs per process, and are never handed out twice by one process.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// First port of the range we pick from (below Linux's default ephemeral 32768).
const LOW: u32 = 12_000;
/// One past the last port of the range.
const HIGH: u32 = 32_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Returns a loopback address whose port is free now and was not returned before by
/// this process. Errors only when the whole range is taken.
pub fn free_loopback_port() -> std::io::Result<SocketAddr> {
    let span = HIGH - LOW;
    // Spread processes across the range so concurrent test binaries rarely meet.
    let seed = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + (seed + n) % span;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port as u16)) {
            return l.local_addr();
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free loopback port in {LOW}..{HIGH}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let a = free_loopback_port().unwrap();
            assert!(seen.insert(a.port()), "port {} handed out twice", a.port());
            TcpListener::bind(a).unwrap();
        }
    }
}
