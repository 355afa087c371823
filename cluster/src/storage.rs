//! Durable storage shared by all engines: an append-only record file holding log entries,
//! truncation markers and the engine's hard state, each record checksummed, plus the latest
//! snapshot of the state machine, below which the log is compacted away.
//!
//! The engine keeps its log since the last snapshot in memory and tells the driver what to
//! persist in each `Ready`; this module only makes that durable and replays it at startup.
//!
//! # File format (`<data-dir>/kvnode.log`)
//!
//! A sequence of records `[len: u32 LE][crc32(body): u32 LE][body: len bytes of JSON]`,
//! where body is a [`Record`]. Replay applies them in order: `Entry` stores/replaces the
//! entry at its index, `Truncate { from }` drops entries with index >= from, `HardState`
//! replaces the hard state. This one file is everything kvnode makes durable (the hard
//! state is a record in it), so the rule below covers all of its durable state.
//!
//! # Torn tail or corruption
//!
//! A record is *damaged* when its header is cut short, its length is 0 or implausible or
//! runs past the end of the file, or its checksum fails. At the first damaged record replay
//! scans forward, byte by byte, for any record whose header and checksum verify and whose
//! body decodes. If one exists, the damage is in the middle of the log:
//! [`StorageError::Corrupt`] names the file, the offset of the damage and of the valid
//! record after it, and the node refuses to start, leaving the file untouched (the bytes
//! after the damage may hold acknowledged writes). If none exists, the damage is a torn
//! tail — the last `write` before a crash, never fsynced and so never acknowledged: partly
//! written, or (on filesystems that extend the file before writing its data block)
//! zero-filled. It is dropped and the file truncated at the damaged record.
//!
//! Why the scan cannot be fooled by record contents: a verified header needs a length of at
//! most [`MAX_RECORD`], so its fourth byte is below 0x20; JSON bodies never contain a raw
//! byte below 0x20 (serde_json escapes control characters), so no header can be read out of
//! the middle of a body, whatever strings clients store. Zero-filled space would verify as a
//! record of length 0 with checksum 0 (crc32 of nothing), which is why length 0 is damage.
//!
//! What this cannot tell apart: bit rot inside the *final* record looks like a torn write
//! and is dropped (with a warning); and a crash in the middle of a multi-page write on a
//! filesystem that writes pages out of order can leave a hole followed by valid records of
//! that same unacknowledged write, which is refused like mid-file corruption (safe: an
//! operator decides, with the offsets in the error).
//!
//! # Snapshots and compaction (`<data-dir>/kvnode.snap`)
//!
//! [`Storage::save_snapshot`] replaces the snapshot crash-safely and only then compacts the
//! log, in this order:
//!
//! 1. write the snapshot (format in `snapshot.rs`, both parts checksummed) to
//!    `kvnode.snap.tmp`, fsync it, rename it over `kvnode.snap`, fsync the directory;
//! 2. rewrite the log without the entries the snapshot covers (all entries, when the
//!    snapshot replaces a conflicting log): the last hard state and the kept entries go to
//!    `kvnode.log.tmp`, which is fsynced and renamed over `kvnode.log`, directory fsynced.
//!
//! A crash before the first rename leaves the old snapshot and the whole log (a leftover
//! `.tmp` is deleted at startup, whatever it holds); a crash between the renames leaves the
//! new snapshot beside a log that still holds entries it covers — the engine ignores those
//! at startup (Raft also drops a log whose entry at the snapshot's index has another term,
//! as the install would have). So the log is truncated only once the snapshot that replaces
//! it is durable. A `kvnode.snap` that does not verify was fsynced before its rename, so it
//! is damage, not a torn write: the node refuses to start and names the file and offset.
//!
//! # Failure contract
//!
//! [`Storage::persist`] returns only after the data is durable (when `sync` is set). If it
//! fails, the caller must stop the node: the engine has already assumed success.

use crate::msg::Entry;
use crate::snapshot::Snapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the record log inside the data directory.
pub const LOG_FILE: &str = "kvnode.log";
/// File name of the snapshot inside the data directory.
pub const SNAPSHOT_FILE: &str = "kvnode.snap";
/// Suffix of a file being written before its rename into place.
const TMP_SUFFIX: &str = ".tmp";

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
    /// Stored entries by index (Raft: contiguous; others may have holes). May still hold
    /// entries the snapshot covers (a crash before compaction): engines skip those.
    pub entries: BTreeMap<u64, Entry>,
    /// The latest durable snapshot, if any.
    pub snapshot: Option<Arc<Snapshot>>,
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
    /// Makes `snap` the durable snapshot, then drops the stored entries it covers (with
    /// `keep_log` false: every stored entry). Durable on return (module doc for the order).
    fn save_snapshot(&mut self, snap: &Snapshot, keep_log: bool) -> Result<(), StorageError>;
}

