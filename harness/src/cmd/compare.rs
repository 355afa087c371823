//! `faultline compare RUN_DIR...`: one HTML page comparing runs side by side (verdicts,
//! anomalies, availability during faults, latency, throughput). Rendering lives in
//! [`report::render_compare`]; this module picks the output file and renders missing plots.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// Flags of `faultline compare`.
#[derive(clap::Args)]
pub struct Args {
    /// Run directories to compare (at least one), in the order they should appear.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Where to write the page.
    #[arg(long, short, default_value = "compare.html")]
    pub out: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    for dir in &args.runs {
        if !dir.join(checkers::layout::RATE).exists() {
            report::render_run(dir)
                .with_context(|| format!("could not render {}", dir.display()))?;
        }
    }
    let out_dir = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let html =
        report::render_compare(&args.runs, &out_dir).context("could not compare the runs")?;
    std::fs::write(&args.out, html)
        .with_context(|| format!("could not write {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
