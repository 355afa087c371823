//! The `faultline` harness as a library, so integration tests can drive the pieces (the local
//! environment, the proxies, the run loop) directly; the binary in `main.rs` only parses and
//! dispatches.
//!
//! # Layout
//! - `cmd`: one module per subcommand (`Args` + `run`), exit codes decided there.
//! - [`plan`]: two-stage parsing of `faultline test` flags: raw flags → resolved [`plan::TestPlan`].
//! - [`numeric`]: parsers that bound every numeric flag (no nan, inf or absurd values).
//! - [`proxy`]: the userspace TCP proxy that sits on every directed peer link.
//! - [`local`]: the local environment (kvnode processes on loopback) and its fault injector,
//!   with the teardown guard.
//! - [`client`]: the [`client::Client`] seam; the kvnode HTTP client and the no-op client.
//! - [`recorder`]: appends history events to `history.jsonl` as they happen.
//! - [`run`]: the run loop (workers, nemesis, phases).
//! - [`rundir`]: run directory names and `results/latest` (file names: `checkers::layout`).
//! - [`results`]: a finished run's analysis, report, summary and exit code.

pub mod client;
pub mod cmd;
pub mod local;
pub mod numeric;
pub mod plan;
pub mod proxy;
pub mod recorder;
pub mod results;
pub mod run;
pub mod rundir;
