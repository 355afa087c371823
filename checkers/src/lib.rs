//! Checkers: the history model and everything that judges a history.
//!
//! Pure and synchronous: no I/O beyond parsing, no dependency on any other faultline crate.
//! The principal entry points: [`history::JsonlReader`] / [`history::HistoryWriter`] for
//! `history.jsonl`, [`import::parse`] for any supported format, [`history::pair`] to turn
//! events into operations, and [`linearizable::check`] for a [`linearizable::CheckResult`].

pub mod analysis;
pub mod fault;
pub mod ghost;
pub mod history;
pub mod import;
pub mod linearizable;
pub mod model;
pub mod models;
pub mod nwr;
pub mod quorum;
pub mod stats;
pub mod synth;
