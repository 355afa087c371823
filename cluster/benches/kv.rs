//! Throughput benchmark for kvnode (`cargo bench -p cluster`): starts 3 release kvnode
//! processes on loopback with fsync ON and drives the leader with 16 concurrent keep-alive
//! HTTP clients, first with puts, then with linearizable (read-index) gets, and prints
//! ops/s and p50/p99 latency. Reference (issue 3): etcd 3.4 did ~700 puts/s and ~840
//! linearizable gets/s in the same setup; the target is 2x that.
//!
//! Environment: `KV_BENCH_SECS` (measured seconds per phase, default 5),
//! `KV_BENCH_CLIENTS` (default 16), `KV_BENCH_READ` (kvnode `--read`, default read-index),
//! `FAULTLINE_BENCH_ENGINE` (kvnode `--engine`, default raft; e.g. multipaxos).

use serde_json::json;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Procs(Vec<Child>, tempfile::TempDir);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy)]
enum Phase {
    Put,
    Get,
}

async fn run_phase(
    leader: &str,
    phase: Phase,
    clients: usize,
    warmup: Duration,
    measure: Duration,
) -> (f64, Vec<Duration>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let url = format!("http://{leader}");
        let stop = stop.clone();
        let measuring = measuring.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let key = format!("k{}", (c as u64 * 7919 + i) % 1000);
                let t0 = Instant::now();
                let r = match phase {
                    Phase::Put => {
                        http.put(format!("{url}/kv/{key}"))
                            .header("content-type", "application/json")
                            .body(json!({"value": i}).to_string())
                            .send()
                            .await
                    }
                    Phase::Get => http.get(format!("{url}/kv/{key}")).send().await,
                };
                let ok = match r {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        let _ = r.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        lat.push(t0.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(measure).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    (all.len() as f64 / elapsed.as_secs_f64(), all, errors)
}

fn pct(lat: &[Duration], p: f64) -> f64 {
    if lat.is_empty() {
        return f64::NAN;
    }
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat[i].as_secs_f64() * 1000.0
}

fn main() {
    let secs = env_or("KV_BENCH_SECS", 5);
    let clients = env_or("KV_BENCH_CLIENTS", 16) as usize;
    let read = std::env::var("KV_BENCH_READ").unwrap_or_else(|_| "read-index".into());
    let engine = std::env::var("FAULTLINE_BENCH_ENGINE").unwrap_or_else(|_| "raft".into());
    let dir = tempfile::tempdir().unwrap();
    let ids = ["n1", "n2", "n3"];
    let peer: Vec<String> = ids.iter().map(|_| free_addr()).collect();
    let client: Vec<String> = ids.iter().map(|_| free_addr()).collect();
    let mut procs = Procs(Vec::new(), dir);
    for (i, id) in ids.iter().enumerate() {
        let peers: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| format!("{}={}", ids[j], peer[j]))
            .collect();
        let child = Command::new(env!("CARGO_BIN_EXE_kvnode"))
            .args(["--id", id, "--peer-listen", &peer[i]])
            .args(["--client-listen", &client[i], "--peers", &peers.join(",")])
            .arg("--data-dir")
            .arg(procs.1.path().join(id))
            .args(["--read", &read, "--engine", &engine])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kvnode");
        procs.0.push(child);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let leader = loop {
            let mut found = None;
            for c in &client {
                if let Ok(r) = http.get(format!("http://{c}/status")).send().await {
                    if let Ok(v) = r.json::<serde_json::Value>().await {
                        if v["role"] == "leader" {
                            found = Some(c.clone());
                        }
                    }
                }
            }
            if let Some(l) = found {
                break l;
            }
            assert!(Instant::now() < deadline, "no leader elected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!(
            "kvnode bench: --engine {engine}, 3 nodes on loopback, fsync on, {clients} keep-alive clients, {secs}s per phase, --read {read}"
        );
        let warm = Duration::from_secs(1);
        let measure = Duration::from_secs(secs);
        for (name, phase) in [("put", Phase::Put), ("get", Phase::Get)] {
            let (rate, lat, errors) = run_phase(&leader, phase, clients, warm, measure).await;
            println!(
                "{name:>4}: {rate:8.0} ops/s   p50 {:6.2} ms   p99 {:6.2} ms   ({} ok, {errors} errors)",
                pct(&lat, 0.50),
                pct(&lat, 0.99),
                lat.len()
            );
        }
    });
}
