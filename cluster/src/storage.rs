//! Durable storage shared by all engines: an append-only record file holding log entries,
//! truncation markers and the engine's hard state, each record checksummed.
//!
//! The engine keeps its whole log in memory (runs are short; there is no snapshotting or log
//! compaction) and tells the driver what to persist in each `Ready`; this module only makes
//! that durable and replays it at startup.
//!
//! # File format (`<data-dir>/kvnode.log`)
//!
//! A sequence of records `[len: u32 LE][crc32(body): u32 LE][body: len bytes of JSON]`,
//! where body is a [`Record`]. Replay applies them in order: `Entry` stores/replaces the
//! entry at its index, `Truncate { from }` drops entries with index >= from, `HardState`
//! replaces the hard state. A record that runs past the end of the file, or whose checksum
//! fails and which is the last record in the file, is a torn write from a crash before
//! fsync: it is dropped and the file truncated there (it was never acknowledged). Any other
//! damage is [`StorageError::Corrupt`], naming the file and the byte offset, and the node
//! refuses to start.
//!
//! # Failure contract
//!
//! [`Storage::persist`] returns only after the data is durable (when `sync` is set). If it
//! fails, the caller must stop the node: the engine has already assumed success.

use crate::msg::Entry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// File name of the record log inside the data directory.
pub const LOG_FILE: &str = "kvnode.log";

/// Largest record body accepted at replay; anything bigger is corruption.
const MAX_RECORD: u32 = 256 * 1024 * 1024;

/// Errors from storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O error on a file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Damage that is not a torn final write.
    #[error("corrupt log {path} at byte offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Offset of the bad record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// One record of the log file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Record {
    /// Store or replace an entry.
    Entry(Entry),
    /// Drop all entries with index >= `from`.
    Truncate {
        /// First dropped index.
        from: u64,
    },
    /// Replace the engine's hard state (opaque, engine-encoded).
    HardState(Vec<u8>),
}

/// What a node finds in storage at startup.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Last stored hard state, if any.
    pub hard_state: Option<Vec<u8>>,
    /// Stored entries by index (Raft: contiguous from 1; others may have holes).
    pub entries: BTreeMap<u64, Entry>,
}

/// Durable storage for one node.
pub trait Storage: Send {
    /// What was stored before this process started.
    fn recovered(&self) -> Recovered;
    /// Truncate, then store entries, then hard state; durable on return if `sync`.
    fn persist(
        &mut self,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
        sync: bool,
    ) -> Result<(), StorageError>;
}

/// In-memory storage (tests; durability is the process lifetime).
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    /// Current contents.
    pub state: Recovered,
}

impl Storage for MemStorage {
    fn recovered(&self) -> Recovered {
        self.state.clone()
    }

    fn persist(
        &mut self,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
        _sync: bool,
    ) -> Result<(), StorageError> {
        apply_truncate(&mut self.state.entries, truncate_from);
        for e in entries {
            self.state.entries.insert(e.index, e.clone());
        }
        if let Some(hs) = hard_state {
            self.state.hard_state = Some(hs.to_vec());
        }
        Ok(())
    }
}

fn apply_truncate(entries: &mut BTreeMap<u64, Entry>, from: Option<u64>) {
    if let Some(from) = from {
        entries.split_off(&from);
    }
}

/// File-backed storage: the record log described in the module doc.
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    file: File,
    recovered: Recovered,
    /// Whether to fsync at all (`--no-fsync`, benchmarking only: unsafe).
    fsync: bool,
    /// Reused encoding buffer (one write syscall per persist).
    buf: Vec<u8>,
}

