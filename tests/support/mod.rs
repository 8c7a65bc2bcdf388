//! Shared test harness: a recording tonic upstream (`upstream.rs`) with MyService on it
//! (`seed_service.rs`, with the test protos), a scripted raw HTTP/2 upstream
//! (`raw_upstream.rs`), the gateway served in-process on `127.0.0.1:0` (`gateway.rs`), a
//! small HTTP client (`http.rs`), helpers for real child processes (`process.rs`), the Go
//! client and server of `clients/go` (`go.rs`), the Library test service behind both codecs
//! (`library.rs`), the HttpBody file service (`files.rs`), per-run certificates (`tls.rs`) and headless
//! Chromium with a page server and a wire tap (`browser.rs`). Not every test file uses every
//! piece.
#![allow(dead_code, clippy::unwrap_used)]

pub mod browser;
pub mod files;
pub mod gateway;
pub mod go;
pub mod http;
pub mod library;
pub mod process;
pub mod raw_upstream;
#[cfg(feature = "test-protos")]
pub mod seed_service;
pub mod tls;
pub mod upstream;

use std::future::Future;
use std::time::Duration;

/// Polls `check` until it yields `Some`, every 20 ms, and fails the test naming `what` when
/// `within` passes first. The one way tests wait for something to happen: no fixed sleeps.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(done) = check().await {
            return done;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A directory under the temp dir, unique to this process and call; removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("protogate-{prefix}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
