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