/// In-memory storage with a disk's fsync semantics, for engine tests and the simulator.
///
/// A persist writes its records to a page-cache view; only a sync makes them durable
/// ([`MemStorage::state`]). A process that restarts without a crash of the machine sees
/// everything written ([`Storage::recovered`]); a crash ([`MemStorage::crash`]) keeps the
/// durable state plus a prefix of the unsynced records, in write order: nothing, some whole
/// writes, or a torn last write — exactly what [`FileStorage`]'s replay makes of a log whose
/// unsynced tail was cut anywhere.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    /// What is durable: what survives a crash.
    pub state: Recovered,
    /// Written but not yet synced, in write order.
    unsynced: Vec<Record>,
}

impl MemStorage {
    /// Writes without syncing: the records stay in the page cache until [`MemStorage::sync`].
    pub fn write(
        &mut self,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
    ) {
        if let Some(from) = truncate_from {
            self.unsynced.push(Record::Truncate { from });
        }
        self.unsynced
            .extend(entries.iter().map(|e| Record::Entry(e.clone())));
        if let Some(hs) = hard_state {
            self.unsynced.push(Record::HardState(hs.to_vec()));
        }
    }

    /// Makes every written record durable.
    pub fn sync(&mut self) {
        self.sync_upto(self.unsynced.len());
    }

    /// Makes the first `records` unsynced records durable: an fsync that completed before
    /// the writes after them were issued.
    pub fn sync_upto(&mut self, records: usize) {
        let n = records.min(self.unsynced.len());
        for r in self.unsynced.drain(..n) {
            apply_record(&mut self.state, r);
        }
    }

    /// Records written since the last sync.
    pub fn unsynced(&self) -> usize {
        self.unsynced.len()
    }

    /// The machine crashes: the first `keep` unsynced records reach the disk (a torn last
    /// write when `keep` ends inside one), the rest are lost.
    pub fn crash(&mut self, keep: usize) {
        let keep = keep.min(self.unsynced.len());
        for r in self.unsynced.drain(..).take(keep) {
            apply_record(&mut self.state, r);
        }
    }
}

impl Storage for MemStorage {
    fn recovered(&self) -> Recovered {
        let mut r = self.state.clone();
        for rec in &self.unsynced {
            apply_record(&mut r, rec.clone());
        }
        r
    }

    fn persist(
        &mut self,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
        sync: bool,
    ) -> Result<(), StorageError> {
        self.write(truncate_from, entries, hard_state);
        if sync {
            self.sync();
        }
        Ok(())
    }

    /// The file version rewrites the log from everything written (page cache included) and
    /// fsyncs it, so every unsynced record becomes durable here too.
    fn save_snapshot(&mut self, snap: &Snapshot, keep_log: bool) -> Result<(), StorageError> {
        self.sync();
        compact(&mut self.state.entries, snap.index, keep_log);
        self.state.snapshot = Some(Arc::new(snap.clone()));
        Ok(())
    }
}

/// Drops the entries a snapshot at `index` covers (all of them unless `keep_log`).
fn compact(entries: &mut BTreeMap<u64, Entry>, index: u64, keep_log: bool) {
    if keep_log {
        *entries = entries.split_off(&(index + 1));
    } else {
        entries.clear();
    }
}

/// Applies one record to replayed state (the replay rule of the module doc).
fn apply_record(rec: &mut Recovered, r: Record) {
    match r {
        Record::Entry(e) => {
            rec.entries.insert(e.index, e);
        }
        Record::Truncate { from } => apply_truncate(&mut rec.entries, Some(from)),
        Record::HardState(hs) => rec.hard_state = Some(hs),
    }
}

fn apply_truncate(entries: &mut BTreeMap<u64, Entry>, from: Option<u64>) {
    if let Some(from) = from {
        entries.split_off(&from);
    }
}

/// File-backed storage: the record log and snapshot described in the module doc.
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    recovered: Recovered,
    /// Whether to fsync at all (`--no-fsync`, benchmarking only: unsafe).
    fsync: bool,
    /// Reused encoding buffer (one write syscall per persist).
    buf: Vec<u8>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { path, source }
}

