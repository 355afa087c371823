//! No `panicked at` is reachable from any numeric kvnode flag: each is swept with values that
//! break naive parsing and arithmetic (`nan`, `inf`, `-1`, `0`, `1e30`, a number beyond
//! u64). A node that accepts the value is started for real and must serve or exit cleanly;
//! it is stopped after a moment. Every run is bounded and uses its own free ports.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FLAGS: &[&str] = &[
    "tick-ms",
    "election-ticks",
    "heartbeat-ticks",
    "seed",
    "request-timeout-ms",
    "n",
    "w",
    "r",
    "http-header-timeout-ms",
    "http-body-timeout-ms",
    "http-idle-timeout-ms",
    "max-connections",
    "shards",
];

const VALUES: &[&str] = &[
    "nan",
    "inf",
    "-1",
    "0",
    "1",
    "1e30",
    "99999999999999999999999",
    "",
];

#[test]
fn numeric_flags_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    for flag in FLAGS {
        for v in VALUES {
            let peer = cluster::ports::free_loopback_port().unwrap();
            let client = cluster::ports::free_loopback_port().unwrap();
            let data = dir.path().join(format!("{flag}-{}", v.len()));
            let mut child = Command::new(env!("CARGO_BIN_EXE_kvnode"))
                .args(["--id", "n1", "--engine", "nwr", "--peer-listen"])
                .arg(peer.to_string())
                .arg("--client-listen")
                .arg(client.to_string())
                .arg("--data-dir")
                .arg(&data)
                .arg(format!("--{flag}={v}"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // Up to 1 s: either it exits (a refused value) or it is running (accepted).
            let deadline = Instant::now() + Duration::from_millis(1000);
            let exited = loop {
                if let Some(st) = child.try_wait().unwrap() {
                    break Some(st);
                }
                if Instant::now() > deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if exited.is_none() {
                let _ = child.kill();
            }
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !err.contains("panicked at") && out.status.code() != Some(101),
                "kvnode --{flag}={v} panicked:\n{err}"
            );
            if let Some(st) = exited {
                assert!(
                    !st.success() || err.is_empty(),
                    "kvnode --{flag}={v} exited 0 with errors:\n{err}"
                );
            }
        }
    }
}
