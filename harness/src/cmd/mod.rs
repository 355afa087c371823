//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> Result<ExitCode>`.

pub mod analyze;
pub mod bench;
pub mod check;
pub mod check_txn;
pub mod clock;
pub mod compare;
pub mod env;
pub mod kvnode;
pub mod netdelay;
pub mod quorum;
pub mod report;
pub mod serve;
pub mod sim;
pub mod suite;
pub mod test;