/// fsyncs a directory, so a rename or a new file in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes `bytes` to `dir/name.tmp`, fsyncs it, renames it over `dir/name` and fsyncs the
/// directory: afterwards `dir/name` is either wholly the old or wholly the new contents.
fn replace_file(dir: &Path, name: &str, bytes: &[u8], fsync: bool) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let dst = dir.join(name);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    if fsync {
        f.sync_all().map_err(io_err(&tmp))?;
    }
    drop(f);
    std::fs::rename(&tmp, &dst).map_err(io_err(&dst))?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Loads and verifies `dir/kvnode.snap`, if there is one.
fn load_snapshot(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    Snapshot::decode(&bytes)
        .map(Some)
        .map_err(|e| StorageError::Corrupt {
            path: path.clone(),
            offset: e.offset,
            reason: format!(
                "{}; a snapshot is fsynced before it is renamed into place, so this is \
                 damage, not a torn write, and the log it replaced may be compacted away: \
                 refusing to start (restore the data dir, e.g. from a replica)",
                e.reason
            ),
        })
}

impl FileStorage {
    /// Opens (creating if needed) the log and snapshot in `dir` and replays them.
    pub fn open(dir: &Path, fsync: bool) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        for name in [LOG_FILE, SNAPSHOT_FILE] {
            let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
            if tmp.exists() {
                tracing::warn!(file = %tmp.display(), "removing a file left by a crash before its rename");
                std::fs::remove_file(&tmp).map_err(io_err(&tmp))?;
            }
        }
        let snapshot = load_snapshot(dir)?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io_err(&path))?;
        let Replayed {
            mut recovered,
            valid_len,
            torn,
        } = replay(&path, &data)?;
        if let Some(damage) = torn {
            tracing::warn!(
                file = %path.display(),
                offset = valid_len,
                dropped_bytes = data.len() as u64 - valid_len,
                damage = %damage,
                "dropping torn record at log tail (no valid record follows it)"
            );
            file.set_len(valid_len).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        // Make the directory entry durable too (first start).
        let _ = sync_dir(dir);
        recovered.snapshot = snapshot.map(Arc::new);
        Ok(FileStorage {
            dir: dir.to_path_buf(),
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

    /// Rewrites the log as its last hard state plus the entries after `index` (none unless
    /// `keep_log`), atomically.
    fn compact_log(&mut self, index: u64, keep_log: bool) -> Result<(), StorageError> {
        let data = std::fs::read(&self.path).map_err(io_err(&self.path))?;
        let mut rec = replay(&self.path, &data)?.recovered;
        compact(&mut rec.entries, index, keep_log);
        self.buf.clear();
        if let Some(hs) = rec.hard_state {
            encode(&mut self.buf, &Record::HardState(hs));
        }
        for e in rec.entries.into_values() {
            encode(&mut self.buf, &Record::Entry(e));
        }
        let buf = std::mem::take(&mut self.buf);
        replace_file(&self.dir, LOG_FILE, &buf, self.fsync)?;
        self.buf = buf;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        Ok(())
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

/// Why a record is damaged (cheap to produce: the forward scan tries every offset).
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Fewer than 8 bytes left.
    ShortHeader(usize),
    /// Length 0: never written by us, typical of zero-filled space.
    ZeroLength,
    /// Length above [`MAX_RECORD`].
    Implausible(u32),
    /// Length beyond the end of the file (file length attached).
    PastEnd(u32, usize),
    /// Body does not match its checksum.
    Checksum,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Damage::ShortHeader(n) => write!(f, "record header cut short ({n} of 8 bytes)"),
            Damage::ZeroLength => write!(f, "record length 0 (zero-filled space)"),
            Damage::Implausible(len) => {
                write!(
                    f,
                    "record length {len} is implausible (at most {MAX_RECORD})"
                )
            }
            Damage::PastEnd(len, file) => write!(
                f,
                "record length {len} runs past the end of the file ({file} bytes)"
            ),
            Damage::Checksum => write!(f, "checksum mismatch"),
        }
    }
}

/// The body length of the record at `off` if its header and checksum hold.
fn check_record(data: &[u8], off: usize) -> Result<usize, Damage> {
    let rest = data.len() - off;
    if rest < 8 {
        return Err(Damage::ShortHeader(rest));
    }
    let len = u32::from_le_bytes(data[off..off + 4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(data[off + 4..off + 8].try_into().expect("4 bytes"));
    if len == 0 {
        return Err(Damage::ZeroLength);
    }
    if len > MAX_RECORD {
        return Err(Damage::Implausible(len));
    }
    if len as usize > rest - 8 {
        return Err(Damage::PastEnd(len, data.len()));
    }
    let body = &data[off + 8..off + 8 + len as usize];
    if crc32fast::hash(body) != crc {
        return Err(Damage::Checksum);
    }
    Ok(len as usize)
}

/// Offset of the first record at or after `from` whose header and checksum verify and whose
/// body decodes: proof that damage before it is not a torn tail.
///
/// Linear in practice: before paying for a checksum over `len` bytes, the candidate body
/// must look like a serialized [`Record`] (a JSON object: `{"` ... `}`), which random or
/// shifted bytes almost never do; without that, a large garbage tail would cost a
/// checksum of up to [`MAX_RECORD`] bytes at a few percent of its offsets.
fn next_valid_record(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len().saturating_sub(8)).find(|&off| {
        let len = u32::from_le_bytes(data[off..off + 4].try_into().expect("4 bytes")) as usize;
        let body = match data.get(off + 8..off + 8 + len) {
            Some(b) if b.starts_with(b"{\"") && b.ends_with(b"}") => b,
            _ => return false,
        };
        check_record(data, off).is_ok() && serde_json::from_slice::<Record>(body).is_ok()
    })
}

/// Result of replaying a log: the state, where the valid prefix ends, and, when a torn
/// tail follows it, why its first record is damaged.
struct Replayed {
    recovered: Recovered,
    valid_len: u64,
    torn: Option<Damage>,
}

/// Replays `data` under the rule in the module doc.
fn replay(path: &Path, data: &[u8]) -> Result<Replayed, StorageError> {
    let mut rec = Recovered::default();
    let mut off = 0usize;
    let corrupt = |offset: usize, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    while off < data.len() {
        let len = match check_record(data, off) {
            Ok(len) => len,
            Err(damage) => {
                if let Some(next) = next_valid_record(data, off + 1) {
                    return Err(corrupt(
                        off,
                        format!(
                            "{damage}, and a valid record follows at byte offset {next}, so \
                             this is damage inside the log, not a torn final write; refusing \
                             to start rather than drop the {} bytes after it (they may hold \
                             acknowledged writes): restore the data dir (e.g. from a replica)",
                            data.len() - off
                        ),
                    ));
                }
                return Ok(Replayed {
                    recovered: rec,
                    valid_len: off as u64,
                    torn: Some(damage),
                });
            }
        };
        let end = off + 8 + len;
        // The checksum holds, so these are the bytes we wrote: not damage but a format we
        // cannot read (e.g. a newer kvnode's log), wherever it sits.
        let r: Record = serde_json::from_slice(&data[off + 8..end])
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
    Ok(Replayed {
        recovered: rec,
        valid_len: off as u64,
        torn: None,
    })
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

    fn save_snapshot(&mut self, snap: &Snapshot, keep_log: bool) -> Result<(), StorageError> {
        replace_file(&self.dir, SNAPSHOT_FILE, &snap.encode(), self.fsync)?;
        self.compact_log(snap.index, keep_log)
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
    fn mem_storage_crash_loses_what_was_not_synced() {
        let mut s = MemStorage::default();
        s.persist(None, &[e(1, 1)], Some(b"a"), true).unwrap();
        s.persist(None, &[e(2, 1), e(3, 1)], Some(b"b"), false)
            .unwrap();
        // A process restart sees the page cache; a machine crash does not.
        assert_eq!(s.recovered().entries.len(), 3);
        assert_eq!(s.unsynced(), 3);
        let mut torn = s.clone();
        s.crash(0);
        let r = s.recovered();
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.hard_state.as_deref(), Some(&b"a"[..]));
        // A torn last write: its first record reached the disk, the rest did not.
        torn.crash(1);
        let r = torn.recovered();
        assert_eq!(r.entries.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(r.hard_state.as_deref(), Some(&b"a"[..]));
        // Synced data survives, and an fsync covers only what was written before it.
        torn.persist(Some(2), &[e(2, 2)], None, false).unwrap();
        torn.write(None, &[e(3, 2)], None);
        torn.sync_upto(2);
        torn.crash(0);
        let r = torn.recovered();
        assert_eq!(r.entries[&2].term, 2);
        assert!(!r.entries.contains_key(&3));
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
