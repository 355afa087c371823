//! `faultline report RUN_DIR`: regenerates every plot and page of a stored run directory.
//!
//! Rendering itself lives in the `report` crate ([`report::render_run`]); this module only
//! resolves the directory, prints where the pages are, and maps failures to the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// Flags of `faultline report`.
#[derive(clap::Args)]
pub struct Args {
    /// The run directory (e.g. results/latest or results/<test>/<timestamp>), holding history.jsonl.
    pub run_dir: PathBuf,
}

/// Runs the subcommand: renders the run and prints the files written.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let out = report::render_run(&args.run_dir)
        .with_context(|| format!("could not render the report of {}", args.run_dir.display()))?;
    println!(
        "verdict: {} ({} operations, {} faults)",
        report::verdict_label(out.verdict),
        out.summary.ops,
        out.summary.faults
    );
    for f in &out.files {
        println!("wrote {}", f.display());
    }
    if let Some(index) = out.index() {
        println!(
            "report: {} (rendered in {:.2} s)",
            index.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
