//! `faultline compare`: not built yet (see the open issues).

use std::process::ExitCode;

/// Flags of `faultline compare`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'faultline compare' is not built yet")
}
