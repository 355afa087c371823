//! Suites: many `faultline test` runs (entries × seeds) judged against expectations, for
//! nightly validation and for comparing protocol variants side by side.
//!
//! A suite file is plain TOML a user copies and edits (the bundled ones live in `suites/`):
//!
//! ```toml
//! name = "bug-zoo"
//! seeds = [1, 2, 3]
//! time_limit = 20                 # seconds of each run's main phase
//! args = ["--nemesis", "partition"]   # faultline test flags every entry shares
//!
//! [[entry]]
//! name = "raft-unsafe-local"      # the row of the comparison page
//! args = ["--kvnode-args", "--read unsafe-local"]
//! expect = "invalid"              # valid | invalid | report
//! ```
//!
//! [`spec`] reads and validates the file (every error names file:line; every entry's flags go
//! through `faultline test`'s own parser and resolver before anything starts), [`exec`] runs
//! the matrix and [`junit`] writes the JUnit report. The results' shape, `suite.json`, and the
//! comparison page belong to the report crate ([`report::suite`]).

pub mod exec;
pub mod junit;
pub mod spec;
