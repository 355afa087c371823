//! Checkers: the history model and everything that judges a history.
//!
//! Pure and synchronous: no I/O beyond parsing, no dependency on any other faultline crate.
//! The principal entry points: [`history::JsonlReader`] / [`history::HistoryWriter`] for
//! `history.jsonl`, [`import::parse`] for any supported format, [`history::pair`] to turn
//! events into operations, [`linearizable::check`] for a [`linearizable::CheckResult`], and
//! [`analysis::Analysis::new`], which runs every checker over a run's history and decides its
//! verdict once (`results.json`). [`fault`] and [`cluster_state`] hold the fault vocabulary
//! and the cluster's state over time; [`explain`] and [`minimize`] turn an illegal key into a
//! minimal counterexample and a sentence whose claims are checked against the history;
//! [`layout`] names the files of a run directory.
//! Transactional workloads: [`txn::parse`] types `txn` ops once, [`elle::check`] finds
//! isolation anomalies (Elle), and [`bank`], [`set`], [`counter`] check those workloads.

pub mod analysis;
pub mod bank;
pub mod cluster_state;
pub mod counter;
pub mod elle;
pub mod explain;
pub mod fault;
pub mod ghost;
pub mod history;
pub mod import;
pub mod layout;
pub mod linearizable;
pub mod minimize;
pub mod model;
pub mod models;
pub mod nwr;
pub mod quorum;
pub mod set;
pub mod stats;
pub mod synth;
pub mod txn;
pub mod txn_section;
