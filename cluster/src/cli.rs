//! kvnode's command line: flag parsing (clap), wiring of the layers, the tokio runtime and
//! signal handling. This is the only place that knows about flags, `anyhow` and exit codes.

use crate::engine::multipaxos::MultiPaxos;
use crate::engine::nwr::{ClockMode, Nwr, NwrConfig};
use crate::engine::raft::Raft;
use crate::engine::{EngineConfig, ReadMode};
use crate::http::{router, ApiState, HttpLimits};
use crate::membership::Membership;
use crate::msg::NodeId;
use crate::node::{DriverConfig, NodeStatus, StatusHandle};
use crate::shard::{ShardedDriver, Shards};
use crate::snapshot::DEFAULT_CHUNK;
use crate::storage::{FileStorage, Storage};
use crate::transport::{serve_inbound, Transport, TransportConfig};
use crate::twopc::TwoPcConfig;
use crate::{engine, node};
use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const LONG_ABOUT: &str = "\
kvnode: a replicated key-value store (the system under test bundled with faultline).

Peers: node i sends to node j only over the TCP connection it dials to j's address in
--peers; connections accepted on --peer-listen are receive-only. Links are re-dialed with
backoff; a write stalled for 1 s (blackholed link) drops and re-dials the connection.

HTTP API on --client-listen (JSON):
  GET  /kv/{key}                                  -> 200 {\"value\": int|string|null}
  PUT  /kv/{key}      {\"value\":v, \"client_id\"?, \"seq\"?}  -> 200 {\"ok\":true}
  POST /kv/{key}/cas  {\"from\":a, \"to\":b, \"client_id\"?, \"seq\"?} -> 200 {\"ok\":true}
  POST /txn     {\"txn\":[[\"append\",k,v],[\"r\",k,null],[\"w\",k,v],[\"add\",k,n],[\"expect\",k,v]]}
                -> 200 {\"txn\":[...the micro-ops, reads filled in...]}; 409 txn-aborted (nothing applied)
  GET  /status  -> {\"id\",\"engine\",\"role\",\"term\",\"leader\",\"commit_index\",\"applied_index\"}
                   (+ \"shards\": one such status per group under --shards)

Status codes (what the outcome of a request is; every error body is JSON with an
\"error\" slug, most with a \"message\"):
  200  done
  400  bad request: malformed JSON or HTTP, value not an integer/string, body > 64 KiB,
       key not valid percent-encoded UTF-8 or > 1 KiB (not done)
  404, 405  no such route / method (not done)
  408  the body did not arrive within --http-body-timeout-ms; connection closed (not done)
  409  cas-mismatch, body carries \"current\" (definitely not done)
  414, 431  request URI / head too large (head > 16 KiB or > 100 header fields) (not done)
  421  not-leader, body carries \"leader\" (id or null): not proposed, retry there
  501  unsupported by this engine (not done)
  503  unavailable: definitely not proposed (overloaded, stopping)
  504  timeout: UNKNOWN outcome, the command may still commit later

A (client_id, seq) pair makes a retried write apply once: the node remembers each
client's last seq and result (the 100000 most recently active clients); a retry with the
same seq gets the stored result, an older seq gets 504.

Multi-Paxos (--engine multipaxos) differs from Raft: instances are chosen independently,
so the log may have holes (applied in order once filled); a leader needs no complete log,
it re-proposes every instance it cannot prove chosen (highest-ballot value, or a no-op)
and then appends a StartWorking entry; older-ballot entries after a StartWorking are
skipped, so timed-out writes cannot reappear later (--unsafe-no-start-working breaks this).
Its default read (read-index or log) goes through the log; --read lease is local.

NWR (--engine nwr --n N --w W --r R [--read-repair] [--clock wall|hybrid]) is leaderless:
every node coordinates; a key lives on N replicas (consistent hashing when N < cluster
size); a write is acknowledged after W replicas fsynced it (else 504), a read returns the
newest of R replies by timestamp, last-writer-wins (else 503); CAS answers 501. /status
says role \"leader\" (accepts writes), leader null, term 0 on every node. --clock wall stamps
with the coordinator's wall clock (skew loses writes); hybrid uses a hybrid logical clock.

Connections: a request head must arrive within --http-header-timeout-ms (from accept, or
from the first byte after an idle gap), a body within --http-body-timeout-ms, and a
kept-alive connection is closed after --http-idle-timeout-ms without a request. At
--max-connections a new connection closes the one that waited longest without a request
in progress (never one serving a request). Closures and the cap are logged (at most one
line per kind every 5 s).

Transactions: Raft and Multi-Paxos apply a transaction as one log entry (strictly
serializable); NWR runs each micro-op on its own quorums (no isolation, no atomicity).
--shards S splits keys over S replication groups per process (logs in DATA_DIR/shard-<g>);
a transaction over several groups runs two-phase commit with the decision logged in the
group of its first key. --unsafe-2pc-presumed-commit lets a participant commit on its own.

Durability: a write is acknowledged only after a majority has fsynced it. Raft and
Multi-Paxos snapshot the state machine every --snapshot-entries applied entries (or
--snapshot-bytes): the snapshot is written to kvnode.snap.tmp, fsynced and renamed to
kvnode.snap, and only then is the log rewritten without the entries it covers, so the data
dir stays bounded. A peer too far behind gets the snapshot in --snapshot-chunk-bytes pieces.
Under --shards every group snapshots its own log (DATA_DIR/shard-<g>/kvnode.snap).
At startup a damaged record with a valid record after it stops the node (exit 1, naming
the file and byte offset); a damaged or zero-filled tail is a torn write and truncated; a
kvnode.snap that does not verify stops the node too (it was fsynced before its rename).

Membership (Raft; one change at a time, each committed before the next is accepted):
  GET    /admin/members  -> {\"voters\",\"learners\",\"members\":[{\"id\",\"role\",\"peer_addr\",..}],
                            \"config_index\",\"config_committed\",\"leader\",...}
  POST   /admin/members  {\"id\",\"peer_addr\",\"client_addr\"?,\"peer_addr_via\"?:{dialer:addr}}
                         adds a learner (it catches up by snapshot and log, votes for nothing)
  POST   /admin/members  {\"action\":\"promote\",\"id\"}   makes a caught-up learner a voter
  DELETE /admin/members/{id}  removes a voter or learner (the leader may remove itself: it
                         steps down once the change is committed)
  200 once the change is committed; 409 change-in-progress / learner-behind /
  leader-not-ready / already-member / last-voter, 404 not-member, 400 multi-server-change,
  421 not-leader, 504 unknown. A new node starts with an empty --data-dir and --join, and
  --peers naming the current members; existing nodes dial it at the address in the change
  (peer_addr_via[their id] if given, else peer_addr), unless their own --peers names it.
  Not with --shards > 1: every group's members are fixed (/admin/members answers 409).";

/// Replication engine to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// Raft (leader election, log replication, read-index).
    Raft,
    /// Multi-Paxos: one Prepare per leadership for all open instances, Accept-only steady
    /// state, holes allowed, a new leader re-proposes unchosen instances then appends a
    /// StartWorking entry. Reads go through the log unless `--read lease`/unsafe-*.
    Multipaxos,
    /// Leaderless Dynamo-style quorums: N replicas, W write acks, R read replies, LWW.
    Nwr,
}

/// Timestamp source of the NWR engine (`--clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockFlag {
    /// The coordinator's wall clock: clock skew reorders and loses writes (UNSAFE on purpose).
    Wall,
    /// A hybrid logical clock (Kulkarni et al.), updated from every message received.
    Hybrid,
}

/// Read strategy (`--read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadFlag {
    /// Linearizable: the leader confirms leadership with one heartbeat round per batch.
    ReadIndex,
    /// Linearizable if clock rates are sane: leader lease on the monotonic clock.
    Lease,
    /// Linearizable: reads are appended to the log like writes.
    Log,
    /// UNSAFE: the leader answers from local state without confirming it is still leader;
    /// a deposed leader in a minority partition serves stale reads (check-quorum is off,
    /// so it keeps believing it leads for the whole partition).
    UnsafeLocal,
    /// UNSAFE: leader lease measured on the wall clock; clock jumps/skew (libfaketime)
    /// extend it past a new leader's election: stale reads (check-quorum is off too).
    UnsafeLeaseWallclock,
}

/// kvnode command line.
#[derive(Debug, Parser)]
#[command(name = "kvnode", version, about = "faultline's replicated key-value store", long_about = LONG_ABOUT)]
pub struct Args {
    /// This node's id, e.g. n1.
    #[arg(long)]
    pub id: String,
    /// Address to accept peer connections on (receive-only).
    #[arg(long)]
    pub peer_listen: String,
    /// Address of the HTTP client API.
    #[arg(long)]
    pub client_listen: String,
    /// Other nodes as id=addr,id=addr (empty or absent: single-node cluster).
    #[arg(long, default_value = "")]
    pub peers: String,
    /// Directory for the durable log.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Replication engine.
    #[arg(long, value_enum, default_value = "raft")]
    pub engine: EngineKind,
    /// Raft: run a pre-vote round before each election (avoids disruptive term bumps).
    #[arg(long)]
    pub prevote: bool,
    /// How reads are served.
    #[arg(long, value_enum, default_value = "read-index")]
    pub read: ReadFlag,
    /// UNSAFE (Raft): commit entries of earlier terms by counting replicas (the Figure 8
    /// bug): a later leader may overwrite them, losing acknowledged writes.
    #[arg(long)]
    pub unsafe_commit_previous_term: bool,
    /// Length of one engine tick in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,
    /// Election timeout in ticks (randomized in [n, 2n)); also bounds the leader lease.
    #[arg(long, default_value_t = 30)]
    pub election_ticks: u64,
    /// Heartbeat interval in ticks.
    #[arg(long, default_value_t = 5)]
    pub heartbeat_ticks: u64,
    /// Seed for the engine's randomness (mixed with the node id).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Server-side deadline of a client request; past it the answer is 504 (unknown).
    #[arg(long, default_value_t = 1000)]
    pub request_timeout_ms: u64,
    /// UNSAFE, benchmarking only: never fsync (acknowledged writes can be lost on crash).
    #[arg(long)]
    pub no_fsync: bool,
    /// UNSAFE (Multi-Paxos): a new leader writes no StartWorking entry and serves before
    /// its re-proposals of older unchosen instances are chosen, so writes that timed out
    /// under an old leader (and stayed invisible for a whole later leadership) can be
    /// re-confirmed by a still later leader and reappear ("ghost reappearance").
    #[arg(long)]
    pub unsafe_no_start_working: bool,
    /// NWR: replicas per key, 1..=cluster size (default: the cluster size).
    #[arg(long)]
    pub n: Option<usize>,
    /// NWR: replica acks a write waits for, 1..=N (default: a majority of N). W+R<=N is the
    /// UNSAFE partial-quorum variant (stale reads).
    #[arg(long)]
    pub w: Option<usize>,
    /// NWR: replica replies a read waits for, 1..=N (default: a majority of N).
    #[arg(long)]
    pub r: Option<usize>,
    /// NWR: push the newest version to stale replicas that answered a read.
    #[arg(long)]
    pub read_repair: bool,
    /// NWR: ABD-style linearizable quorums — a write first reads the highest timestamp from
    /// R replicas and stamps above it; a read writes the newest version back to W replicas
    /// before answering (unless W of its replies already hold it). With W+R>N the register
    /// is linearizable, at the cost of a second round trip.
    #[arg(long)]
    pub read_writeback: bool,
    /// NWR: timestamp source for last-writer-wins.
    #[arg(long, value_enum, default_value = "hybrid")]
    pub clock: ClockFlag,
    /// HTTP: time for a complete request head, from accept or from the first byte after an
    /// idle gap; then the connection is closed (slow or silent clients).
    #[arg(long, default_value_t = HttpLimits::DEFAULT_HEADER_TIMEOUT_MS, value_parser = http_ms)]
    pub http_header_timeout_ms: u64,
    /// HTTP: time for a request body once its head has arrived; then 408 and close.
    #[arg(long, default_value_t = HttpLimits::DEFAULT_BODY_TIMEOUT_MS, value_parser = http_ms)]
    pub http_body_timeout_ms: u64,
    /// HTTP: time a kept-alive connection may wait for its next request; then it is closed.
    /// Keep it above your clients' pool idle timeout (reqwest: 90 s).
    #[arg(long, default_value_t = HttpLimits::DEFAULT_IDLE_TIMEOUT_MS, value_parser = http_ms)]
    pub http_idle_timeout_ms: u64,
    /// HTTP: most client connections open at once; at the cap a new connection closes the
    /// one that waited longest without a request in progress. Default: half the open-file
    /// limit, between 16 and 1024.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=HttpLimits::MAX_CONNECTIONS_LIMIT as u64))]
    pub max_connections: Option<u64>,
    /// Split keys over this many independent replication groups (Raft or Multi-Paxos) in the
    /// same processes; a transaction over several groups runs two-phase commit. Every node
    /// must be started with the same value (the data dir records it).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_SHARDS as i64))]
    pub shards: u32,
    /// UNSAFE (--shards): a participant holding a prepared transaction commits it on its own
    /// after a short wait instead of asking the coordinator group; a cross-shard transaction
    /// can then commit in one group and abort in another (a partly applied transaction).
    #[arg(long)]
    pub unsafe_2pc_presumed_commit: bool,
    /// Raft, Multi-Paxos: snapshot the state machine and compact the log once this many
    /// entries were applied since the last snapshot; 0 never by count. Default 100000.
    #[arg(long)]
    pub snapshot_entries: Option<u64>,
    /// Raft, Multi-Paxos: ... or once the entries applied since the last snapshot take this
    /// many bytes (serialized); 0 never by size. Default 67108864 (64 MiB).
    #[arg(long)]
    pub snapshot_bytes: Option<u64>,
    /// Raft, Multi-Paxos: largest piece of a snapshot sent to a lagging peer in one message.
    #[arg(long, default_value_t = DEFAULT_CHUNK as u64, value_parser = clap::value_parser!(u64).range(1..=MAX_CHUNK))]
    pub snapshot_chunk_bytes: u64,
    /// Raft: join an existing cluster. The node starts with no configuration (not a voter,
    /// never campaigns) and waits for the leader to add it (POST /admin/members on the
    /// leader); --peers lists the members it must be able to answer. Give it on every start
    /// of a node that joined; its empty --data-dir fills from the leader's snapshot and log.
    #[arg(long)]
    pub join: bool,
    /// UNSAFE (Raft): accept membership changes of several voters at once (POST
    /// /admin/members {"action":"add-voters",...}, DELETE /admin/members/n4,n5): old and new
    /// configurations need not share a majority, so two leaders can be elected in one term.
    #[arg(long)]
    pub unsafe_multi_server_change: bool,
}

/// Most replication groups `--shards` accepts.
pub const MAX_SHARDS: u32 = 64;

/// The file in a sharded data dir that records `--shards`.
const SHARDS_FILE: &str = "shards";

/// Largest `--snapshot-chunk-bytes`: hex-encoded, a chunk must fit a 16 MiB peer frame.
const MAX_CHUNK: u64 = 4 * 1024 * 1024;
/// Default `--snapshot-entries`.
const DEFAULT_SNAPSHOT_ENTRIES: u64 = 100_000;
/// Default `--snapshot-bytes`.
const DEFAULT_SNAPSHOT_BYTES: u64 = 64 * 1024 * 1024;

/// Largest HTTP timeout flag (one day): beyond it a deadline is meaningless.
const MAX_HTTP_MS: u64 = 86_400_000;

/// Parses an HTTP timeout flag: whole milliseconds in 1..=[`MAX_HTTP_MS`].
fn http_ms(s: &str) -> Result<u64, String> {
    let ms: u64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of milliseconds"))?;
    if !(1..=MAX_HTTP_MS).contains(&ms) {
        return Err(format!(
            "{ms} is out of range: it must be between 1 and {MAX_HTTP_MS} (one day)"
        ));
    }
    Ok(ms)
}

/// Resolves the HTTP flags, defaulting the connection cap from the open-file limit.
fn http_limits(args: &Args) -> HttpLimits {
    let fd_limit = crate::http::open_file_limit();
    let max_connections = match args.max_connections {
        Some(n) => {
            if fd_limit.is_some_and(|l| n >= l) {
                tracing::warn!(
                    max_connections = n,
                    open_file_limit = fd_limit,
                    "--max-connections is not below the open-file limit: the node can run out \
                     of file descriptors before the cap applies"
                );
            }
            n as usize
        }
        None => HttpLimits::default_max_connections(fd_limit),
    };
    HttpLimits {
        header_timeout: Duration::from_millis(args.http_header_timeout_ms),
        body_timeout: Duration::from_millis(args.http_body_timeout_ms),
        idle_timeout: Duration::from_millis(args.http_idle_timeout_ms),
        max_connections,
    }
}

fn parse_peers(s: &str) -> anyhow::Result<Vec<(NodeId, String)>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((id, addr)) = part.split_once('=') else {
            bail!("--peers entry {part:?} is not id=addr");
        };
        if id.is_empty() || addr.is_empty() {
            bail!("--peers entry {part:?} is not id=addr");
        }
        out.push((id.to_string(), addr.to_string()));
    }
    Ok(out)
}

/// Runs kvnode's command line (argv[0] first) to completion and returns its exit code.
pub fn run_cli(argv: Vec<OsString>) -> ExitCode {
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kvnode: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let id = args.id.clone();
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvnode {id}: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// How one node's engine is configured: what kvnode's flags resolve to, for the `kvnode`
/// binary and for the simulator alike (one parser, so a flag means the same in both).
#[derive(Debug, Clone)]
pub struct EngineSpec {
    /// `--engine`.
    pub kind: EngineKind,
    /// Engine settings of the node the flags were resolved for (its id and peers included).
    pub config: EngineConfig,
    /// NWR's quorums and clock (checked for every engine; only NWR uses them).
    pub nwr: NwrConfig,
    /// `--unsafe-no-start-working` (Multi-Paxos).
    pub unsafe_no_start_working: bool,
    /// `--request-timeout-ms`: the HTTP layer's deadline of a client request.
    pub request_timeout_ms: u64,
    /// False under `--no-fsync`.
    pub fsync: bool,
    /// `--shards`: replication groups per process (1 = unsharded).
    pub shards: u32,
    /// `--unsafe-2pc-presumed-commit`.
    pub unsafe_2pc_presumed_commit: bool,
}

/// kvnode flags that do not make a valid node.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EngineFlagsError(String);

impl EngineSpec {
    /// Resolves parsed flags for node `args.id` with the given peers.
    fn resolve(args: &Args, peers: Vec<NodeId>) -> anyhow::Result<EngineSpec> {
        if args.tick_ms == 0 || args.election_ticks < 2 || args.heartbeat_ticks == 0 {
            bail!("--tick-ms and --heartbeat-ticks must be > 0 and --election-ticks >= 2");
        }
        if args.heartbeat_ticks >= args.election_ticks {
            bail!("--heartbeat-ticks must be smaller than --election-ticks");
        }
        if args.shards > 1 && args.engine == EngineKind::Nwr {
            bail!("--shards applies to --engine raft and multipaxos (NWR places keys by its own ring)");
        }
        if args.shards > 1 && args.join {
            bail!("--join cannot be used with --shards > 1: membership changes are not supported with --shards (every group's members are fixed by --peers)");
        }
        if args.shards > 1 && args.unsafe_multi_server_change {
            bail!("--unsafe-multi-server-change cannot be used with --shards > 1: membership changes are not supported with --shards");
        }
        if args.unsafe_2pc_presumed_commit && args.shards < 2 {
            bail!("--unsafe-2pc-presumed-commit needs --shards 2 or more (two-phase commit runs across groups)");
        }
        let nwr = nwr_config(args, peers.len() + 1)?;
        if args.engine != EngineKind::Raft {
            if args.join {
                bail!("--join needs --engine raft (the only engine with membership changes)");
            }
            if args.unsafe_multi_server_change {
                bail!("--unsafe-multi-server-change needs --engine raft");
            }
        }
        if args.engine == EngineKind::Nwr
            && (args.snapshot_entries.is_some() || args.snapshot_bytes.is_some())
        {
            bail!(
                "--snapshot-entries/--snapshot-bytes: the nwr engine keeps no log to compact \
                 (its entries are the replicas' data)"
            );
        }
        let mut cfg = EngineConfig::new(&args.id, &[]);
        cfg.peers = peers;
        cfg.seed = args.seed;
        cfg.election_ticks = args.election_ticks;
        cfg.heartbeat_ticks = args.heartbeat_ticks;
        cfg.tick_ms = args.tick_ms;
        cfg.prevote = args.prevote;
        cfg.unsafe_commit_previous_term = args.unsafe_commit_previous_term;
        cfg.snapshot_entries = args.snapshot_entries.unwrap_or(DEFAULT_SNAPSHOT_ENTRIES);
        cfg.snapshot_bytes = args.snapshot_bytes.unwrap_or(DEFAULT_SNAPSHOT_BYTES);
        cfg.snapshot_chunk = args.snapshot_chunk_bytes as usize;
        cfg.join = args.join;
        cfg.unsafe_multi_server_change = args.unsafe_multi_server_change;
        cfg.read_mode = match args.read {
            ReadFlag::ReadIndex => ReadMode::ReadIndex,
            ReadFlag::Lease => ReadMode::Lease,
            ReadFlag::Log => ReadMode::Log,
            ReadFlag::UnsafeLocal => ReadMode::UnsafeLocal,
            ReadFlag::UnsafeLeaseWallclock => ReadMode::UnsafeLeaseWallclock,
        };
        Ok(EngineSpec {
            kind: args.engine,
            config: cfg,
            nwr,
            unsafe_no_start_working: args.unsafe_no_start_working,
            request_timeout_ms: args.request_timeout_ms,
            fsync: !args.no_fsync,
            shards: args.shards,
            unsafe_2pc_presumed_commit: args.unsafe_2pc_presumed_commit,
        })
    }

    /// Parses kvnode's engine flags (`--engine raft --read unsafe-local ...`, everything but
    /// the node's identity, addresses and data directory) for node `id` of `cluster`, with
    /// kvnode's own parser and checks.
    pub fn from_flags(
        id: &str,
        cluster: &[NodeId],
        flags: &[String],
    ) -> Result<EngineSpec, EngineFlagsError> {
        for f in flags {
            let name = f.split('=').next().unwrap_or_default();
            if [
                "--id",
                "--peers",
                "--peer-listen",
                "--client-listen",
                "--data-dir",
            ]
            .contains(&name)
            {
                return Err(EngineFlagsError(format!(
                    "{name} is set by the simulator, not by the kvnode flags"
                )));
            }
        }
        let peers: Vec<NodeId> = cluster.iter().filter(|p| *p != id).cloned().collect();
        let peer_list: Vec<String> = peers.iter().map(|p| format!("{p}=sim")).collect();
        let argv = [
            "kvnode",
            "--id",
            id,
            "--peer-listen",
            "sim",
            "--client-listen",
            "sim",
        ]
        .into_iter()
        .map(String::from)
        .chain([
            "--data-dir".into(),
            "sim".into(),
            "--peers".into(),
            peer_list.join(","),
        ])
        .chain(flags.iter().cloned());
        let args = Args::try_parse_from(argv).map_err(|e| {
            EngineFlagsError(
                e.render()
                    .to_string()
                    .trim_end()
                    .replace("kvnode", "kvnode flags"),
            )
        })?;
        EngineSpec::resolve(&args, peers).map_err(|e| EngineFlagsError(format!("{e:#}")))
    }

    /// The engine settings of node `id` of `cluster` under the same flags.
    pub fn node_config(&self, id: &str, cluster: &[NodeId]) -> EngineConfig {
        let mut c = self.config.clone();
        c.id = id.to_string();
        c.peers = cluster.iter().filter(|p| *p != id).cloned().collect();
        c
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let peers = parse_peers(&args.peers)?;
    let mut peers = peers;
    if peers.iter().any(|(p, _)| *p == args.id) {
        tracing::warn!(id = %args.id, "--peers lists this node itself; ignoring that entry");
        peers.retain(|(p, _)| *p != args.id);
    }
    let spec = EngineSpec::resolve(&args, peers.iter().map(|(p, _)| p.clone()).collect())?;
    check_data_dir_layout(&args.data_dir, spec.shards)?;
    if spec.shards > 1 {
        return run_sharded(args, peers, spec).await;
    }
    let storage = FileStorage::open(&args.data_dir, spec.fsync)
        .with_context(|| format!("opening data dir {}", args.data_dir.display()))?;
    if args.no_fsync {
        tracing::warn!("--no-fsync: acknowledged writes may be lost on crash (benchmarking only)");
    }
    let recovered = storage.recovered();
    let cfg = spec.config;
    match spec.kind {
        EngineKind::Raft => {
            let engine = Raft::new(cfg, recovered).context("recovering raft state")?;
            serve_one(args, peers, engine, storage).await
        }
        EngineKind::Multipaxos => {
            let engine = MultiPaxos::new(cfg, recovered, spec.unsafe_no_start_working)
                .context("recovering multipaxos state")?;
            serve_one(args, peers, engine, storage).await
        }
        EngineKind::Nwr => {
            let engine = Nwr::new(cfg, spec.nwr, recovered).context("recovering nwr state")?;
            serve_one(args, peers, engine, storage).await
        }
    }
}

/// Refuses a data dir written under another `--shards` (its logs would be read as the wrong
/// groups' or not at all): a sharded dir records S in a `shards` file, an unsharded one has
/// its log at the top.
fn check_data_dir_layout(dir: &std::path::Path, shards: u32) -> anyhow::Result<()> {
    let marker = dir.join(SHARDS_FILE);
    let recorded = match std::fs::read_to_string(&marker) {
        Ok(text) => Some(text.trim().parse::<u32>().map_err(|_| {
            anyhow::anyhow!(
                "{}: not a number of shards: {:?}",
                marker.display(),
                text.trim()
            )
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", marker.display())),
    };
    let unsharded_log = dir.join(crate::storage::LOG_FILE).exists();
    match (recorded, shards) {
        (Some(r), s) if r != s => bail!(
            "--data-dir {} holds {r} shard(s) but --shards is {s}; start with --shards {r} or an empty dir",
            dir.display()
        ),
        (None, s) if s > 1 && unsharded_log => bail!(
            "--data-dir {} holds an unsharded log but --shards is {s}; start without --shards or with an empty dir",
            dir.display()
        ),
        (None, s) if s > 1 => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(&marker, format!("{s}\n"))
                .with_context(|| format!("writing {}", marker.display()))?;
        }
        _ => {}
    }
    Ok(())
}

/// Starts the groups of a sharded node: one engine and one log per group.
async fn run_sharded(
    args: Args,
    peers: Vec<(NodeId, String)>,
    spec: EngineSpec,
) -> anyhow::Result<()> {
    let mut storages = Vec::new();
    for g in 0..spec.shards {
        let dir = args.data_dir.join(format!("shard-{g}"));
        let storage = FileStorage::open(&dir, spec.fsync)
            .with_context(|| format!("opening data dir {}", dir.display()))?;
        storages.push(storage);
    }
    if args.no_fsync {
        tracing::warn!("--no-fsync: acknowledged writes may be lost on crash (benchmarking only)");
    }
    // Groups elect independently: each gets its own seed.
    let group_cfg = |g: u32| {
        let mut c = spec.config.clone();
        c.seed = c
            .seed
            .wrapping_add(u64::from(g).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        c
    };
    let mut groups_raft = Vec::new();
    let mut groups_mp = Vec::new();
    for (g, storage) in (0u32..).zip(storages) {
        let recovered = storage.recovered();
        match spec.kind {
            EngineKind::Raft => {
                let e = Raft::new(group_cfg(g), recovered)
                    .with_context(|| format!("recovering raft state of shard {g}"))?;
                groups_raft.push((e, storage));
            }
            EngineKind::Multipaxos => {
                let e = MultiPaxos::new(group_cfg(g), recovered, spec.unsafe_no_start_working)
                    .with_context(|| format!("recovering multipaxos state of shard {g}"))?;
                groups_mp.push((e, storage));
            }
            EngineKind::Nwr => bail!("--shards applies to --engine raft and multipaxos"),
        }
    }
    match spec.kind {
        EngineKind::Raft => serve_shards(args, peers, &spec, groups_raft).await,
        _ => serve_shards(args, peers, &spec, groups_mp).await,
    }
}

/// Serves an unsharded node: one engine, one log.
async fn serve_one<E: engine::Engine, S: Storage + 'static>(
    args: Args,
    peers: Vec<(NodeId, String)>,
    engine: E,
    storage: S,
) -> anyhow::Result<()> {
    let dcfg = DriverConfig {
        tick: Duration::from_millis(args.tick_ms),
    };
    let (name, st) = (engine.name(), engine.status());
    let membership = engine.membership().cloned();
    serve(
        args,
        peers,
        name,
        st,
        membership,
        move |transport, inbound, clients, admin, status, shutdown| {
            let driver = node::Driver {
                engine,
                storage,
                transport,
                inbound,
                clients,
                admin,
                status,
            };
            driver.run(dcfg, shutdown)
        },
    )
    .await
}

/// Serves a sharded node: several groups behind [`ShardedDriver`].
async fn serve_shards<E: engine::Engine, S: Storage + 'static>(
    args: Args,
    peers: Vec<(NodeId, String)>,
    spec: &EngineSpec,
    groups: Vec<(E, S)>,
) -> anyhow::Result<()> {
    let tick = Duration::from_millis(args.tick_ms);
    let request_ticks = args.request_timeout_ms / args.tick_ms.max(1);
    let cfg = TwoPcConfig::from_request_ticks(
        spec.shards,
        request_ticks,
        spec.unsafe_2pc_presumed_commit,
    );
    if spec.unsafe_2pc_presumed_commit {
        tracing::warn!(
            "--unsafe-2pc-presumed-commit: prepared transactions commit without their decision"
        );
    }
    let Some((first, _)) = groups.first() else {
        bail!("--shards must be at least 1");
    };
    let (name, st) = (first.name(), first.status());
    let shards = Shards::new(
        args.id.clone(),
        groups,
        tick.as_nanos() as u64,
        cfg,
        rand::random(),
    );
    serve(
        args,
        peers,
        name,
        st,
        None,
        move |transport, inbound, clients, admin, status, shutdown| {
            let driver = ShardedDriver {
                shards,
                transport,
                inbound,
                clients,
                admin,
                status,
            };
            driver.run(tick, shutdown)
        },
    )
    .await
}

/// Resolves and checks the NWR flags against the cluster size (checked for every engine so
/// a typo is never silently ignored; only `--engine nwr` uses the result).
fn nwr_config(args: &Args, cluster_size: usize) -> anyhow::Result<NwrConfig> {
    let mut c = NwrConfig::majority(args.n.unwrap_or(cluster_size));
    if let Some(w) = args.w {
        c.w = w;
    }
    if let Some(r) = args.r {
        c.r = r;
    }
    c.read_repair = args.read_repair;
    c.read_writeback = args.read_writeback;
    c.clock = match args.clock {
        ClockFlag::Wall => ClockMode::Wall,
        ClockFlag::Hybrid => ClockMode::Hybrid,
    };
    // Answer before the HTTP layer's own deadline, so reads fail definitely (503).
    c.request_ticks = (args.request_timeout_ms * 4 / 5 / args.tick_ms.max(1)).max(1);
    c.validate(cluster_size)?;
    Ok(c)
}

/// Binds listeners, starts transport, HTTP and the driver `run_driver` builds (any engine,
/// sharded or not: `M` is what travels between peers), and waits for SIGTERM/SIGINT.
async fn serve<M, D, Fut>(
    args: Args,
    peers: Vec<(NodeId, String)>,
    engine_name: &'static str,
    initial: engine::Status,
    membership: Option<Membership>,
    run_driver: D,
) -> anyhow::Result<()>
where
    M: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    D: FnOnce(
        Transport<M>,
        mpsc::Receiver<(NodeId, M)>,
        mpsc::Receiver<node::ClientRequest>,
        mpsc::Receiver<node::AdminRequest>,
        StatusHandle,
        CancellationToken,
    ) -> Fut,
    Fut: std::future::Future<Output = Result<(), node::NodeError>>,
{
    let shutdown = CancellationToken::new();
    let peer_listener = TcpListener::bind(&args.peer_listen)
        .await
        .with_context(|| format!("binding --peer-listen {}", args.peer_listen))?;
    let client_listener = TcpListener::bind(&args.client_listen)
        .await
        .with_context(|| format!("binding --client-listen {}", args.client_listen))?;
    let tcfg = TransportConfig::new(&args.id);
    let transport = Transport::start(&tcfg, &peers, shutdown.clone());
    let (in_tx, in_rx) = mpsc::channel(16 * 1024);
    tokio::spawn(serve_inbound::<M>(peer_listener, in_tx, shutdown.clone()));
    let status: StatusHandle = Arc::new(Mutex::new(NodeStatus {
        id: args.id.clone(),
        engine: engine_name,
        role: initial.role,
        term: initial.term,
        leader: None,
        commit_index: 0,
        applied_index: 0,
        shards: Vec::new(),
        membership,
    }));
    let (client_tx, client_rx) = mpsc::channel(16 * 1024);
    let (admin_tx, admin_rx) = mpsc::channel(64);
    let limits = http_limits(&args);
    let api = router(ApiState {
        tx: client_tx,
        admin: admin_tx,
        status: status.clone(),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        body_timeout: limits.body_timeout,
    });
    let http = tokio::spawn(crate::http::serve(
        client_listener,
        api,
        limits,
        shutdown.clone(),
    ));
    tracing::info!(
        id = %args.id,
        engine = engine_name,
        shards = args.shards,
        peer_listen = %args.peer_listen,
        client_listen = %args.client_listen,
        peers = ?peers,
        read = ?args.read,
        http_header_timeout_ms = args.http_header_timeout_ms,
        http_body_timeout_ms = args.http_body_timeout_ms,
        http_idle_timeout_ms = args.http_idle_timeout_ms,
        max_connections = limits.max_connections,
        "kvnode started"
    );
    let driver = run_driver(
        transport,
        in_rx,
        client_rx,
        admin_rx,
        status,
        shutdown.clone(),
    );
    let sig = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            _ = sig.cancelled() => return,
        }
        tracing::info!("signal received, shutting down");
        sig.cancel();
    });
    let result = driver.await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
    result?;
    tracing::info!("kvnode stopped");
    Ok(())
}
