//! `faultline bench`: two benchmarks.
//!
//! - `faultline bench harness`: how many ops/s the harness itself can issue and record, and
//!   whether its memory grows with history length (it should not: events stream to disk).
//!   Runs the real worker loop and recorder against the in-process [`NoopClient`], so the
//!   figure is the harness's ceiling, not the system's. Memory is the process's resident set
//!   size (`/proc/self/statm`) sampled every 100k ops.
//! - `faultline bench --system etcd,kvnode [--engine raft,multipaxos,nwr]`: the same-client
//!   benchmark. Every system gets a fresh cluster on loopback (free ports, peer links direct,
//!   no proxy in between, torn down after) and the very [`Client`] its tests use, driven by
//!   one loop: the same workers, each bound to node `worker % nodes` on a key of its own, the
//!   same integer values, phase by phase — puts, then linearizable gets (etcd's default;
//!   kvnode's read-index; NWR's quorum reads), then compare-and-sets — each phase for
//!   `--seconds`. A row gives ok ops/s and the p50/p99 latency of ok ops per phase, so the
//!   systems differ only in the server. Both fsync every acknowledged write.

use crate::client::{Client, NoopClient, Outcome};
use crate::db::etcd::{self, Etcd, EtcdSpec};
use crate::db::kvnode::{Kvnode, KvnodeSpec};
use crate::db::Db;
use crate::env::local::PeerLinks;
use crate::recorder::Recorder;
use crate::run::{self, LoadSpec, ProcessIds};
use crate::testbed::Testbed;
use anyhow::{bail, Context, Result};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workloads::{Mix, Op, Workload};

/// Flags of `faultline bench`.
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Same-client benchmark of etcd against kvnode's engines (release build):\n",
    "  faultline bench --system etcd,kvnode --engine raft,multipaxos,nwr"
))]
pub struct Args {
    /// What to benchmark: `harness` (no-op client; the default without --system).
    pub what: Option<String>,
    /// Systems to benchmark side by side, comma-separated: etcd, kvnode.
    #[arg(long, value_name = "etcd,kvnode")]
    pub system: Option<String>,
    /// kvnode engines, comma-separated: raft, multipaxos, nwr (default raft).
    #[arg(long, value_name = "ENGINES")]
    pub engine: Option<String>,
    /// Nodes per cluster (--system).
    #[arg(long, default_value_t = 3, value_parser = crate::numeric::count::<usize>(1, 9))]
    pub nodes: usize,
    /// Concurrent workers.
    #[arg(long, default_value_t = 50, value_parser = crate::numeric::count::<usize>(1, crate::numeric::MAX_CONCURRENCY))]
    pub concurrency: usize,
    /// Total ops (harness); with --system, the most ops per phase.
    #[arg(long, default_value_t = 500_000, value_parser = crate::numeric::count::<u64>(1, 1_000_000_000))]
    pub ops: u64,
    /// Seconds per phase (puts, gets, cas) and system (--system).
    #[arg(long, default_value_t = 5.0, value_name = "SECS",
          value_parser = crate::numeric::secs(0.1, 600.0))]
    pub seconds: f64,
    /// Where to write the history (harness; default: a temporary file, deleted afterwards).
    #[arg(long)]
    pub history: Option<std::path::PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    match (args.what.as_deref(), &args.system) {
        (None | Some("harness"), None) => harness(args),
        (None, Some(systems)) => {
            let targets = targets(systems, args.engine.as_deref())?;
            if args.history.is_some() {
                bail!("--history only applies to `faultline bench harness`");
            }
            systems_bench(&args, &targets)
        }
        (Some("harness"), Some(_)) => {
            bail!("`faultline bench harness` takes no --system (leave out `harness` to benchmark systems)")
        }
        (Some(other), _) => bail!("unknown benchmark {other:?} (expected: harness, or --system)"),
    }
}

/// One cluster to benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Etcd,
    Kvnode(String),
}

impl Target {
    fn label(&self) -> String {
        match self {
            Target::Etcd => "etcd".into(),
            Target::Kvnode(e) => format!("kvnode {e}"),
        }
    }
}

/// Parses `--system` and `--engine` into the clusters to run, in the order given.
fn targets(systems: &str, engines: Option<&str>) -> Result<Vec<Target>> {
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    };
    let engines = list(engines.unwrap_or("raft"));
    for e in &engines {
        if !["raft", "multipaxos", "nwr"].contains(&e.as_str()) {
            bail!("unknown --engine {e:?} (expected raft, multipaxos or nwr)");
        }
    }
    let mut out = Vec::new();
    for s in list(systems) {
        match s.as_str() {
            "etcd" => out.push(Target::Etcd),
            "kvnode" => out.extend(engines.iter().map(|e| Target::Kvnode(e.clone()))),
            _ => bail!("unknown --system {s:?} (expected etcd or kvnode)"),
        }
    }
    if out.is_empty() {
        bail!("--system names no system (expected etcd, kvnode or both)");
    }
    if !out.iter().any(|t| matches!(t, Target::Kvnode(_))) && engines != ["raft"] {
        bail!("--engine only applies to --system kvnode");
    }
    out.dedup();
    Ok(out)
}

