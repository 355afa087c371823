//! The `kvnode` binary: parses argv and runs the node (all logic lives in the library, so
//! that `faultline kvnode ...` can embed the same code).

fn main() -> std::process::ExitCode {
    cluster::run_cli(std::env::args_os().collect())
}
