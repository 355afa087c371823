//! `faultline bench harness`: how many ops/s the harness itself can issue and record, and
//! whether its memory grows with history length (it should not: events stream to disk).
//!
//! Runs the real worker loop and recorder against the in-process [`NoopClient`], so the figure
//! is the harness's ceiling, not the system's. Memory is the process's resident set size
//! (`/proc/self/statm`) sampled every 100k ops.

use crate::client::NoopClient;
use crate::recorder::Recorder;
use crate::run::{self, LoadSpec, ProcessIds};
use anyhow::{bail, Result};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workloads::{Mix, Workload};

/// Flags of `faultline bench`.
#[derive(clap::Args)]
pub struct Args {
    /// What to benchmark: `harness` (no-op client).
    #[arg(default_value = "harness")]
    pub what: String,
    /// Concurrent workers.
    #[arg(long, default_value_t = 50, value_parser = crate::numeric::count::<usize>(1, crate::numeric::MAX_CONCURRENCY))]
    pub concurrency: usize,
    /// Total ops.
    #[arg(long, default_value_t = 500_000, value_parser = crate::numeric::count::<u64>(1, 1_000_000_000))]
    pub ops: u64,
    /// Where to write the history (default: a temporary file, deleted afterwards).
    #[arg(long)]
    pub history: Option<std::path::PathBuf>,
}

fn rss_bytes() -> u64 {
    let page = 4096;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |p| p * page)
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.what != "harness" {
        bail!("unknown benchmark {:?} (expected: harness)", args.what);
    }
    let path = args.history.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("faultline-bench-{}.jsonl", std::process::id()))
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(async {
        let rec = Arc::new(Recorder::create(&path, Instant::now())?);
        let client = Arc::new(NoopClient);
        let chunk = 100_000u64;
        let mut samples = vec![(0u64, rss_bytes())];
        let t0 = Instant::now();
        let mut done = 0u64;
        let ids = Arc::new(ProcessIds::new(args.concurrency as u64));
        while done < args.ops {
            let n = chunk.min(args.ops - done);
            let load = LoadSpec {
                workload: Workload::Register,
                mix: Mix::default(),
                concurrency: args.concurrency,
                rate: 0.0,
                seed: done,
                nodes: 1,
                duration: Duration::from_secs(3600),
                max_ops: Some(n),
            };
            let (_tx, rx) = tokio::sync::watch::channel(false);
            run::run_workers(&load, client.clone(), rec.clone(), ids.clone(), rx).await;
            done += n;
            samples.push((done, rss_bytes()));
        }
        let secs = t0.elapsed().as_secs_f64();
        anyhow::Ok((secs, samples, rec.len()))
    });
    if args.history.is_none() {
        let _ = std::fs::remove_file(&path);
    }
    let (secs, samples, events) = r?;
    let ops = args.ops as f64;
    println!(
        "harness overhead (no-op client, concurrency {}):",
        args.concurrency
    );
    println!(
        "  {} ops ({} events) in {:.2} s = {:.0} ops/s",
        args.ops,
        events,
        secs,
        ops / secs
    );
    // Growth per 100k ops after the first chunk (warm-up: allocator, runtime, buffers).
    let warm = samples.get(1).map_or(0, |s| s.1);
    let last = samples.last().map_or(0, |s| s.1);
    let chunks = samples.len().saturating_sub(2).max(1) as f64;
    println!(
        "  RSS: start {:.1} MiB, after first 100k {:.1} MiB, end {:.1} MiB",
        samples[0].1 as f64 / 1048576.0,
        warm as f64 / 1048576.0,
        last as f64 / 1048576.0
    );
    println!(
        "  memory growth per 100k ops after warm-up: {:.1} KiB",
        (last as f64 - warm as f64) / chunks / 1024.0
    );
    Ok(ExitCode::SUCCESS)
}
