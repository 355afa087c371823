//! The `faultline` harness as a library, so integration tests can drive the pieces (the local
//! environment, the proxies, the run loop) directly; the binary in `main.rs` only parses and
//! dispatches.
//!
//! # Layout
//! - `cmd`: one module per subcommand (`Args` + `run`), exit codes decided there.
//! - [`plan`]: two-stage parsing of `faultline test` flags: raw flags → resolved [`plan::TestPlan`].
//! - [`numeric`]: parsers that bound every numeric flag (no nan, inf or absurd values).
//! - [`env`]: environments (local processes, network namespaces, SSH hosts): hosts, commands,
//!   daemons, cleanup.
//! - [`inject`]: fault injectors per environment (proxies, iptables, netem, clocks).
//! - [`db`]: DB adapters (kvnode): install, daemon, who leads, client.
//! - [`testbed`]: a system on an environment with its injectors; applies faults; teardown guard.
//! - [`client`]: the [`client::Client`] seam; the kvnode HTTP client and the no-op client.
//! - [`recorder`]: appends history events to `history.jsonl` as they happen.
//! - [`run`]: the run loop (workers, nemesis, phases).
//! - [`rundir`]: run directory names and `results/latest` (file names: `checkers::layout`).
//! - [`results`]: a finished run's analysis, report, summary and exit code.
//! - [`suite`]: suite files and the runner behind `faultline suite` (many runs, expectations).

pub mod client;
pub mod cmd;
pub mod db;
pub mod env;
pub mod inject;
pub mod numeric;
pub mod plan;
pub mod recorder;
pub mod results;
pub mod run;
pub mod rundir;
pub mod suite;
pub mod testbed;