/// The op kinds measured, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Put,
    Get,
    Cas,
}

/// What one phase measured.
#[derive(Debug, Default)]
struct Measured {
    ok: u64,
    /// Cas ops that found another value (none expected: each worker owns its key).
    mismatched: u64,
    errors: u64,
    secs: f64,
    /// Latencies of ok ops, microseconds.
    latencies: Vec<u64>,
    first_error: Option<String>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let k = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[k] as f64 / 1000.0
    }
}

/// A row of the table.
struct Row {
    label: String,
    version: String,
    phases: Vec<(Phase, Option<Measured>)>,
}

/// The key worker `w` owns.
fn key_of(w: usize) -> Option<String> {
    Some(format!("bench-{w}"))
}

/// Runs one phase: `concurrency` workers, each on its own key, until the deadline or `max_ops`.
async fn phase<C: Client>(
    client: Arc<C>,
    which: Phase,
    args: &Args,
    last: &Arc<Vec<AtomicU64>>,
    seq: &Arc<AtomicU64>,
) -> Measured {
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..args.concurrency {
        let (client, issued, last, seq) =
            (client.clone(), issued.clone(), last.clone(), seq.clone());
        let (max, conc, nodes) = (args.ops, args.concurrency as u64, args.nodes);
        tasks.spawn(async move {
            let mut m = Measured::default();
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                // One counter for every worker and phase: unique values, as the workloads
                // write them, and a per-client sequence that only grows (kvnode deduplicates
                // by it and refuses a lower one).
                let k = seq.fetch_add(1, Ordering::Relaxed) + 1;
                let fresh = (k * conc + w as u64) as i64;
                let op = match which {
                    Phase::Put => Op::Write {
                        key: key_of(w),
                        value: fresh,
                    },
                    Phase::Get => Op::Read { key: key_of(w) },
                    Phase::Cas => Op::Cas {
                        key: key_of(w),
                        from: last[w].load(Ordering::Relaxed) as i64,
                        to: fresh,
                    },
                };
                let t = Instant::now();
                let outcome = client.invoke(w as u64, k, w % nodes, &op).await;
                let took = t.elapsed().as_micros() as u64;
                match outcome {
                    Outcome::Ok { .. } => {
                        m.ok += 1;
                        m.latencies.push(took);
                        if let Op::Write { value: v, .. } | Op::Cas { to: v, .. } = op {
                            last[w].store(v as u64, Ordering::Relaxed);
                        }
                    }
                    Outcome::Mismatch { current, .. } => {
                        m.mismatched += 1;
                        if let Some(v) = current.as_i64() {
                            last[w].store(v as u64, Ordering::Relaxed);
                        }
                    }
                    Outcome::Fail { error, .. } | Outcome::Info { error, .. } => {
                        m.errors += 1;
                        m.first_error.get_or_insert(error);
                    }
                }
            }
            m
        });
    }
    let mut total = Measured::default();
    while let Some(r) = tasks.join_next().await {
        let Ok(m) = r else { continue };
        total.ok += m.ok;
        total.mismatched += m.mismatched;
        total.errors += m.errors;
        total.latencies.extend(m.latencies);
        if total.first_error.is_none() {
            total.first_error = m.first_error;
        }
    }
    total.secs = start.elapsed().as_secs_f64();
    total.latencies.sort_unstable();
    total
}

/// Starts `db` on a fresh loopback cluster, measures every phase, tears down.
async fn bench_db<D: Db>(
    db: D,
    environment: crate::env::Environment,
    args: &Args,
    cas: bool,
) -> Result<Row> {
    let testbed = Testbed::start(environment, db).await?;
    testbed.await_ready(Duration::from_secs(20)).await?;
    if !testbed.await_recovery(Duration::from_secs(10)).await {
        bail!("{}: no leader after 10 s", testbed.db().name());
    }
    let client = Arc::new(testbed.db().client(Duration::from_secs(2))?);
    let last: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.concurrency).map(|_| AtomicU64::new(0)).collect());
    let seq = Arc::new(AtomicU64::new(0));
    let mut phases = Vec::new();
    for which in [Phase::Put, Phase::Get, Phase::Cas] {
        let m = if which == Phase::Cas && !cas {
            None
        } else {
            Some(phase(client.clone(), which, args, &last, &seq).await)
        };
        phases.push((which, m));
    }
    let row = Row {
        label: String::new(),
        version: testbed.db().version(),
        phases,
    };
    testbed.teardown();
    Ok(row)
}

