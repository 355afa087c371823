//! `faultline test`: start a local kvnode cluster, drive it through faults, check, report.
//!
//! Flags are resolved into a [`TestPlan`] before anything starts (bad input exits 255 with a
//! message and leaves nothing behind). The run itself happens inside a tokio runtime, raced
//! against SIGINT/SIGTERM: on a signal the run future is dropped, which drops the
//! [`LocalCluster`] guard, which kills every node we started. The history on disk stays
//! checkable either way. Exit codes: 0 valid, 1 invalid, 2 unknown, 255 harness error.

use crate::client::KvClient;
use crate::local::{ClusterSpec, LocalCluster};
use crate::plan::TestPlan;
use crate::recorder::Recorder;
use crate::results;
use crate::run::{self, FaultCounts, LoadSpec, ProcessIds};
use crate::rundir::layout;
use anyhow::{anyhow, Context, Result};
use nemesis::schedule::ScheduleOptions;
use nemesis::Schedule;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `faultline test` (see [`crate::plan::Flags`]).
pub type Args = crate::plan::Flags;

/// Runs the subcommand.
pub fn run(flags: Args) -> Result<ExitCode> {
    let flags = match &flags.repeat {
        None => flags,
        Some(dir) => {
            // Anything besides `--repeat DIR` would silently lose to the stored flags.
            let extra = std::env::args()
                .skip(2)
                .filter(|a| !a.starts_with("--repeat") && std::path::Path::new(a) != dir)
                .count();
            if extra > 0 {
                anyhow::bail!(
                    "--repeat takes no other flags: it reruns {} exactly",
                    dir.display()
                );
            }
            let repeated = crate::plan::Flags::repeated(dir)?;
            eprintln!("faultline: repeating {}", dir.display());
            repeated
        }
    };
    if flags.dry_run {
        let plan = flags.resolve_dry()?;
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    let plan = flags.resolve()?;
    for n in &plan.notes {
        eprintln!("faultline: note: {n}");
    }
    std::fs::write(
        plan.run_dir.join(layout::TEST),
        serde_json::to_string_pretty(&plan)?,
    )
    .context("cannot write test.json")?;
    let _ = crate::rundir::link_latest(&plan.results_dir, &plan.run_dir);
    let quorums = plan.nwr.as_ref().map_or(String::new(), |q| {
        format!(
            ", N={} W={} R={} {} clock{}",
            q.n,
            q.w,
            q.r,
            q.clock,
            if q.read_repair { ", read repair" } else { "" }
        )
    });
    eprintln!(
        "faultline: {} nodes{quorums}, {} workload, nemesis [{}], {} s, seed {} -> {}",
        plan.nodes.len(),
        plan.workload,
        plan.nemesis
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(","),
        plan.time_limit,
        plan.seed,
        plan.run_dir.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = execute(&plan) => r,
            _ = int.recv() => Err(anyhow!("interrupted by SIGINT: {}", stopped_note(&plan))),
            _ = term.recv() => Err(anyhow!("terminated by SIGTERM: {}", stopped_note(&plan))),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    outcome?;
    eprintln!("faultline: checking history ...");
    let (analysis, observed) =
        results::analyze_dir(&plan.run_dir, Duration::from_secs_f64(plan.check_timeout))?;
    let report = if plan.report {
        results::render_report(&plan.run_dir, observed.as_ref().map(|o| (&analysis, o)))
    } else {
        None
    };
    results::print_summary(&analysis, &plan.run_dir, report.as_deref());
    Ok(results::exit_code(&analysis))
}

/// What a signal left behind: the partial history when one was written, else only the run
/// directory (the cluster had not started serving yet).
fn stopped_note(plan: &TestPlan) -> String {
    let history = plan.run_dir.join(layout::HISTORY);
    if history.is_file() {
        format!(
            "nodes stopped; partial history in {} (check it with `faultline analyze {}`)",
            history.display(),
            plan.run_dir.display()
        )
    } else {
        format!(
            "nodes stopped before any operation was recorded; run directory {}",
            plan.run_dir.display()
        )
    }
}

/// Brings the cluster up, runs every phase, tears down. Returns the faults applied.
pub async fn execute(plan: &TestPlan) -> Result<FaultCounts> {
    let cluster = LocalCluster::start(ClusterSpec::from_plan(plan)).await?;
    let nodes: Vec<serde_json::Value> = cluster
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| {
            serde_json::json!({"id": n.id, "peer": n.peer_addr, "client": n.client_addr, "pid": cluster.pid(i)})
        })
        .collect();
    std::fs::write(
        plan.run_dir.join(layout::CLUSTER),
        serde_json::to_string_pretty(&serde_json::json!({ "nodes": nodes }))?,
    )?;
    cluster.await_ready(Duration::from_secs(20)).await?;
    // A leaderless engine serves as soon as its nodes answer; waiting for a leader that never
    // comes would only burn the timeout.
    if !plan.leaderless()
        && cluster
            .await_leader(Duration::from_secs(10))
            .await
            .is_none()
    {
        eprintln!("faultline: warning: no leader after 10 s; starting anyway");
    }
    let start = tokio::time::Instant::now();
    let rec = Arc::new(Recorder::create(
        &plan.run_dir.join(layout::HISTORY),
        start.into_std(),
    )?);
    let client = Arc::new(KvClient::new(
        cluster.ids(),
        cluster.urls(),
        Duration::from_millis(plan.op_timeout_ms),
    )?);
    let duration = Duration::from_secs_f64(plan.time_limit);
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let progress = progress(rec.clone(), duration);
    let schedule = Schedule::new(ScheduleOptions {
        kinds: plan.nemesis.clone(),
        shapes: plan.partition_shapes.clone(),
        interval: Duration::from_secs_f64(plan.nemesis_interval),
        nodes: plan.nodes.clone(),
        seed: plan.seed,
    });
    let load = LoadSpec {
        workload: plan.workload,
        mix: plan.mix,
        concurrency: plan.concurrency,
        rate: plan.rate,
        seed: plan.seed,
        nodes: plan.nodes.len(),
        duration,
        max_ops: None,
    };
    let ids = Arc::new(ProcessIds::new(plan.concurrency as u64));
    let ((), counts) = tokio::join!(
        run::run_workers(
            &load,
            client.clone(),
            rec.clone(),
            ids.clone(),
            stop_rx.clone()
        ),
        run::run_nemesis(&cluster, schedule, duration, &rec, stop_rx, plan.seed),
    );
    if let Some(p) = &progress {
        p.set_message("healed; waiting for recovery");
    }
    if !cluster
        .await_recovery(plan.leaderless(), Duration::from_secs(15))
        .await
    {
        eprintln!("faultline: warning: cluster not recovered after 15 s; final reads anyway");
    }
    run::final_reads(&*client, &rec, &ids, plan.workload, plan.nodes.len()).await;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    cluster.teardown();
    Ok(counts)
}

/// A progress bar on a terminal (stderr), updated by a background task.
fn progress(rec: Arc<Recorder>, duration: Duration) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(duration.as_secs().max(1));
    pb.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len}s {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let bar = pb.clone();
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        while !bar.is_finished() {
            bar.set_position(start.elapsed().as_secs().min(duration.as_secs()));
            bar.set_message(format!("{} ops", rec.completed()));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    Some(pb)
}
