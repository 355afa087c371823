//! `faultline report`: not built yet (see the open issues).

use std::process::ExitCode;

/// Flags of `faultline report`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'faultline report' is not built yet")
}