/// Removes a benchmark's node directories however the benchmark ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn bench_target(target: &Target, args: &Args) -> Result<Row> {
    let ids: Vec<String> = (1..=args.nodes).map(|i| format!("n{i}")).collect();
    let dir = TempDir(std::env::temp_dir().join(format!(
        "faultline-bench-{}-{}",
        std::process::id(),
        target.label().replace(' ', "-")
    )));
    std::fs::create_dir_all(&dir.0)
        .with_context(|| format!("cannot create {}", dir.0.display()))?;
    let environment = crate::env::local::build_with(&ids, &dir.0, None, PeerLinks::Direct).await?;
    let mut row = match target {
        Target::Etcd => {
            let spec = EtcdSpec {
                binary: Some(etcd_binary()?),
                serializable_reads: false,
                token: "faultline-bench".into(),
            };
            let db = Etcd::new(spec, &*environment.env)?;
            bench_db(db, environment, args, true).await?
        }
        Target::Kvnode(engine) => {
            let spec = KvnodeSpec {
                binary: std::env::current_exe()
                    .context("cannot locate the faultline executable")?,
                subcommand: true,
                engine: engine.clone(),
                extra_args: Vec::new(),
                seed: 1,
            };
            let db = Kvnode::new(spec, &*environment.env)?;
            // NWR offers no compare-and-set.
            bench_db(db, environment, args, engine != "nwr").await?
        }
    };
    row.label = target.label();
    Ok(row)
}

fn etcd_binary() -> Result<std::path::PathBuf> {
    etcd::find_binary().with_context(|| format!("etcd is not installed: {}", etcd::INSTALL_HINT))
}

fn systems_bench(args: &Args, targets: &[Target]) -> Result<ExitCode> {
    // Before any cluster runs: a missing binary should not cost the other systems' minutes.
    if targets.contains(&Target::Etcd) {
        etcd_binary()?;
    }
    if cfg!(debug_assertions) {
        eprintln!("faultline: note: this is a debug build; measure with `cargo run --release -- bench ...`");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for t in targets {
        eprintln!("faultline: benchmarking {} ...", t.label());
        let row = rt
            .block_on(bench_target(t, args))
            .with_context(|| format!("benchmark of {}", t.label()))?;
        rows.push(row);
    }
    rt.shutdown_timeout(Duration::from_secs(2));
    print!("{}", table(args, &rows));
    Ok(ExitCode::SUCCESS)
}

/// The side-by-side table.
fn table(args: &Args, rows: &[Row]) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "same-client benchmark: {} nodes on loopback, {} workers (one key each, worker i on node i mod {}), {:.0} s per op kind, integer values",
        args.nodes, args.concurrency, args.nodes, args.seconds
    );
    let _ = writeln!(
        t,
        "{:<18} {:<26} {:>9} {:>7} {:>7}  {:>9} {:>7} {:>7}  {:>9} {:>7} {:>7}  errors",
        "system",
        "version",
        "puts/s",
        "p50 ms",
        "p99 ms",
        "gets/s",
        "p50 ms",
        "p99 ms",
        "cas/s",
        "p50 ms",
        "p99 ms"
    );
    for r in rows {
        let mut line = format!("{:<18} {:<26}", r.label, r.version);
        let mut notes = Vec::new();
        for (which, m) in &r.phases {
            match m {
                Some(m) => {
                    let _ = write!(
                        line,
                        " {:>9.0} {:>7.2} {:>7.2} ",
                        m.rate(),
                        m.quantile_ms(0.5),
                        m.quantile_ms(0.99)
                    );
                    if m.errors > 0 || m.mismatched > 0 {
                        notes.push(format!(
                            "{which:?}: {} errors, {} cas mismatches{}",
                            m.errors,
                            m.mismatched,
                            m.first_error
                                .as_deref()
                                .map_or(String::new(), |e| format!(" (first: {e})"))
                        ));
                    }
                }
                None => {
                    let _ = write!(line, " {:>9} {:>7} {:>7} ", "n/a", "", "");
                }
            }
        }
        let _ = writeln!(
            line,
            " {}",
            if notes.is_empty() {
                "0".into()
            } else {
                notes.join("; ")
            }
        );
        t.push_str(&line);
    }
    t
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

/// `faultline bench harness`.
fn harness(args: Args) -> Result<ExitCode> {
    if args.engine.is_some() {
        bail!("--engine only applies to --system kvnode");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_expand_systems_and_engines_in_order() {
        let t = targets("etcd,kvnode", Some("raft,nwr")).unwrap();
        assert_eq!(
            t,
            [
                Target::Etcd,
                Target::Kvnode("raft".into()),
                Target::Kvnode("nwr".into())
            ]
        );
        assert_eq!(
            targets("kvnode", None).unwrap(),
            [Target::Kvnode("raft".into())]
        );
        for (s, e, want) in [
            ("etcd", Some("multipaxos"), "--engine only applies"),
            ("mysql", None, "unknown --system"),
            ("kvnode", Some("zab"), "unknown --engine"),
            (",", None, "names no system"),
        ] {
            let err = targets(s, e).unwrap_err().to_string();
            assert!(err.contains(want), "{s} {e:?}: {err}");
        }
    }

    #[test]
    fn quantiles_come_from_ok_latencies() {
        let m = Measured {
            ok: 100,
            secs: 2.0,
            latencies: (1..=100).map(|i| i * 1000).collect(),
            ..Default::default()
        };
        assert_eq!(m.rate(), 50.0);
        assert_eq!(m.quantile_ms(0.5), 51.0);
        assert_eq!(m.quantile_ms(0.99), 99.0);
        assert!(Measured::default().quantile_ms(0.5).is_nan());
    }
}
