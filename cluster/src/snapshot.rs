//! Snapshots of the key-value state machine: the value type, its checksummed byte format
//! (the same bytes on disk and on the wire), and the chunking with which a leader ships one
//! to a follower that is too far behind (Raft's InstallSnapshot, Multi-Paxos's state
//! transfer). Pure: no files here (`storage.rs` writes them), no protocol (the engines decide
//! when to send what).
//!
//! # Format
//!
//! ```text
//!   b"KVSNAP01"
//!   [header length: u32 LE][crc32(header): u32 LE]
//!   header: JSON {"index", "term", "meta_len", "data_len", "body_crc"}
//!   body:   meta_len bytes of engine metadata, then data_len bytes of state machine
//! ```
//!
//! `meta` is the engine's (Raft: the membership configuration at `index`; Multi-Paxos: its
//! StartWorking barrier); `data` is the serialized `KvStateMachine`. Both checksums must
//! hold, whether the bytes come from a file or were assembled from chunks, so a torn or
//! corrupted snapshot is never loaded.

use crate::msg::Entry;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// File magic and format version.
pub const MAGIC: &[u8; 8] = b"KVSNAP01";
/// Largest snapshot accepted (decoded or assembled from chunks).
pub const MAX_SNAPSHOT: u64 = 1 << 30;
/// Default chunk size of a snapshot transfer (hex-encoded on the wire: twice as many bytes).
pub const DEFAULT_CHUNK: usize = 256 * 1024;

/// The state machine as of log index `index`, with the engine's metadata at that index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Last log index (instance) the snapshot includes.
    pub index: u64,
    /// Term (ballot) of that entry; 0 where the engine has none.
    pub term: u64,
    /// Engine-encoded metadata at `index`.
    pub meta: Vec<u8>,
    /// The serialized state machine.
    pub data: Vec<u8>,
}

/// What the engine asks the driver to snapshot: the state machine as it stands once this
/// Ready's committed entries are applied (it is then at `index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// The applied index the state machine will be at.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// Engine metadata at `index`.
    pub meta: Vec<u8>,
}

/// When a snapshot is due: what was applied since the last one, against the thresholds
/// (`--snapshot-entries`, `--snapshot-bytes`; 0 disables one).
#[derive(Debug, Clone, Default)]
pub struct Compaction {
    max_entries: u64,
    max_bytes: u64,
    /// Serialized size of the entries applied since the last snapshot (counted only when
    /// `max_bytes` is set: it costs a serialization per entry).
    bytes: u64,
}

impl Compaction {
    /// Thresholds; 0 disables one.
    pub fn new(max_entries: u64, max_bytes: u64) -> Self {
        Compaction {
            max_entries,
            max_bytes,
            bytes: 0,
        }
    }

    /// Counts an entry handed to the state machine.
    pub fn applied(&mut self, e: &Entry) {
        if self.max_bytes > 0 {
            self.bytes += serde_json::to_vec(e).map_or(0, |b| b.len() as u64);
        }
    }

    /// A snapshot was installed: start counting again.
    pub fn reset(&mut self) {
        self.bytes = 0;
    }

    /// Node `id` took `snap` and kept `kept` log entries after it: start counting again;
    /// returns the snapshot encoded for shipping to peers.
    pub fn taken(&mut self, id: &str, snap: &Snapshot, kept: usize) -> Outgoing {
        self.bytes = 0;
        tracing::info!(
            id,
            index = snap.index,
            bytes = snap.data.len(),
            kept_entries = kept,
            "snapshot taken, log compacted"
        );
        Outgoing::new(snap)
    }

    /// Whether `since` entries applied since the last snapshot (and their bytes) call for
    /// a new one.
    pub fn due(&self, since: u64) -> bool {
        since > 0
            && ((self.max_entries > 0 && since >= self.max_entries)
                || (self.max_bytes > 0 && self.bytes >= self.max_bytes))
    }
}

/// A snapshot the driver must load into the state machine (and make durable first unless
/// it came from disk).
#[derive(Debug, Clone)]
pub struct Install {
    /// The snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Already on disk (a restart): load it, do not write it again.
    pub durable: bool,
    /// Keep stored log entries after `snapshot.index` (they match it); otherwise the whole
    /// stored log is dropped.
    pub keep_log: bool,
}

#[derive(Serialize, Deserialize)]
struct Header {
    index: u64,
    term: u64,
    meta_len: u64,
    data_len: u64,
    body_crc: u32,
}