impl FileStorage {
    /// Opens (creating if needed) the log in `dir` and replays it.
    pub fn open(dir: &Path, fsync: bool) -> Result<Self, StorageError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io(&path))?;
        let (recovered, valid_len) = replay(&path, &data)?;
        if valid_len < data.len() as u64 {
            tracing::warn!(
                file = %path.display(),
                offset = valid_len,
                dropped_bytes = data.len() as u64 - valid_len,
                "dropping torn record at log tail"
            );
            file.set_len(valid_len).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io(&path))?;
        // Make the directory entry durable too (first start).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(FileStorage {
            path,
            file,
            recovered,
            fsync,
            buf: Vec::new(),
        })
    }

    /// Path of the log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn encode(buf: &mut Vec<u8>, rec: &Record) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]);
    serde_json::to_writer(&mut *buf, rec).expect("records always serialize");
    let body = &buf[start + 8..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Replays `data`, returning the state and the length of the valid prefix.
fn replay(path: &Path, data: &[u8]) -> Result<(Recovered, u64), StorageError> {
    let mut rec = Recovered::default();
    let mut off = 0usize;
    let corrupt = |offset: usize, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    while off < data.len() {
        if data.len() - off < 8 {
            break; // torn header
        }
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap());
        let crc = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap());
        let end = off + 8 + len as usize;
        if len > MAX_RECORD {
            if end >= data.len() {
                break;
            }
            return Err(corrupt(off, format!("record length {len} is implausible")));
        }
        if end > data.len() {
            break; // torn body
        }
        let body = &data[off + 8..end];
        if crc32fast::hash(body) != crc {
            if end == data.len() {
                break; // torn final record
            }
            return Err(corrupt(off, "checksum mismatch".into()));
        }
        let r: Record = serde_json::from_slice(body)
            .map_err(|e| corrupt(off, format!("undecodable record: {e}")))?;
        match r {
            Record::Entry(e) => {
                rec.entries.insert(e.index, e);
            }
            Record::Truncate { from } => apply_truncate(&mut rec.entries, Some(from)),
            Record::HardState(hs) => rec.hard_state = Some(hs),
        }
        off = end;
    }
    Ok((rec, off as u64))
}

impl Storage for FileStorage {
    fn recovered(&self) -> Recovered {
        self.recovered.clone()
    }

    fn persist(
        &mut self,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
        sync: bool,
    ) -> Result<(), StorageError> {
        self.buf.clear();
        if let Some(from) = truncate_from {
            encode(&mut self.buf, &Record::Truncate { from });
        }
        for e in entries {
            encode(&mut self.buf, &Record::Entry(e.clone()));
        }
        if let Some(hs) = hard_state {
            encode(&mut self.buf, &Record::HardState(hs.to_vec()));
        }
        let err = |source| StorageError::Io {
            path: self.path.clone(),
            source,
        };
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(err)?;
        }
        if sync && self.fsync {
            self.file.sync_data().map_err(|source| StorageError::Io {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Payload;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    #[test]
    fn replay_truncation_and_hard_state() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = FileStorage::open(dir.path(), true).unwrap();
            s.persist(None, &[e(1, 1), e(2, 1), e(3, 1)], Some(b"a"), true)
                .unwrap();
            s.persist(Some(2), &[e(2, 2)], Some(b"b"), true).unwrap();
        }
        let s = FileStorage::open(dir.path(), true).unwrap();
        let r = s.recovered();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[&2].term, 2);
        assert_eq!(r.hard_state.as_deref(), Some(&b"b"[..]));
    }

    #[test]
    fn torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = FileStorage::open(dir.path(), true).unwrap();
            s.persist(None, &[e(1, 1)], None, true).unwrap();
            s.persist(None, &[e(2, 1)], None, true).unwrap();
        }
        let p = dir.path().join(LOG_FILE);
        let len = std::fs::metadata(&p).unwrap().len();
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 3).unwrap();
        let mut s = FileStorage::open(dir.path(), true).unwrap();
        assert_eq!(s.recovered().entries.len(), 1);
        s.persist(None, &[e(2, 2)], None, true).unwrap();
        drop(s);
        let s = FileStorage::open(dir.path(), true).unwrap();
        assert_eq!(s.recovered().entries[&2].term, 2);
    }

    #[test]
    fn corruption_in_the_middle_is_an_error_naming_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = FileStorage::open(dir.path(), true).unwrap();
            s.persist(None, &[e(1, 1)], None, true).unwrap();
            s.persist(None, &[e(2, 1)], None, true).unwrap();
        }
        let p = dir.path().join(LOG_FILE);
        let mut data = std::fs::read(&p).unwrap();
        data[10] ^= 0xff;
        std::fs::write(&p, &data).unwrap();
        let err = FileStorage::open(dir.path(), true).unwrap_err().to_string();
        assert!(err.contains("offset 0"), "{err}");
        assert!(err.contains(LOG_FILE), "{err}");
    }
}
