//! `faultline kvnode ...`: runs the bundled kvnode in this process, so one binary serves as
//! both harness and system under test (the local environment spawns itself with `kvnode`).

use std::ffi::OsString;
use std::process::ExitCode;

/// Runs kvnode with the given arguments (argv[0] is supplied here).
pub fn run(args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let mut argv = vec![OsString::from("kvnode")];
    argv.extend(args);
    Ok(cluster::run_cli(argv))
}
