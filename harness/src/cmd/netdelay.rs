//! `faultline netdelay --queue N --delay-ms D`: delays every packet the kernel hands to
//! netfilter queue N by D milliseconds, in order, then lets it through — real packet delay on
//! kernels without tc netem (this machine kind's, for one). Run as root on the host (or in
//! the namespace) whose traffic an iptables `-j NFQUEUE --queue-num N --queue-bypass` rule
//! sends here; with `--queue-bypass`, traffic flows normally whenever this helper is not
//! running, so killing it is always safe. It ends on SIGTERM or after `--max-s`.

use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Flags of `faultline netdelay`.
#[derive(clap::Args)]
pub struct Args {
    /// The netfilter queue number.
    #[arg(long, value_parser = crate::numeric::count::<u16>(0, 65_535))]
    pub queue: u16,
    /// How long each packet is held, milliseconds.
    #[arg(long, value_parser = crate::numeric::count::<u64>(0, 60_000))]
    pub delay_ms: u64,
    /// Stop after this many seconds even if nobody kills the helper (a bound for leftovers).
    #[arg(long, default_value_t = 86_400.0, value_parser = crate::numeric::secs(1.0, 7.0 * 86_400.0))]
    pub max_s: f64,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut q = nfq::Queue::open().context("cannot open a netfilter queue socket (root?)")?;
    q.bind(args.queue)
        .with_context(|| format!("cannot bind netfilter queue {}", args.queue))?;
    // Only the verdict matters; copying no payload keeps the helper cheap.
    q.set_copy_range(args.queue, 0)?;
    q.set_queue_max_len(args.queue, 65_536)?;
    q.set_fail_open(args.queue, true)?;
    q.set_nonblocking(true);
    let delay = Duration::from_millis(args.delay_ms);
    let end = Instant::now() + Duration::from_secs_f64(args.max_s);
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    while Instant::now() < end {
        loop {
            match q.recv() {
                Ok(msg) => held.push_back((Instant::now() + delay, msg)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("reading the netfilter queue"),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, mut msg)) = held.pop_front() {
                msg.set_verdict(nfq::Verdict::Accept);
                q.verdict(msg).context("releasing a packet")?;
            }
        }
        // A packet that arrives while we sleep is stamped late by at most the sleep: 1 ms
        // while packets are held, 5 ms when idle, against delays of tens of milliseconds.
        let nap = if held.is_empty() { 5 } else { 1 };
        std::thread::sleep(Duration::from_millis(nap));
    }
    Ok(ExitCode::SUCCESS)
}