/// Why bytes are not a valid snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid snapshot at byte offset {offset}: {reason}")]
pub struct FormatError {
    /// Where the problem is.
    pub offset: u64,
    /// What it is.
    pub reason: String,
}

impl Snapshot {
    /// The byte format of the module doc.
    pub fn encode(&self) -> Vec<u8> {
        let mut body_crc = crc32fast::Hasher::new();
        body_crc.update(&self.meta);
        body_crc.update(&self.data);
        let header = serde_json::to_vec(&Header {
            index: self.index,
            term: self.term,
            meta_len: self.meta.len() as u64,
            data_len: self.data.len() as u64,
            body_crc: body_crc.finalize(),
        })
        .expect("header serializes");
        let mut out = Vec::with_capacity(16 + header.len() + self.meta.len() + self.data.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.meta);
        out.extend_from_slice(&self.data);
        out
    }

    /// Parses and verifies the byte format (both checksums, exact length).
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, FormatError> {
        let err = |offset: usize, reason: String| FormatError {
            offset: offset as u64,
            reason,
        };
        if bytes.len() < 16 {
            return Err(err(
                0,
                format!("{} bytes, shorter than the 16-byte preamble", bytes.len()),
            ));
        }
        if &bytes[..8] != MAGIC {
            return Err(err(0, "not a kvnode snapshot (bad magic)".into()));
        }
        let hlen = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let hcrc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        let Some(header) = bytes.get(16..16 + hlen) else {
            return Err(err(
                8,
                format!(
                    "header length {hlen} runs past the end ({} bytes)",
                    bytes.len()
                ),
            ));
        };
        if crc32fast::hash(header) != hcrc {
            return Err(err(16, "header checksum mismatch".into()));
        }
        let h: Header = serde_json::from_slice(header)
            .map_err(|e| err(16, format!("undecodable header: {e}")))?;
        let body = &bytes[16 + hlen..];
        let want = h.meta_len.checked_add(h.data_len);
        if want != Some(body.len() as u64) {
            return Err(err(
                16 + hlen,
                format!(
                    "body is {} bytes, the header says {} + {} (torn or truncated)",
                    body.len(),
                    h.meta_len,
                    h.data_len
                ),
            ));
        }
        if crc32fast::hash(body) != h.body_crc {
            return Err(err(16 + hlen, "body checksum mismatch".into()));
        }
        let (meta, data) = body.split_at(h.meta_len as usize);
        Ok(Snapshot {
            index: h.index,
            term: h.term,
            meta: meta.to_vec(),
            data: data.to_vec(),
        })
    }
}

/// A snapshot ready to ship: its encoding, made once and shared by every transfer.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Last included index.
    pub index: u64,
    /// Its term.
    pub term: u64,
    /// [`Snapshot::encode`] of it.
    pub bytes: Arc<Vec<u8>>,
}

impl Outgoing {
    /// Encodes `snap` for shipping.
    pub fn new(snap: &Snapshot) -> Self {
        Outgoing {
            index: snap.index,
            term: snap.term,
            bytes: Arc::new(snap.encode()),
        }
    }

    /// The chunk at `offset` of at most `max` bytes (at least one byte per chunk).
    pub fn chunk(&self, offset: u64, max: usize) -> Chunk {
        let start = (offset as usize).min(self.bytes.len());
        let end = start.saturating_add(max.max(1)).min(self.bytes.len());
        Chunk {
            index: self.index,
            term: self.term,
            total: self.bytes.len() as u64,
            offset: start as u64,
            bytes: self.bytes[start..end].to_vec(),
        }
    }
}

/// One piece of an encoded snapshot on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Snapshot's last included index.
    pub index: u64,
    /// Its term.
    pub term: u64,
    /// Length of the whole encoding.
    pub total: u64,
    /// Where these bytes start.
    pub offset: u64,
    /// The bytes (hex on the wire: JSON has no byte strings).
    #[serde(with = "hex")]
    pub bytes: Vec<u8>,
}

/// What a receiver makes of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Send the chunk at this offset next.
    Next(u64),
    /// The snapshot is complete and verified.
    Complete(Snapshot),
    /// The assembled bytes do not verify (or the sender is confused); start over.
    Invalid(String),
}

/// Assembles chunks of one snapshot, in order; duplicates and gaps are answered with the
/// offset it needs, so the sender can simply resend.
#[derive(Debug, Default)]
pub struct Receiver {
    cur: Option<(u64, u64, u64, Vec<u8>)>,
}

