//! `faultline bench`: not built yet (see the open issues).

use std::process::ExitCode;

/// Flags of `faultline bench`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'faultline bench' is not built yet")
}
