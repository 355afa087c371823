//! `faultline serve`: a small web UI over the results directory.
//!
//! `/` lists every run, newest first, and the stored suite runs (rendered by
//! [`report::render_listing`]); `/trends` shows each suite's detection rate and p99 per variant
//! across its stored runs ([`report::render_trends`]); every other
//! path is a file under the results directory, served read-only. A run whose `index.html` is
//! missing (e.g. rendered by an older version, or a crashed harness) is rendered on first
//! request. Paths are resolved strictly inside the results directory: `..` is refused, and
//! every file is served only if its canonical path (symlinks resolved) lies inside the
//! canonical results root — `results/latest` works, a link to `/etc/passwd` gets 403.
//! Results hold cluster logs, so binding to anything but loopback is warned about.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use checkers::layout;

/// Flags of `faultline serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The results directory to browse.
    #[arg(long, default_value = "results")]
    pub dir: PathBuf,
    /// Address to listen on (use port 0 for any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,
}

/// Runs the subcommand until Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        anyhow::bail!(
            "results directory {} does not exist (run `faultline test` first, or pass --dir)",
            args.dir.display()
        );
    }
    let rt = tokio::runtime::Runtime::new().context("could not start the async runtime")?;
    rt.block_on(serve(args.dir, &args.bind, async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// Serves `dir` on `bind` until `shutdown` completes.
pub async fn serve(
    dir: PathBuf,
    bind: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("could not listen on {bind}"))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "faultline: warning: serving on {addr}, reachable from other machines; the \
             results contain cluster logs and configuration (use --bind 127.0.0.1:PORT to keep \
             them local)"
        );
    }
    let root = Arc::new(std::fs::canonicalize(&dir).unwrap_or(dir));
    println!(
        "faultline: serving {} at http://{addr}/ (Ctrl-C to stop)",
        root.display()
    );
    let app = Router::new()
        .route("/", get(listing))
        .route("/trends", get(trends))
        .fallback(get(file))
        .with_state(root);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the web server failed")
}

async fn listing(State(root): State<Arc<PathBuf>>) -> Response {
    match tokio::task::spawn_blocking(move || report::render_listing(&root)).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn trends(State(root): State<Arc<PathBuf>>) -> Response {
    match tokio::task::spawn_blocking(move || report::render_trends(&root)).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Decodes `%XX` escapes of a URL path.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Maps a URL path to a file under `root`, refusing anything that could leave it.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = PathBuf::from(percent_decode(url_path.trim_start_matches('/')));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "css" => "text/css",
        "js" => "text/javascript",
        _ => "text/plain; charset=utf-8",
    }
}

async fn file(State(root): State<Arc<PathBuf>>, uri: Uri) -> Response {
    let Some(path) = resolve(&root, uri.path()) else {
        return (StatusCode::BAD_REQUEST, "path leaves the results directory").into_response();
    };
    if path.is_dir() {
        let target = format!("{}/{}", uri.path().trim_end_matches('/'), layout::INDEX);
        return Redirect::to(&target).into_response();
    }
    if !path.exists() && path.file_name().is_some_and(|n| n == layout::INDEX) {
        // A run that was never rendered: render it now.
        let dir = path.parent().map(Path::to_owned).unwrap_or_default();
        if dir.join(layout::HISTORY).is_file() {
            let rendered = tokio::task::spawn_blocking(move || report::render_run(&dir)).await;
            if let Ok(Err(e)) = rendered {
                return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
            }
        }
    }
    // The last word: whatever the path looked like, the file it names (after symlinks) must
    // live under the root.
    let path = match tokio::fs::canonicalize(&path).await {
        Ok(p) if p.starts_with(root.as_path()) => p,
        Ok(p) => {
            eprintln!(
                "faultline: refused {}: it resolves to {}, outside {}",
                uri.path(),
                p.display(),
                root.display()
            );
            return (
                StatusCode::FORBIDDEN,
                "that path resolves outside the results directory",
            )
                .into_response();
        }
        Err(_) => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&path))], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
