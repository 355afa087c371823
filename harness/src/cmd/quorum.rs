//! `faultline quorum`: not built yet (see the open issues).

use std::process::ExitCode;

/// Flags of `faultline quorum`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'faultline quorum' is not built yet")
}
