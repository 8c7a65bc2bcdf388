//! A real browser for tests: Debian's headless `chromium` (found on `PATH`, or a clear failure
//! that says to run `scripts/setup`), run with `--dump-dom` on a page that writes its results
//! as JSON into `<pre id="result">`; a static page server on `127.0.0.1:0`, so that a page has
//! an origin of its own; and a TCP tap between the browser and the gateway that keeps the bytes
//! of both directions, for what the gateway itself does not log (CORS preflights). It does not
//! own the pages or the gateway (`chromium_cors.rs`, `process.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Wall-clock bound on one Chromium run; a healthy one takes about a second.
pub const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(30);
/// Virtual time only runs while no fetch is pending, so this bounds page timers, not fetches.
pub const VIRTUAL_TIME_BUDGET_MS: u32 = 5_000;

/// `chromium` on `PATH`; `None` (after saying so) when it is missing and
/// `PROTOGATE_SKIP_BROWSER=1` allows skipping. A missing browser is otherwise a failure.
pub fn chromium_or_skip() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|path| path.is_file());
    if found.is_none() && std::env::var("PROTOGATE_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("skipped: chromium is not installed and PROTOGATE_SKIP_BROWSER=1");
        return None;
    }
    Some(found.expect(
        "chromium is not on PATH: run scripts/setup (as root it installs Debian's chromium), \
         or set PROTOGATE_SKIP_BROWSER=1 to skip the real-browser tests",
    ))
}

/// A file or directory under the temp dir, removed on drop.
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(name: &str) -> TempPath {
        let unique = format!("protogate-browser-{}-{name}", std::process::id());
        TempPath(std::env::temp_dir().join(unique))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One request or response head seen on the wire; header names lowercased.
#[derive(Debug)]
pub struct Head {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn varies_on_origin(&self) -> bool {
        let vary = self.headers.iter().filter(|(n, _)| n == "vary");
        vary.flat_map(|(_, v)| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case("origin"))
    }
}

/// Every head in `bytes` whose first line starts with `prefix`. Bodies are not parsed: the
/// gateway's are JSON or gzip, in which a start line does not occur by accident.
pub fn heads(bytes: &[u8], prefix: &str) -> Vec<Head> {
    let text = String::from_utf8_lossy(bytes);
    let parse = |(at, _): (usize, &str)| {
        let rest = &text[at..];
        let mut lines = rest[..rest.find("\r\n\r\n")?].split("\r\n");
        let line = lines.next()?.to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(Head { line, headers })
    };
    text.match_indices(prefix).filter_map(parse).collect()
}

/// What one relayed connection carried: browser → gateway and gateway → browser.
#[derive(Default)]
struct Wire {
    sent: Vec<u8>,
    received: Vec<u8>,
}

/// A TCP relay in front of the gateway that keeps a copy of both directions.
pub struct Tap {
    pub addr: SocketAddr,
    wires: Arc<Mutex<Vec<Wire>>>,
}

impl Tap {
    pub async fn start(gateway: SocketAddr) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tap");
        let addr = listener.local_addr().expect("tap addr");
        let wires = Arc::new(Mutex::new(Vec::new()));
        let sink = wires.clone();
        tokio::spawn(async move {
            while let Ok((browser, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(gateway).await else {
                    continue;
                };
                let index = {
                    let mut wires = sink.lock().expect("tap lock");
                    wires.push(Wire::default());
                    wires.len() - 1
                };
                let (from_browser, to_browser) = browser.into_split();
                let (from_gateway, to_gateway) = upstream.into_split();
                tokio::spawn(relay(from_browser, to_gateway, sink.clone(), index, true));
                tokio::spawn(relay(from_gateway, to_browser, sink.clone(), index, false));
            }
        });
        Tap { addr, wires }
    }

    /// Request heads the browser sent that start with `prefix` (such as `"OPTIONS "`).
    pub fn requests(&self, prefix: &str) -> Vec<Head> {
        let wires = self.wires.lock().expect("tap lock");
        wires.iter().flat_map(|w| heads(&w.sent, prefix)).collect()
    }

    /// Every response head the gateway sent back.
    pub fn responses(&self) -> Vec<Head> {
        let wires = self.wires.lock().expect("tap lock");
        wires
            .iter()
            .flat_map(|w| heads(&w.received, "HTTP/1.1 "))
            .collect()
    }
}

/// Copies `from` to `to` until EOF, keeping a copy in the wire at `index`.
async fn relay(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    wires: Arc<Mutex<Vec<Wire>>>,
    index: usize,
    toward_gateway: bool,
) {
    let mut buf = vec![0; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        {
            let mut wires = wires.lock().expect("tap lock");
            let wire = &mut wires[index];
            let copy = if toward_gateway {
                &mut wire.sent
            } else {
                &mut wire.received
            };
            copy.extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Serves `html` at `/` (and 404 elsewhere, such as `/favicon.ico`), one request per
/// connection.
pub async fn serve_page(listener: TcpListener, html: String) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let html = html.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let (status, body) = if head.starts_with(b"GET / ") {
                ("200 OK", html.as_str())
            } else {
                ("404 Not Found", "")
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
                 content-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Loads `url` in headless Chromium (a fresh profile) and returns what the page wrote into
/// `<pre id="result">`, parsed as JSON.
pub async fn page_results(chromium: &Path, url: &str) -> Value {
    let profile = TempPath::new(&format!("profile-{}", url.replace([':', '/'], "_")));
    let mut command = tokio::process::Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
        ])
        .args([
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("spawn chromium");
    // On timeout the child is dropped, which kills it (kill_on_drop).
    let output = tokio::time::timeout(CHROMIUM_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish {url} within {CHROMIUM_TIMEOUT:?}"))
        .expect("wait for chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chromium failed: {}\nstderr:\n{stderr}",
        output.status
    );
    const OPEN: &str = r#"<pre id="result">"#;
    let text = dom
        .find(OPEN)
        .map(|at| &dom[at + OPEN.len()..])
        .and_then(|rest| rest.find("</pre>").map(|end| &rest[..end]))
        .unwrap_or_else(|| panic!("no <pre id=\"result\"> in the DOM:\n{dom}\nstderr:\n{stderr}"));
    // dump-dom serializes text content with these escaped; `&amp;` last.
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}");
    let results: Value = serde_json::from_str(&text.replace("&amp;", "&"))
        .unwrap_or_else(|e| panic!("page wrote no JSON results ({e}): {text:?}\nstderr:\n{stderr}"));
    assert_eq!(results["done"], true, "page did not finish: {results}");
    results
}
