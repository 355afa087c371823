//! `faultline env clean`: removes what runs killed with SIGKILL left behind — network
//! namespaces, veths (and with them every rule and qdisc inside), and on SSH hosts the
//! daemons, the FAULTLINE iptables chain, netem qdiscs and clock offsets. Only the leftovers
//! of runs whose harness is no longer running are touched: a live run is never disturbed.
//! Every run also does this itself before it starts.

use crate::env::{netns, registry};
use anyhow::Result;
use std::process::ExitCode;

/// Flags of `faultline env`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Remove the leftovers of runs that were killed before they could clean up.
    Clean,
    /// List the resources of runs this machine knows about (live and dead).
    List,
    /// Run N SSH hosts on this machine (sshd in network namespaces, root) until Ctrl-C, to
    /// try `--env ssh` without VMs; writes DIR/hosts.toml.
    Hosts {
        /// How many hosts.
        #[arg(long, default_value_t = 3, value_parser = crate::numeric::count::<usize>(1, 16))]
        nodes: usize,
        /// Where keys, the hosts file and sshd logs go.
        #[arg(long, default_value = "faultline-hosts")]
        dir: std::path::PathBuf,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Clean => {
            let netns = netns::clean_stale();
            let ssh = crate::env::ssh::clean_stale();
            println!(
                "faultline: cleaned the leftovers of {} run(s) ({} netns, {} ssh)",
                netns + ssh,
                netns,
                ssh
            );
        }
        Command::Hosts { nodes, dir } => {
            if !netns::is_root() {
                anyhow::bail!("faultline env hosts needs root (network namespaces, sshd)");
            }
            let dir = std::path::absolute(&dir)?;
            let t = std::time::Instant::now();
            let hosts =
                crate::env::sshd_hosts::SshdHosts::start(nodes, &dir, "/tmp/faultline-hosts")?;
            println!(
                "faultline: {nodes} ssh hosts up after {:.1} s; try:\n  faultline test --env ssh --hosts {} --accept-new-host-keys\nCtrl-C stops them.",
                t.elapsed().as_secs_f64(),
                hosts.hosts_file.display()
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = signal(SignalKind::terminate())?;
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                anyhow::Ok(())
            })?;
            drop(hosts);
            println!("faultline: ssh hosts stopped and removed");
        }
        Command::List => {
            for r in registry::all() {
                let state = if registry::owner_alive(&r) {
                    "running"
                } else {
                    "dead"
                };
                println!(
                    "{} pid {} ({state}): {} namespaces, {} links{}",
                    r.tag,
                    r.pid,
                    r.namespaces.len(),
                    r.links.len(),
                    r.ssh
                        .as_ref()
                        .map(|h| format!(", {} ssh hosts", h.hosts.len()))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
