//! Node daemons that are children of the harness (the local and netns environments): spawned
//! with their output appended to the node's log, signalled and killed by pid, reaped.
//!
//! Every child gets `PR_SET_PDEATHSIG = SIGKILL`, so even a SIGKILLed harness leaves no node
//! running; teardown SIGCONTs (a stopped process must not linger) and SIGKILLs every child it
//! still owns, then reaps it.

use crate::env::DaemonSpec;
use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// The children, by host index.
#[derive(Default)]
pub struct Children {
    procs: Mutex<BTreeMap<usize, Child>>,
}

impl Children {
    /// Starts `prefix + spec.program + spec.args` for host `i`, output appended to `log`.
    pub fn spawn(&self, i: usize, prefix: &[String], spec: &DaemonSpec, log: &Path) -> Result<()> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let argv: Vec<&str> = prefix
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(spec.program.as_str()))
            .chain(spec.args.iter().map(String::as_str))
            .collect();
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .envs(spec.env.iter().map(|(k, v)| (k, v)));
        // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", argv.join(" ")))?;
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(i, child);
        Ok(())
    }

    /// Sends `sig` to host `i`'s child, if any.
    pub fn signal(&self, i: usize, sig: Signal) -> Result<()> {
        if let Some(pid) = self.pid(i) {
            kill(Pid::from_raw(pid as i32), sig)
                .with_context(|| format!("cannot send {sig} to pid {pid}"))?;
        }
        Ok(())
    }

    /// SIGKILLs host `i`'s child and reaps it.
    pub fn kill(&self, i: usize) -> Result<()> {
        let child = self
            .procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&i);
        if let Some(mut c) = child {
            let _ = c.kill();
            c.wait().context("cannot reap a killed node")?;
        }
        Ok(())
    }

    /// Host `i`'s child's pid.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&i)
            .map(Child::id)
    }

    /// True when host `i`'s child exited on its own.
    pub fn exited(&self, i: usize) -> bool {
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        procs
            .get_mut(&i)
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// Every pid still owned.
    pub fn pids(&self) -> Vec<u32> {
        let procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        procs.values().map(Child::id).collect()
    }

    /// Resumes, kills and reaps every child.
    pub fn kill_all(&self) {
        let mut procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        for c in procs.values() {
            let pid = Pid::from_raw(c.id() as i32);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = kill(pid, Signal::SIGKILL);
        }
        for (_, mut c) in std::mem::take(&mut *procs) {
            let _ = c.wait();
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.kill_all();
    }
}
