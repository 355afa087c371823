//! Shared by the `report_*` integration tests: a results directory with a passing and a failing
//! sample run, and a `faultline serve` child process that is killed when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use report::sample::{write_sample_run, Sample};

/// The faultline binary under test.
pub fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

/// Writes results/sample-pass/<ts> and results/sample-fail/<ts> under `root`; returns both.
pub fn sample_results(root: &Path) -> (PathBuf, PathBuf) {
    let pass = root.join("sample-pass/20260101T000000Z");
    let fail = root.join("sample-fail/20260102T000000Z");
    write_sample_run(&pass, Sample::Passing).unwrap();
    write_sample_run(&fail, Sample::Failing).unwrap();
    (pass, fail)
}

/// A running `faultline serve`; the process is killed on drop.
pub struct Server {
    child: Child,
    /// Base URL, ending in `/`.
    pub url: String,
}

impl Server {
    /// Starts `faultline serve --dir DIR --bind 127.0.0.1:0` and waits for its address line.
    pub fn start(dir: &Path) -> Server {
        let mut child = faultline()
            .args(["serve", "--dir"])
            .arg(dir)
            .args(["--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("faultline serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in serve's first line: {line:?}"))
            .to_owned();
        Server { child, url }
    }

    /// GETs a path (relative to the base URL) and returns (status, body).
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let host = self.url.trim_start_matches("http://").trim_end_matches('/');
        let mut s = TcpStream::connect(host).unwrap();
        write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, raw[(split + 4).min(raw.len())..].to_vec())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs headless Chromium with the flags that keep it offline and quiet, plus `extra`.
pub fn run_chromium(
    bin: &Path,
    profile: &Path,
    extra: &[String],
    url: &str,
) -> std::process::Output {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // Never hang the test suite on a stuck browser: kill it after a minute.
    let mut child = cmd.spawn().expect("chromium starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The DOM Chromium ends with after loading `url` (scripts run).
pub fn dump_dom(bin: &Path, profile: &Path, url: &str) -> String {
    let o = run_chromium(bin, profile, &["--dump-dom".into()], url);
    String::from_utf8_lossy(&o.stdout).into_owned()
}
