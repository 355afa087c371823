//! `faultline suite FILE.toml`: run a matrix of tests (entries × seeds) against expectations
//! and write `results/suites/<name>/<timestamp>/` with `suite.json`, `junit.xml` and the
//! comparison page. The file format and the runner live in [`crate::suite`].
//!
//! Exit codes: 0 every expectation held, 1 some verdict contradicted its expectation, 2 some
//! run was undecided (and none contradicted), 255 the harness failed (a bad suite file, or a
//! run that produced no verdict).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::suite::{exec, spec};

/// Flags of `faultline suite`.
#[derive(clap::Args)]
pub struct Args {
    /// The suite file (TOML; see suites/ and docs/suites.md).
    pub file: PathBuf,
    /// Runs at a time (each with its own cluster and ports; mind the cores).
    #[arg(long, short, default_value_t = 1, value_parser = crate::numeric::count::<usize>(1, 64))]
    pub jobs: usize,
    /// Seeds for every entry, overriding the file: a list (1,2,5) or a range (1..10).
    #[arg(long, value_parser = parse_seeds, value_name = "SEEDS")]
    pub seeds: Option<Seeds>,
    /// Run only these entries (comma-separated names from the file), e.g. to re-measure one row.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub only: Vec<String>,
    /// Results directory; the suite goes to DIR/suites/<name>/<timestamp>/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

/// The seeds of `--seeds` (one value: a list or a range, not one value per seed).
#[derive(Debug, Clone)]
pub struct Seeds(pub Vec<u64>);

fn parse_seeds(s: &str) -> Result<Seeds, String> {
    spec::parse_seeds(s).map(Seeds)
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut suite = spec::load(&args.file, args.seeds.as_ref().map(|s| s.0.as_slice()))?;
    if !args.only.is_empty() {
        suite = suite.only(&args.only)?;
    }
    let exe = std::env::current_exe().context("cannot locate the faultline executable")?;
    let dir = exec::create_suite_dir(&args.results, &suite.name)?;
    let opts = exec::Options {
        jobs: args.jobs,
        exe,
    };
    let result = exec::run_suite(&suite, &dir, &opts)?;
    if let Some(parent) = dir.parent() {
        let _ = crate::rundir::link_latest(parent, &dir);
    }
    let count = |o: report::suite::Outcome| result.runs.iter().filter(|r| r.outcome == o).count();
    use report::suite::Outcome::*;
    println!(
        "suite {}: {} runs in {:.0} s: {} as expected, {} not, {} undecided, {} without verdict \
         (exit {})\n  page:  {}\n  junit: {}",
        result.name,
        result.runs.len(),
        result.wall_s,
        count(Held) + count(Reported),
        count(NotHeld),
        count(Unknown),
        count(Error),
        result.exit_code,
        dir.join(checkers::layout::INDEX).display(),
        dir.join(report::suite::JUNIT_XML).display(),
    );
    Ok(ExitCode::from(result.exit_code))
}
