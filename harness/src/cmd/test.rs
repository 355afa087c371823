//! `faultline test`: start a cluster (kvnode or etcd), drive it through faults, check, report.
//!
//! Flags are resolved into a [`TestPlan`] before anything starts (bad input exits 255 with a
//! message and leaves nothing behind). The run itself happens inside a tokio runtime, raced
//! against SIGINT/SIGTERM: on a signal the run future is dropped, which drops the
//! [`Testbed`] guard, which heals the network, resets clocks and kills every node we started. The history on disk stays
//! checkable either way. Exit codes: 0 valid, 1 invalid, 2 unknown, 255 harness error.

use crate::db::etcd::{self, Etcd, EtcdSpec};
use crate::db::kvnode::{Kvnode, KvnodeSpec};
use crate::db::Db;
use crate::env::{self, EnvKind};
use crate::plan::{System, TestPlan};
use crate::recorder::Recorder;
use crate::results;
use crate::run::{self, FaultCounts, LoadSpec, ProcessIds};
use crate::rundir::layout;
use crate::testbed::Testbed;
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
    let nodes = match plan.members {
        Some(m) => format!("{m} nodes (+{} fresh ids to add)", plan.nodes.len() - m),
        None => format!("{} nodes", plan.nodes.len()),
    };
    eprintln!(
        "faultline: {nodes}{quorums}, {} workload, nemesis [{}], {} s, seed {} -> {}",
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
    let environment = match plan.env {
        EnvKind::Local => {
            // etcd members must all name a peer by one URL: one proxy per node.
            let links = match plan.system {
                System::Kvnode => env::local::PeerLinks::PerLink,
                System::Etcd => env::local::PeerLinks::PerNode(etcd::PEER_PROTOCOL),
            };
            env::local::build_with(&plan.nodes, &plan.run_dir, plan.faketime.clone(), links).await?
        }
        EnvKind::Netns => {
            let (ids, dir, ft) = (
                plan.nodes.clone(),
                plan.run_dir.clone(),
                plan.faketime.clone(),
            );
            let exe = std::env::current_exe().context("cannot locate the faultline executable")?;
            tokio::task::spawn_blocking(move || env::netns::build(&ids, &dir, ft, &exe)).await??
        }
        EnvKind::Ssh => {
            let hosts = plan.ssh.clone().context("--env ssh without hosts")?;
            let dir = plan.run_dir.clone();
            let exe = std::env::current_exe().context("cannot locate the faultline executable")?;
            tokio::task::spawn_blocking(move || env::ssh::build(hosts, &dir, &exe)).await??
        }
    };
    match plan.system {
        System::Kvnode => {
            let mut db = Kvnode::new(kvnode_spec(plan), &*environment.env)?;
            if let Some(n) = plan.members {
                db = db.with_members(n);
            }
            run_phases(plan, &Testbed::start(environment, db).await?).await
        }
        System::Etcd => {
            let db = Etcd::new(etcd_spec(plan), &*environment.env)?;
            run_phases(plan, &Testbed::start(environment, db).await?).await
        }
    }
}

/// How the plan runs etcd.
pub fn etcd_spec(plan: &TestPlan) -> EtcdSpec {
    let settings = plan.etcd.clone();
    EtcdSpec {
        binary: settings.as_ref().and_then(|e| e.binary.clone()),
        serializable_reads: settings.is_some_and(|e| e.serializable_reads),
        token: format!("faultline-{}", plan.seed),
    }
}

/// How the plan runs kvnode.
pub fn kvnode_spec(plan: &TestPlan) -> KvnodeSpec {
    KvnodeSpec {
        binary: plan.kvnode.clone(),
        subcommand: plan.kvnode_subcommand,
        engine: plan.engine.clone(),
        extra_args: plan
            .kvnode_args
            .iter()
            .cloned()
            .chain(plan.nwr.iter().flat_map(|n| n.kvnode_args()))
            .collect(),
        seed: plan.seed,
    }
}

/// Every phase of a run on a started testbed: wait until it serves, workers + nemesis +
/// status poller, heal, recovery, final reads; then collect logs and tear down.
pub async fn run_phases<D: Db>(plan: &TestPlan, testbed: &Testbed<D>) -> Result<FaultCounts> {
    std::fs::write(
        plan.run_dir.join(layout::CLUSTER),
        serde_json::to_string_pretty(&testbed.describe())?,
    )?;
    testbed.await_ready(Duration::from_secs(20)).await?;
    // A leaderless engine serves as soon as its nodes answer; waiting for a leader that never
    // comes would only burn the timeout.
    if !testbed.db().leaderless()
        && testbed
            .await_leader(Duration::from_secs(10))
            .await
            .is_none()
    {
        eprintln!("faultline: warning: no leader after 10 s; starting anyway");
    }
    eprintln!(
        "faultline: {} nodes up and serving after {:.1} s ({} environment)",
        testbed.members().len(),
        testbed.age().as_secs_f64(),
        testbed.env().kind().name()
    );
    let start = tokio::time::Instant::now();
    let rec = Arc::new(Recorder::create(
        &plan.run_dir.join(layout::HISTORY),
        start.into_std(),
    )?);
    let client = Arc::new(
        testbed
            .db()
            .client(Duration::from_millis(plan.op_timeout_ms))?,
    );
    let duration = Duration::from_secs_f64(plan.time_limit);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let progress = progress(rec.clone(), duration);
    let schedule = Schedule::new(ScheduleOptions {
        kinds: plan.nemesis.clone(),
        shapes: plan.partition_shapes.clone(),
        interval: Duration::from_secs_f64(plan.nemesis_interval),
        // Faults are drawn among the members (the nemesis updates them as they change).
        nodes: plan.nodes[..plan.members.unwrap_or(plan.nodes.len())].to_vec(),
        seed: plan.seed,
    });
    let load = LoadSpec {
        workload: plan.workload,
        mix: plan.mix,
        concurrency: plan.concurrency,
        rate: plan.rate,
        seed: plan.seed,
        // Workers talk to the founding members (a removed one refuses their connections).
        nodes: plan.members.unwrap_or(plan.nodes.len()),
        duration,
        max_ops: None,
    };
    let ids = Arc::new(ProcessIds::new(plan.concurrency as u64));
    let (issued, counts, ()) = tokio::join!(
        run::run_workers(
            &load,
            client.clone(),
            rec.clone(),
            ids.clone(),
            stop_rx.clone()
        ),
        run::run_nemesis(
            testbed,
            schedule,
            duration,
            &rec,
            stop_rx.clone(),
            plan.seed
        ),
        run::poll_status(testbed, &rec, duration, stop_rx),
    );
    if let Some(p) = &progress {
        p.set_message("healed; waiting for recovery");
    }
    if !testbed.await_recovery(Duration::from_secs(15)).await {
        eprintln!("faultline: warning: cluster not recovered after 15 s; final reads anyway");
    }
    run::final_reads(
        &*client,
        &rec,
        &ids,
        plan.workload,
        plan.nodes.len(),
        issued,
    )
    .await;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let _ = stop_tx.send(true);
    testbed.collect();
    testbed.teardown();
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
