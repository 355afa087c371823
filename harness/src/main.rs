//! `faultline`: a Jepsen-style consistency testing harness. `main` only parses and dispatches;
//! each subcommand lives in `cmd/`, and exit codes are decided there.

use harness::cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Command-line interface of faultline.
#[derive(Parser)]
#[command(
    name = "faultline",
    version,
    about = "Jepsen-style black-box consistency testing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a cluster, drive it through faults, check the history and report (the embedded default).
    Test(Box<cmd::test::Args>),
    /// Check a history file (faultline JSONL, Jepsen EDN or Porcupine logs) for linearizability.
    Check(cmd::check::Args),
    /// Re-run the checkers on a stored run directory.
    Analyze(cmd::analyze::Args),
    /// Regenerate plots and HTML for a stored run directory.
    Report(cmd::report::Args),
    /// Serve the results directory as a small web UI.
    Serve(cmd::serve::Args),
    /// Run a suite file: many tests (variants x seeds) against expectations, with JUnit and a
    /// comparison page.
    Suite(cmd::suite::Args),
    /// Compare several runs side by side (verdicts, anomalies, availability, latency, staleness).
    Compare(cmd::compare::Args),
    /// Static quorum analysis for N, W, R: intersection, fault tolerance, PBS staleness.
    Quorum(cmd::quorum::Args),
    /// Simulate the whole cluster deterministically: hunt seeds, replay one exactly, shrink.
    Sim(Box<cmd::sim::Args>),
    /// Benchmarks: the harness's own overhead, or systems side by side through one client
    /// (the checker, kvnode and report benches are `cargo bench -p checkers|cluster|report`).
    Bench(cmd::bench::Args),
    /// Environment upkeep: clean what SIGKILLed runs left behind, list runs, run local SSH hosts.
    Env(cmd::env::Args),
    /// Move this machine's system clock (root; what clock faults run on VMs).
    Clock(cmd::clock::Args),
    /// Delay packets of a netfilter queue (packet faults on kernels without tc netem).
    #[command(hide = true)]
    Netdelay(cmd::netdelay::Args),
    /// Run the bundled kvnode server (the same binary as `kvnode`; used by the local environment).
    #[command(hide = true, disable_help_flag = true)]
    Kvnode {
        /// Arguments passed verbatim to kvnode.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 255 } else { 0 };
            // Usage errors exit 255 (harness error): 1 and 2 mean "anomaly" and "unknown".
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Test(a) => cmd::test::run(*a),
        Command::Check(a) => cmd::check::run(a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Suite(a) => cmd::suite::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Quorum(a) => cmd::quorum::run(a),
        Command::Sim(a) => cmd::sim::run(*a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Env(a) => cmd::env::run(a),
        Command::Clock(a) => cmd::clock::run(a),
        Command::Netdelay(a) => cmd::netdelay::run(a),
        Command::Kvnode { args } => cmd::kvnode::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("faultline: {err:#}");
            // 255: the harness itself failed (distinct from valid/invalid/unknown).
            ExitCode::from(255)
        }
    }
}
