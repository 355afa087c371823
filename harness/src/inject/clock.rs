//! Clock faults: a node's wall clock set to true time + an offset.
//!
//! Two mechanisms. [`Faketime`]: the node runs under libfaketime (`LD_PRELOAD`), which reads
//! its offset from a per-node file on every clock call (`FAKETIME_NO_CACHE=1`), so writing
//! that file moves the node's wall clock and nothing else; the monotonic clock stays true
//! (`FAKETIME_DONT_FAKE_MONOTONIC=1`), as on a real machine whose NTP-disciplined clock
//! jumps. It is the only choice where nodes share one kernel clock (local processes, network
//! namespaces, sshd in namespaces). [`SystemClock`]: the host's real clock, moved with
//! `clock_settime` by `faultline clock offset` run as root on the host, which remembers the
//! offset it applied so resetting restores true time — what a VM whose clock jumps sees,
//! every process on it included.
//!
//! A strobe (flip between two offsets every period) is the testbed calling
//! [`ClockFaults::set_offset`] on a timer, so it works the same on every mechanism.

use super::ClockFaults;
use crate::env::Env;
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// libfaketime offsets, one file per node in its working directory.
pub struct Faketime {
    env: Arc<dyn Env>,
    /// The library's path on the hosts.
    lib: PathBuf,
}

impl Faketime {
    /// Uses `lib` (the library as the hosts see it) and creates every node's offset file at +0.
    pub fn new(env: Arc<dyn Env>, lib: PathBuf) -> Result<Faketime> {
        let f = Faketime { env, lib };
        for i in 0..f.env.hosts().len() {
            f.set_offset(i, 0)?;
        }
        Ok(f)
    }

    fn file(&self, i: usize) -> String {
        format!("{}/faketime", self.env.hosts()[i].workdir)
    }
}

/// libfaketime's offset syntax: whole seconds, signed. Rounded away from zero so a small
/// bump still moves the clock.
pub fn faketime_offset(offset_ms: i64) -> String {
    let secs = if offset_ms == 0 {
        0
    } else {
        (offset_ms.abs() + 999) / 1000 * offset_ms.signum()
    };
    format!("{secs:+}\n")
}

impl ClockFaults for Faketime {
    fn daemon_env(&self, i: usize) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), self.lib.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE".into(), self.file(i)),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ]
    }

    fn set_offset(&self, i: usize, offset_ms: i64) -> Result<()> {
        self.env
            .write_file(i, &self.file(i), faketime_offset(offset_ms).as_bytes())
    }

    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// The hosts' own system clocks, moved by `faultline clock offset` (see `cmd/clock.rs`).
pub struct SystemClock {
    env: Arc<dyn Env>,
    /// The faultline binary on each host.
    helper: Vec<String>,
}

impl SystemClock {
    /// Uses the faultline binary installed at `helper[i]` on each host.
    pub fn new(env: Arc<dyn Env>, helper: Vec<String>) -> SystemClock {
        SystemClock { env, helper }
    }
}

impl ClockFaults for SystemClock {
    fn daemon_env(&self, _i: usize) -> Vec<(String, String)> {
        Vec::new()
    }

    fn set_offset(&self, i: usize, offset_ms: i64) -> Result<()> {
        let ms = offset_ms.to_string();
        self.env
            .exec(i, &[&self.helper[i], "clock", "offset", "--ms", &ms], true)?
            .ok(&self.env.hosts()[i].describe, "faultline clock offset")?;
        Ok(())
    }

    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// No mechanism: every clock fault fails with the reason (the run records it as
/// `clock-failed` and goes on).
pub struct NoClock(pub String);

impl ClockFaults for NoClock {
    fn daemon_env(&self, _i: usize) -> Vec<(String, String)> {
        Vec::new()
    }

    fn set_offset(&self, _i: usize, offset_ms: i64) -> Result<()> {
        if offset_ms == 0 {
            return Ok(());
        }
        bail!("{}", self.0)
    }

    fn unavailable(&self) -> Option<String> {
        Some(self.0.clone())
    }
}
