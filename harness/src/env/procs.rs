//! Node daemons that are children of the harness (the local and netns environments): spawned
//! with their output appended to the node's log, signalled and killed by pid, reaped.
//!
//! Every child gets `PR_SET_PDEATHSIG = SIGKILL`, so even a SIGKILLed harness leaves no node
//! running; teardown SIGCONTs (a stopped process must not linger) and SIGKILLs every child it
//! still owns, then reaps it.
//!
//! The death signal fires when the *thread* that forked the child exits, not the process, so
//! every child is forked by one spawner thread that lives as long as [`Children`]: spawning
//! from a short-lived worker thread (a parallel start, a blocking-pool task) would kill the
//! node the moment that thread finished.

use crate::env::DaemonSpec;
use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// A spawn request for the spawner thread.
struct SpawnRequest {
    cmd: Command,
    reply: std::sync::mpsc::Sender<std::io::Result<Child>>,
}

/// The children, by host index.
pub struct Children {
    procs: Mutex<BTreeMap<usize, Child>>,
    /// The spawner thread's inbox (`None` once shutting down).
    spawner: Mutex<Option<std::sync::mpsc::Sender<SpawnRequest>>>,
}

impl Default for Children {
    fn default() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("faultline-spawner".into())
            .spawn(move || {
                for mut req in rx {
                    let _ = req.reply.send(req.cmd.spawn());
                }
            })
            .expect("cannot start the process spawner thread");
        Children {
            procs: Mutex::default(),
            spawner: Mutex::new(Some(tx)),
        }
    }
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
        let (reply, answer) = std::sync::mpsc::channel();
        let sent = self
            .spawner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|tx| tx.send(SpawnRequest { cmd, reply }).is_ok())
            .unwrap_or(false);
        if !sent {
            anyhow::bail!(
                "cannot start {}: the environment is shutting down",
                argv.join(" ")
            );
        }
        let child = answer
            .recv()
            .context("the process spawner thread is gone")?
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
        // Closing the inbox ends the spawner thread.
        self.spawner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_outlives_the_thread_that_asked_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let children = std::sync::Arc::new(Children::default());
        let c = children.clone();
        let log = dir.path().join("log");
        std::thread::spawn(move || {
            let spec = DaemonSpec {
                program: "/bin/sleep".into(),
                args: vec!["30".into()],
                env: vec![],
            };
            c.spawn(0, &[], &spec, &log).unwrap();
        })
        .join()
        .unwrap();
        // PR_SET_PDEATHSIG would have killed it when the asking thread ended.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !children.exited(0),
            "the child died with the thread that spawned it"
        );
        let pid = children.pid(0).unwrap();
        children.kill_all();
        assert!(kill(Pid::from_raw(pid as i32), None).is_err());
    }
}
