//! Checkers: the history model and everything that judges a history.
//!
//! Pure and synchronous: no I/O beyond parsing, no dependency on any other faultline crate.

pub mod history;
