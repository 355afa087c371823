//! Appends history events to `history.jsonl` as they happen.
//!
//! One mutex around a [`HistoryWriter`] assigns each event its dense `index` and its `time`
//! (ns since the test started, monotonic) inside the lock, so the file is in index and time
//! order. Each event is flushed as it is written (a crashed harness leaves a checkable
//! history) and nothing is kept in memory: memory does not grow with history length. The
//! lock is a `std::sync::Mutex` because it is never held across an `.await`.

use checkers::history::{Event, EventType, HistoryWriter, Process};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The shared history sink of a run.
pub struct Recorder {
    start: Instant,
    inner: Mutex<(u64, HistoryWriter<Box<dyn Write + Send>>)>,
    completed: AtomicU64,
}

/// What to record, minus index and time.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Who.
    pub process: Process,
    /// invoke | ok | fail | info.
    pub kind: EventType,
    /// Function.
    pub f: String,
    /// Key, for multi-key workloads.
    pub key: Option<String>,
    /// Value.
    pub value: serde_json::Value,
    /// Serving node.
    pub node: Option<String>,
    /// Error text.
    pub error: Option<String>,
}

impl Recorder {
    /// Records into `path` (created / truncated).
    pub fn create(path: &Path, start: Instant) -> std::io::Result<Recorder> {
        let file = std::fs::File::create(path)?;
        Ok(Self::with_writer(Box::new(BufWriter::new(file)), start))
    }

    /// Records into any writer (`std::io::sink()` in benchmarks).
    pub fn with_writer(out: Box<dyn Write + Send>, start: Instant) -> Recorder {
        Recorder {
            start,
            inner: Mutex::new((0, HistoryWriter::new(out))),
            completed: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since the test started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Appends one event; returns its index. I/O errors are reported once on stderr and
    /// otherwise ignored (the run continues; the check will see a short history).
    pub fn record(&self, e: Entry) -> u64 {
        if e.kind != EventType::Invoke && e.process != Process::Nemesis {
            self.completed.fetch_add(1, Ordering::Relaxed);
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let index = g.0;
        g.0 += 1;
        let ev = Event {
            index,
            time: self.now(),
            process: e.process,
            kind: e.kind,
            f: e.f,
            key: e.key,
            value: e.value,
            node: e.node,
            error: e.error,
        };
        if let Err(err) = g.1.write(&ev) {
            if index == 0 || index.is_multiple_of(100_000) {
                eprintln!("faultline: cannot write history: {err}");
            }
        }
        index
    }

    /// Client ops completed so far (for progress display).
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Events written so far.
    pub fn len(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
