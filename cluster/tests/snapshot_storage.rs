//! Snapshot files and log compaction on real files (`storage.rs`, "Snapshots and
//! compaction"): the crash points of a snapshot save — before the rename (a torn
//! `kvnode.snap.tmp`), between the snapshot's rename and the log's rewrite, during the log's
//! rewrite — each leave a data dir the node restarts from with nothing acknowledged lost,
//! and a damaged `kvnode.snap` is refused with the file and offset named.

use cluster::engine::raft::Raft;
use cluster::engine::EngineConfig;
use cluster::membership::Membership;
use cluster::msg::{Command, Entry, NodeId, Op, Payload, Value};
use cluster::snapshot::Snapshot;
use cluster::storage::{FileStorage, Storage, LOG_FILE, SNAPSHOT_FILE};
use std::path::Path;

fn put(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Command(Command {
            op: Op::Put {
                key: format!("k{index}"),
                value: Value::Int(index as i64),
            },
            client_id: None,
            seq: None,
        }),
    }
}

/// A snapshot at `index` (term `term`) whose metadata is a Raft configuration of n1..n3.
fn snap(index: u64, term: u64) -> Snapshot {
    let ids: Vec<NodeId> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
    Snapshot {
        index,
        term,
        meta: serde_json::to_vec(&Membership::bootstrap(&ids)).unwrap(),
        data: br#"{"data":{},"sessions":{},"lru":{},"counter":0,"max_clients":10}"#.to_vec(),
    }
}

/// A data dir holding entries 1..=n of term 1 and a hard state.
fn log_of(dir: &Path, n: u64) {
    let mut s = FileStorage::open(dir, true).unwrap();
    let entries: Vec<Entry> = (1..=n).map(|i| put(i, 1)).collect();
    s.persist(
        None,
        &entries,
        Some(br#"{"term":1,"vote":"n1","commit":30}"#),
        true,
    )
    .unwrap();
}

fn raft(dir: &Path) -> Raft {
    let s = FileStorage::open(dir, true).unwrap();
    Raft::new(EngineConfig::new("n1", &["n2", "n3"]), s.recovered()).unwrap()
}

#[test]
fn a_saved_snapshot_compacts_the_log_file_and_a_restart_resumes_from_both() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 30);
    let before = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
    {
        let mut s = FileStorage::open(dir.path(), true).unwrap();
        s.save_snapshot(&snap(20, 1), true).unwrap();
        // Appends after a compaction go to the rewritten file.
        s.persist(None, &[put(31, 1)], None, true).unwrap();
    }
    let after = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
    assert!(
        after < before / 2,
        "log rewritten without 20 entries: {before} -> {after}"
    );
    let s = FileStorage::open(dir.path(), true).unwrap();
    let r = s.recovered();
    assert_eq!(r.snapshot.as_deref(), Some(&snap(20, 1)));
    assert_eq!(
        r.entries.keys().copied().collect::<Vec<_>>(),
        (21..=31).collect::<Vec<_>>()
    );
    assert!(
        r.hard_state.is_some(),
        "the hard state survives the rewrite"
    );
    let e = Raft::new(EngineConfig::new("n1", &["n2", "n3"]), r).unwrap();
    assert_eq!(e.snapshot_index(), 20);
    assert_eq!(e.log().first().map(|e| e.index), Some(21));
    assert_eq!(e.commit_index(), 30);
}

#[test]
fn a_crash_between_the_snapshot_rename_and_the_log_rewrite_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 30);
    // Step 1 of a save completed (the snapshot is in place), step 2 never ran.
    std::fs::write(dir.path().join(SNAPSHOT_FILE), snap(20, 1).encode()).unwrap();
    let e = raft(dir.path());
    assert_eq!(e.snapshot_index(), 20);
    assert_eq!(
        e.log().iter().map(|e| e.index).collect::<Vec<_>>(),
        (21..=30).collect::<Vec<_>>(),
        "covered entries skipped, the tail kept"
    );
    // The snapshot was installed over a conflicting log (other term at its index): that log
    // must go, as the install would have dropped it.
    std::fs::write(dir.path().join(SNAPSHOT_FILE), snap(25, 2).encode()).unwrap();
    let e = raft(dir.path());
    assert_eq!(e.snapshot_index(), 25);
    assert!(
        e.log().is_empty(),
        "conflicting log dropped: {:?}",
        e.log().len()
    );
}

#[test]
fn a_torn_snapshot_or_log_rewrite_left_by_a_crash_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 30);
    {
        let mut s = FileStorage::open(dir.path(), true).unwrap();
        s.save_snapshot(&snap(10, 1), true).unwrap();
    }
    // A crash while writing the next snapshot, and one while rewriting the log.
    let next = snap(25, 1).encode();
    std::fs::write(
        dir.path().join(format!("{SNAPSHOT_FILE}.tmp")),
        &next[..next.len() / 2],
    )
    .unwrap();
    std::fs::write(dir.path().join(format!("{LOG_FILE}.tmp")), b"half a log").unwrap();
    let s = FileStorage::open(dir.path(), true).unwrap();
    let r = s.recovered();
    assert_eq!(
        r.snapshot.as_deref().map(|s| s.index),
        Some(10),
        "old snapshot kept"
    );
    assert_eq!(r.entries.len(), 20, "log untouched");
    assert!(!dir.path().join(format!("{SNAPSHOT_FILE}.tmp")).exists());
    assert!(!dir.path().join(format!("{LOG_FILE}.tmp")).exists());
}

#[test]
fn a_damaged_snapshot_file_is_refused_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 5);
    let bytes = snap(3, 1).encode();
    let path = dir.path().join(SNAPSHOT_FILE);
    // Torn (shorter than its header says) and bit-flipped: both refused, never loaded.
    for damaged in [bytes[..bytes.len() - 7].to_vec(), {
        let mut b = bytes.clone();
        let n = b.len();
        b[n - 3] ^= 0x10;
        b
    }] {
        std::fs::write(&path, &damaged).unwrap();
        let err = FileStorage::open(dir.path(), true).unwrap_err().to_string();
        assert!(err.contains(SNAPSHOT_FILE), "{err}");
        assert!(err.contains("offset"), "{err}");
        assert!(err.contains("refusing to start"), "{err}");
    }
}
