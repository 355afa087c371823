//! `faultline analyze RUN_DIR`: re-runs the checkers on a stored history, rewrites
//! `results.json` (and the report), prints the summary; exit 0 valid, 1 invalid, 2 unknown.
//! This is also how a `results.json` written by an older faultline is upgraded to the
//! current shape (minimal counterexamples, cluster timeline, typed sections).

use crate::results;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Flags of `faultline analyze`.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory holding history.jsonl (e.g. results/latest).
    pub run_dir: PathBuf,
    /// Time budget of the linearizability check, seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS",
          value_parser = crate::numeric::secs(0.001, crate::numeric::MAX_BUDGET_S))]
    pub check_timeout: f64,
    /// Skip re-rendering the HTML report.
    #[arg(long)]
    pub no_report: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (a, observed) =
        results::analyze_dir(&args.run_dir, Duration::from_secs_f64(args.check_timeout))?;
    let report = if args.no_report {
        None
    } else {
        results::render_report(&args.run_dir, observed.as_ref().map(|o| (&a, o)))
    };
    results::print_summary(&a, &args.run_dir, report.as_deref());
    Ok(results::exit_code(&a))
}