impl Receiver {
    /// Takes a chunk.
    pub fn offer(&mut self, c: Chunk) -> Offer {
        if c.total > MAX_SNAPSHOT || c.total == 0 {
            self.cur = None;
            return Offer::Invalid(format!(
                "snapshot of {} bytes (at most {MAX_SNAPSHOT})",
                c.total
            ));
        }
        let same =
            matches!(&self.cur, Some((i, t, n, _)) if (*i, *t, *n) == (c.index, c.term, c.total));
        if !same {
            if c.offset != 0 {
                self.cur = None;
                return Offer::Next(0);
            }
            self.cur = Some((c.index, c.term, c.total, Vec::new()));
        }
        let (_, _, total, buf) = self.cur.as_mut().expect("set above");
        let have = buf.len() as u64;
        if c.offset != have {
            return Offer::Next(have);
        }
        let room = (*total - have) as usize;
        buf.extend_from_slice(&c.bytes[..c.bytes.len().min(room)]);
        if (buf.len() as u64) < *total {
            return Offer::Next(buf.len() as u64);
        }
        let (_, _, _, buf) = self.cur.take().expect("set above");
        match Snapshot::decode(&buf) {
            Ok(s) if s.index == c.index && s.term == c.term => Offer::Complete(s),
            Ok(s) => Offer::Invalid(format!(
                "assembled snapshot is of index {} term {}, announced {} {}",
                s.index, s.term, c.index, c.term
            )),
            Err(e) => Offer::Invalid(e.to_string()),
        }
    }

    /// Drops a partial assembly (e.g. when a newer snapshot or leader appears).
    pub fn reset(&mut self) {
        self.cur = None;
    }
}

/// Hex encoding of byte strings for serde (JSON would otherwise spell a byte as a number).
mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(DIGITS[(b >> 4) as usize] as char);
            out.push(DIGITS[(b & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(serde::de::Error::custom("invalid hex digit")),
        };
        let s = s.as_bytes();
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd-length hex string"));
        }
        s.chunks(2)
            .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        Snapshot {
            index: 42,
            term: 3,
            meta: b"{\"m\":1}".to_vec(),
            data: (0..5000u32).map(|i| (i % 251) as u8).collect(),
        }
    }

    #[test]
    fn encoding_round_trips_and_every_truncation_or_flip_is_refused() {
        let s = snap();
        let bytes = s.encode();
        assert_eq!(Snapshot::decode(&bytes).unwrap(), s);
        for cut in [0, 7, 15, 16, 30, bytes.len() - 1] {
            assert!(Snapshot::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for pos in [3, 9, 13, 20, bytes.len() - 100] {
            let mut b = bytes.clone();
            b[pos] ^= 0x40;
            assert!(Snapshot::decode(&b).is_err(), "flip at {pos}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Snapshot::decode(&longer).is_err());
    }

    #[test]
    fn chunks_assemble_in_order_despite_duplicates_and_gaps() {
        let s = snap();
        let out = Outgoing::new(&s);
        let mut r = Receiver::default();
        // A gap first: the receiver asks for the start.
        assert_eq!(r.offer(out.chunk(1000, 1000)), Offer::Next(0));
        let mut off = 0;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let c = out.chunk(off, 1000);
            let wire = serde_json::to_string(&c).unwrap();
            let c: Chunk = serde_json::from_str(&wire).unwrap();
            // Every chunk twice: the duplicate is answered with the same next offset.
            let dup = c.clone();
            match r.offer(c) {
                Offer::Next(n) => {
                    assert_eq!(r.offer(dup), Offer::Next(n));
                    off = n;
                }
                Offer::Complete(got) => {
                    assert_eq!(got, s);
                    break;
                }
                Offer::Invalid(e) => panic!("{e}"),
            }
        }
        assert_eq!(rounds, out.bytes.len().div_ceil(1000));
    }

    #[test]
    fn a_corrupted_chunk_is_caught_by_the_checksum() {
        let out = Outgoing::new(&snap());
        let mut r = Receiver::default();
        let mut c = out.chunk(0, usize::MAX);
        let n = c.bytes.len();
        c.bytes[n - 10] ^= 1;
        assert!(matches!(r.offer(c), Offer::Invalid(_)));
        assert!(matches!(
            r.offer(Chunk {
                total: MAX_SNAPSHOT + 1,
                ..out.chunk(0, 10)
            }),
            Offer::Invalid(_)
        ));
    }
}
