//! Regression tests for issue 10 item 2: damage to `kvnode.log` must never drop
//! acknowledged writes with only a warning. Records are written through the real
//! [`FileStorage`], bytes are corrupted at chosen offsets of the real file, and the file is
//! reopened: a torn tail (the damage reaches the end of the file and no valid record
//! follows it, including a zero-filled tail) is truncated; anything else refuses to start
//! with an error naming the file and the byte offset, and leaves the file untouched.
//! The last two tests do the same to a real `kvnode` process after 100 acknowledged writes.

mod common;

use cluster::msg::{Command, Entry, Op, Payload, Value};
use cluster::storage::{FileStorage, Storage, LOG_FILE};
use common::Cluster;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        payload: Payload::Command(Command {
            op: Op::Put {
                key: format!("k{index}"),
                value: Value::Str(format!("value number {index}")),
            },
            client_id: None,
            seq: None,
        }),
    }
}

/// Writes `n` entries, one persist each, every fourth with a hard state (so hard-state
/// records sit in the middle of the file too). Returns the log file's path.
fn write_log(dir: &Path, n: u64) -> PathBuf {
    let mut s = FileStorage::open(dir, true).unwrap();
    for i in 1..=n {
        let hs = format!("hard state {i}");
        let hs = (i % 4 == 0).then_some(hs.as_bytes());
        s.persist(None, &[entry(i)], hs, true).unwrap();
    }
    s.path().to_path_buf()
}

/// A temp dir holding a log of `n` persists: (dir, log path, its bytes, record offsets).
fn fixture(n: u64) -> (tempfile::TempDir, PathBuf, Vec<u8>, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), n);
    let clean = std::fs::read(&path).unwrap();
    let offs = record_offsets(&clean);
    (dir, path, clean, offs)
}

/// Start offsets of every record, found by walking the length fields of an intact file.
fn record_offsets(data: &[u8]) -> Vec<usize> {
    let mut offs = Vec::new();
    let mut off = 0;
    while off + 8 <= data.len() {
        offs.push(off);
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        off += 8 + len;
    }
    assert_eq!(off, data.len(), "test helper expects an intact file");
    offs
}

/// Reopens and returns the error text, asserting the open failed and left the file as is.
fn open_fails(dir: &Path, path: &Path) -> String {
    let before = std::fs::read(path).unwrap();
    let err = match FileStorage::open(dir, true) {
        Ok(s) => panic!(
            "opened a corrupt log, recovering {} entries",
            s.recovered().entries.len()
        ),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "a refused log must be left untouched"
    );
    assert!(err.contains(LOG_FILE), "error names the file: {err}");
    err
}

/// Reopens, asserting success; returns the recovered entry indexes.
fn open_ok(dir: &Path) -> Vec<u64> {
    let s = FileStorage::open(dir, true).unwrap_or_else(|e| panic!("refused to open: {e}"));
    s.recovered().entries.keys().copied().collect()
}

#[test]
fn flipped_length_high_byte_in_the_middle_refuses_to_start_naming_file_and_offset() {
    let (dir, path, clean, offs) = fixture(40);
    let mid = offs[offs.len() / 2];
    // High byte flipped (length > 256 MiB), one bit in the second byte (length past the end
    // of the file, yet plausible), and a zeroed length: each in the middle of the file.
    let damages: [(usize, u8); 3] = [(3, 0xff), (2, 0x01), (0, 0)];
    for (byte, xor) in damages {
        let mut data = clean.clone();
        if xor == 0 {
            data[mid..mid + 4].fill(0);
        } else {
            data[mid + byte] ^= xor;
        }
        std::fs::write(&path, &data).unwrap();
        let err = open_fails(dir.path(), &path);
        assert!(
            err.contains(&format!("offset {mid}")),
            "error names the damaged record's offset {mid}: {err}"
        );
    }
}

#[test]
fn flipped_payload_byte_in_the_middle_refuses_and_names_the_valid_record_after_it() {
    let (dir, path, clean, offs) = fixture(40);
    // An entry record and a hard-state record (every fourth persist writes one).
    let hs = offs
        .iter()
        .position(|&o| clean[o + 8..].starts_with(b"{\"HardState\""))
        .expect("a hard-state record");
    for k in [offs.len() / 2, hs] {
        let mut data = clean.clone();
        data[offs[k] + 8 + 5] ^= 0x20;
        std::fs::write(&path, &data).unwrap();
        let err = open_fails(dir.path(), &path);
        assert!(err.contains(&format!("offset {}", offs[k])), "{err}");
        assert!(
            err.contains(&format!(
                "valid record follows at byte offset {}",
                offs[k + 1]
            )),
            "error proves the damage is not a torn tail: {err}"
        );
    }
}

#[test]
fn damaged_final_records_are_a_torn_tail_truncated_with_earlier_records_intact() {
    let (dir, path, clean, offs) = fixture(12);
    let last = *offs.last().unwrap();
    // Record 12 and hard state 12 were written by one persist (one write call): the last
    // two records form the final batch.
    let batch = offs[offs.len() - 2];
    let cases: Vec<(&str, usize, Vec<u8>)> = vec![
        (
            "last record cut short",
            last,
            clean[..clean.len() - 5].to_vec(),
        ),
        ("last header cut short", last, clean[..last + 6].to_vec()),
        ("last record's payload flipped", last, {
            let mut d = clean.clone();
            d[last + 12] ^= 0x01;
            d
        }),
        ("last record's length high byte flipped", last, {
            let mut d = clean.clone();
            d[last + 3] ^= 0xff;
            d
        }),
        (
            "torn batch: full-length record with a bad checksum, then a cut one",
            batch,
            {
                let mut d = clean[..clean.len() - 3].to_vec();
                d[batch + 10] ^= 0x04;
                d
            },
        ),
    ];
    for (what, torn_at, data) in cases {
        std::fs::write(&path, &data).unwrap();
        let indexes = open_ok(dir.path());
        let want: Vec<u64> = if torn_at == last {
            (1..=12).collect() // only the hard state was torn
        } else {
            (1..=11).collect()
        };
        assert_eq!(indexes, want, "{what}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            torn_at as u64,
            "{what}: truncated at the torn record"
        );
        // The node appends after the truncation point and a later start sees it.
        {
            let mut s = FileStorage::open(dir.path(), true).unwrap();
            s.persist(None, &[entry(100)], None, true).unwrap();
        }
        assert_eq!(open_ok(dir.path()).last(), Some(&100), "{what}");
        std::fs::write(&path, &clean).unwrap();
    }
}

