//! kvnode: the bundled replicated key-value store that faultline tests (a black box to the harness).

use std::ffi::OsString;
use std::process::ExitCode;

/// Runs kvnode's command line (argv[0] first) to completion and returns its exit code.
pub fn run_cli(argv: Vec<OsString>) -> ExitCode {
    let _ = argv;
    eprintln!("kvnode: not built yet");
    ExitCode::from(2)
}
