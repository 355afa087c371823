//! What a run created outside its own process, written down before it is created, so that a
//! run killed with SIGKILL can be cleaned up later: by `faultline env clean`, or by the next
//! run, which removes the leftovers of every run whose harness is gone (never those of a run
//! still alive: suites run several at once).
//!
//! One JSON file per run in `/run/faultline` (root) or `~/.cache/faultline/runs`, named by the
//! run's tag, holding the owner's pid and what to remove. Allocation of shared resources (the
//! netns subnets) happens under an exclusive lock on the directory's `lock` file.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What one run created.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// The run's resource tag.
    pub tag: String,
    /// The harness process that owns it.
    pub pid: u32,
    /// Network namespaces (netns environment).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Links in the root namespace (the harness's veth to the bridge).
    #[serde(default)]
    pub links: Vec<String>,
    /// The /24 the run's namespaces use, as its third octet in 198.18.0.0/16.
    #[serde(default)]
    pub subnet: Option<u8>,
    /// SSH hosts (ssh environment): `env clean` reconnects to them.
    #[serde(default)]
    pub ssh: Option<crate::env::hosts::Hosts>,
}

/// The registry directory.
pub fn dir() -> PathBuf {
    if crate::env::netns::is_root() {
        PathBuf::from("/run/faultline")
    } else {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        home.join(".cache/faultline/runs")
    }
}

/// Holds the registry lock while alive (released on drop).
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

/// Takes the registry's exclusive lock (blocks until free).
pub fn lock() -> Result<Lock> {
    let d = dir();
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(d.join("lock"))
        .with_context(|| format!("cannot open {}/lock", d.display()))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map(Lock)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock the registry: {e}"))
}

/// Writes (or replaces) a run's record.
pub fn save(r: &Record) -> Result<()> {
    let d = dir();
    std::fs::create_dir_all(&d)?;
    let path = d.join(format!("{}.json", r.tag));
    std::fs::write(&path, serde_json::to_vec_pretty(r)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Removes a run's record.
pub fn remove(tag: &str) {
    let _ = std::fs::remove_file(dir().join(format!("{tag}.json")));
}

/// Every record on this machine.
pub fn all() -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect()
}

/// True when the owner of a record is still running.
pub fn owner_alive(r: &Record) -> bool {
    r.pid != 0 && std::path::Path::new(&format!("/proc/{}", r.pid)).exists()
}