#[test]
fn zero_filled_tail_of_any_length_is_a_torn_tail() {
    let (dir, path, clean, offs) = fixture(10);
    let last = *offs.last().unwrap();
    // Zeros appended after the last record: shorter than a header, exactly one all-zero
    // "record" header (length 0, checksum 0 — which is crc32 of nothing), several of them,
    // and a whole page; then the last record's body zeroed in place (the file was extended
    // but the data block never written) with and without extra zeros.
    for zeros in [1usize, 7, 8, 9, 16, 24, 100, 4096, 65536] {
        let mut data = clean.clone();
        data.resize(clean.len() + zeros, 0);
        std::fs::write(&path, &data).unwrap();
        assert_eq!(open_ok(dir.path()).len(), 10, "{zeros} zero bytes");
        assert_eq!(std::fs::read(&path).unwrap(), clean, "{zeros} zero bytes");
    }
    for extra in [0usize, 8, 4096] {
        let mut data = clean.clone();
        data[last..].fill(0);
        data.resize(clean.len() + extra, 0);
        std::fs::write(&path, &data).unwrap();
        let want: Vec<u64> = (1..=9).collect();
        assert_eq!(open_ok(dir.path()), want, "zeroed last record + {extra}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), last as u64);
        std::fs::write(&path, &clean).unwrap();
    }
    // Zeros in the MIDDLE, followed by intact records, are not a tail.
    let mut data = clean.clone();
    data[offs[3]..offs[5]].fill(0);
    std::fs::write(&path, &data).unwrap();
    let err = open_fails(dir.path(), &path);
    assert!(err.contains(&format!("offset {}", offs[3])), "{err}");
}

/// Starts a single node, acknowledges `n` writes `w0..`, kills it with SIGKILL.
async fn hundred_acknowledged_writes_then_kill_9() -> Cluster {
    let mut c = Cluster::start(1, &[]).await;
    c.wait_leader(&[0], 10 * SEC).await;
    for k in 0..100 {
        let (code, body) = c.put(0, &format!("w{k}"), json!(k)).await;
        assert_eq!(code, 200, "write w{k}: {body}");
    }
    c.kill(0);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvnode_refuses_to_start_after_mid_file_corruption_and_says_where() {
    let mut c = hundred_acknowledged_writes_then_kill_9().await;
    let path = c.nodes[0].data_dir.join(LOG_FILE);
    let mut data = std::fs::read(&path).unwrap();
    let offs = record_offsets(&data);
    let mid = offs[offs.len() / 2];
    data[mid + 3] ^= 0xff; // the high byte of the length field
    std::fs::write(&path, &data).unwrap();
    c.spawn(0);
    let mut child = c.nodes[0].child.take().unwrap();
    let deadline = Instant::now() + 10 * SEC;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kvnode kept running on a log with mid-file corruption");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success(), "exit status {status}");
    let log = std::fs::read_to_string(&c.nodes[0].log).unwrap();
    assert!(
        log.contains("corrupt log")
            && log.contains(&path.display().to_string())
            && log.contains(&format!("offset {mid}")),
        "the error names file and offset: {log}"
    );
    assert!(!log.contains("torn record"), "{log}");
    assert_eq!(std::fs::read(&path).unwrap(), data, "log left untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvnode_starts_after_a_zero_filled_torn_tail_with_every_earlier_write() {
    let mut c = hundred_acknowledged_writes_then_kill_9().await;
    let path = c.nodes[0].data_dir.join(LOG_FILE);
    let data = std::fs::read(&path).unwrap();
    let offs = record_offsets(&data);
    // Tear the last record in half and leave the file extended with zeros, as a crash on a
    // filesystem that grew the file but never wrote its data block does.
    let last = *offs.last().unwrap();
    let tear = last + (data.len() - last) / 2;
    let mut torn = data[..tear].to_vec();
    torn.resize(data.len() + 4096, 0);
    std::fs::write(&path, &torn).unwrap();
    let before_tear = &data[..last];
    let survivors: Vec<usize> = (0..100)
        .filter(|k| {
            let needle = format!("\"w{k}\"");
            before_tear
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
        .collect();
    assert!(
        survivors.len() >= 99,
        "{} writes before the tear",
        survivors.len()
    );
    c.spawn(0);
    c.wait_up(0, 10 * SEC).await;
    let log = std::fs::read_to_string(&c.nodes[0].log).unwrap();
    assert!(
        log.contains("torn record"),
        "the torn tail is reported: {log}"
    );
    for k in survivors {
        let v = c.read_linearizable(&[0], &format!("w{k}")).await;
        assert_eq!(v, json!(k), "acknowledged write w{k} lost");
    }
    assert_eq!(c.put(0, "after", json!(1)).await.0, 200);
}
