//! Counts per request of the seed call that CI holds (issue 20): the release gateway's
//! syscalls (strace, every thread) and user-space instructions (callgrind, every thread) per
//! `GET /users?ids=1,2`, over 2,000 calls on 32 keep-alive HTTP/1.1 connections, in front of
//! the in-process tonic upstream (`support::seed_service`). Counts, not times: they hold on a
//! noisy 2-core machine, where timings drift by tens of percent within minutes. callgrind
//! alone would miss the kernel, about half of the gateway's cost on loopback; strace alone
//! would miss everything between two syscalls.
//!
//! Beside them, the idle resident set after the first call (`VmRSS`): it grows by megabytes
//! when the linker's function order (`src/symbol-order.txt`, build.rs) no longer matches
//! the code, and by kilobytes with a new feature's code.
//!
//! The bounds live in `tests/counts.toml`; the test fails when a count passes its bound.
//! It needs the release binary (`PROTOGATE_COUNTS_BIN`), strace and valgrind, so `cargo test`
//! skips it and `scripts/test-counts` (run by `scripts/test`) runs it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::process::{ChildGuard, run_to_exit, shipped_config, spawn_gateway_command};
use support::upstream::RecordingUpstream;

/// Seed calls measured, and the keep-alive connections they are spread over.
const REQUESTS: usize = 2000;
const CONNECTIONS: usize = 32;
/// Calls before the measurement: the upstream connection, the allocator's pools and the
/// connections' buffers are set up by then, as in a gateway that has been serving.
const WARMUP: usize = 320;
/// valgrind starts a binary about 50 times slower than it runs.
const VALGRIND_READY: Duration = Duration::from_secs(120);

const REQUEST: &[u8] = b"GET /users?ids=1,2 HTTP/1.1\r\nHost: protogate\r\nUser-Agent: counts\r\n\r\n";

#[derive(Debug, Deserialize)]
struct Bounds {
    seed_call: SeedCall,
}

#[derive(Debug, Deserialize)]
struct SeedCall {
    syscalls_per_request: f64,
    instructions_per_request: f64,
    idle_rss_kib: u64,
}

fn bounds() -> SeedCall {
    let path = support::process::manifest_dir().join("tests/counts.toml");
    let text = std::fs::read_to_string(&path).expect("read tests/counts.toml");
    toml::from_str::<Bounds>(&text)
        .expect("parse tests/counts.toml")
        .seed_call
}

fn release_binary() -> PathBuf {
    let path = std::env::var_os("PROTOGATE_COUNTS_BIN")
        .map(PathBuf::from)
        .expect("PROTOGATE_COUNTS_BIN names the release binary to count (scripts/test-counts sets it)");
    assert!(
        path.is_file(),
        "PROTOGATE_COUNTS_BIN: no file at {}",
        path.display()
    );
    path
}

/// The gateway's arguments: the shipped config (access log on, as shipped), one worker
/// thread (a sidecar on one CPU), in front of `upstream`.
fn gateway(program: &Path, tool: &[&str], upstream: &str) -> Command {
    let mut command = match tool.split_first() {
        Some((tool, tool_args)) => {
            let mut command = Command::new(tool);
            command.args(tool_args).arg(program);
            command
        }
        None => Command::new(program),
    };
    support::process::clear_gateway_env(&mut command);
    // An older build (a bisect) may need the config of its own commit.
    let config = std::env::var_os("PROTOGATE_COUNTS_CONFIG").map_or_else(shipped_config, PathBuf::from);
    command
        .current_dir(support::process::manifest_dir())
        .args(["--config", config.to_str().expect("UTF-8 path")])
        .args(["--listen", "127.0.0.1:0", "--upstream", upstream])
        .env("PROTOGATE_WORKER_THREADS", "1")
        .env("PROTOGATE_LOG_FORMAT", "json");
    command
}

/// Sends `total` seed calls over `CONNECTIONS` keep-alive connections, one at a time on
/// each (as wrk does), and checks that every answer is the seed's 200.
async fn load(addr: std::net::SocketAddr, total: usize) {
    // For exploring only (the bounds hold for 32): PROTOGATE_COUNTS_CONNECTIONS=1 shows the
    // cost of a request that shares no wake-up with others.
    let connections = std::env::var("PROTOGATE_COUNTS_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CONNECTIONS);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let calls = total / connections + usize::from(c < total % connections);
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect to the gateway");
            stream.set_nodelay(true).expect("nodelay");
            let mut buffer = Vec::with_capacity(4096);
            for _ in 0..calls {
                stream.write_all(REQUEST).await.expect("write request");
                let (status, body) = read_response(&mut stream, &mut buffer).await;
                assert_eq!(status, 200, "body: {}", String::from_utf8_lossy(&body));
                assert!(
                    body.starts_with(br#"{"message":"success","data":[{"name":"Alice""#),
                    "body: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }));
    }
    for task in tasks {
        task.await.expect("load connection");
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` body; bytes past it stay in `buffer`.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> (u16, Vec<u8>) {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no status in {head:?}"));
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().expect("content-length"))
                .unwrap_or_else(|| panic!("no content-length in {head:?}"));
            let start = end + 4;
            while buffer.len() < start + length {
                read_more(stream, buffer).await;
            }
            let body = buffer[start..start + length].to_vec();
            buffer.drain(..start + length);
            return (status, body);
        }
        read_more(stream, buffer).await;
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.expect("read response");
    assert!(n > 0, "the gateway closed a keep-alive connection");
    buffer.extend_from_slice(&chunk[..n]);
}

/// `strace -c`'s summary: calls per syscall name, and the total.
fn strace_calls(summary: &str) -> (Vec<(String, u64)>, u64) {
    let mut rows = Vec::new();
    let mut total = None;
    for line in summary.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors], name
        if tokens.len() < 5 || tokens[0].parse::<f64>().is_err() {
            continue;
        }
        let Ok(calls) = tokens[3].parse::<u64>() else {
            continue;
        };
        let name = tokens[tokens.len() - 1];
        if name == "total" {
            total = Some(calls);
        } else {
            rows.push((name.to_string(), calls));
        }
    }
    let total = total.unwrap_or_else(|| panic!("no total in strace's summary:\n{summary}"));
    (rows, total)
}

/// The gateway's resident set (KiB) right after its first seed call, as bench/ reads it.
async fn idle_rss_kib(binary: &Path, upstream: &str) -> u64 {
    let (gateway, addr, _log) =
        spawn_gateway_command(gateway(binary, &[], upstream), support::process::READY_TIMEOUT);
    load(addr, 1).await;
    support::process::memory_kib(gateway.pid(), "VmRSS")
}

/// Syscalls per seed call, every thread of the gateway, with strace attached after warm-up.
async fn syscalls_per_request(binary: &Path, upstream: &str) -> (f64, Vec<(String, f64)>) {
    let (gateway, addr, _log) =
        spawn_gateway_command(gateway(binary, &[], upstream), support::process::READY_TIMEOUT);
    load(addr, WARMUP).await;
    let dir = tempdir("strace");
    let out = dir.join("strace.txt");
    let mut strace = Command::new("strace");
    strace
        .args(["-f", "-c", "-o"])
        .arg(&out)
        .args(["-p", &gateway.pid().to_string()]);
    let mut tracer = ChildGuard::spawn("strace", strace);
    // strace says "Process N attached" once it traces the process (with -f, every thread).
    let attached = tracer
        .stderr()
        .wait_for(Duration::from_secs(20), |l| l.contains("attached"));
    assert!(
        attached.is_some(),
        "strace did not attach: {}",
        tracer.stderr().text()
    );
    load(addr, REQUESTS).await;
    let status = Command::new("kill")
        .args(["-INT", &tracer.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    tracer.finish(Duration::from_secs(30));
    let summary = std::fs::read_to_string(&out).expect("strace's summary");
    drop(gateway);
    let (rows, total) = strace_calls(&summary);
    println!("strace -f -c over {REQUESTS} seed calls:\n{summary}");
    let per = |n: u64| n as f64 / REQUESTS as f64;
    (
        per(total),
        rows.into_iter().map(|(name, n)| (name, per(n))).collect(),
    )
}

/// User-space instructions per seed call, every thread, counted by callgrind between a zero
/// after warm-up and a dump after the measured calls.
async fn instructions_per_request(binary: &Path, upstream: &str) -> f64 {
    let dir = tempdir("callgrind");
    let out = dir.join("callgrind.out");
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let tool = ["valgrind", "--tool=callgrind", out_arg.as_str()];
    let (gateway, addr, _log) = spawn_gateway_command(gateway(binary, &tool, upstream), VALGRIND_READY);
    load(addr, WARMUP).await;
    let pid = gateway.pid().to_string();
    let zero = run_to_exit(control(&["--zero", &pid]), Duration::from_secs(60));
    assert!(
        zero.status.success(),
        "callgrind_control --zero: {:?}",
        zero.stderr
    );
    load(addr, REQUESTS).await;
    let dump = run_to_exit(control(&["--dump", &pid]), Duration::from_secs(60));
    assert!(
        dump.status.success(),
        "callgrind_control --dump: {:?}",
        dump.stderr
    );
    drop(gateway);
    // --dump writes callgrind.out.N beside the file named by --callgrind-out-file.
    let part = std::fs::read_dir(&dir)
        .expect("list callgrind's files")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p != &out)
        .max()
        .expect("callgrind wrote a dump");
    let text = std::fs::read_to_string(&part).expect("read the dump");
    let total: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("summary:").or_else(|| l.strip_prefix("totals:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {}", part.display()));
    total as f64 / REQUESTS as f64
}

fn control(args: &[&str]) -> Command {
    let mut command = Command::new("callgrind_control");
    command.args(args);
    command
}

fn tempdir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("protogate-counts-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("make a temporary directory");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the release binary, strace and valgrind: scripts/test-counts runs it"]
async fn seed_call_syscalls_and_instructions_stay_within_their_bounds() {
    let bounds = bounds();
    let binary = release_binary();
    let server = RecordingUpstream::start(support::seed_service::answer).await;
    let upstream = format!("http://{}", server.addr);

    let idle_rss = idle_rss_kib(&binary, &upstream).await;
    let (syscalls, rows) = syscalls_per_request(&binary, &upstream).await;
    let instructions = instructions_per_request(&binary, &upstream).await;

    let mut report = format!(
        "seed call, per request: {syscalls:.2} syscalls (bound {}), {instructions:.0} instructions (bound {}); \
         idle RSS {idle_rss} KiB (bound {})\n",
        bounds.syscalls_per_request, bounds.instructions_per_request, bounds.idle_rss_kib
    );
    for (name, per) in rows.iter().filter(|(_, per)| *per >= 0.05) {
        report.push_str(&format!("  {name}: {per:.2}\n"));
    }
    println!("{report}");
    assert!(
        syscalls <= bounds.syscalls_per_request,
        "syscalls per request passed their bound (tests/counts.toml):\n{report}"
    );
    assert!(
        instructions <= bounds.instructions_per_request,
        "instructions per request passed their bound (tests/counts.toml):\n{report}"
    );
    assert!(
        idle_rss <= bounds.idle_rss_kib,
        "idle RSS passed its bound (tests/counts.toml); if the code's functions were renamed or \
         Cargo.lock moved, run scripts/symbol-order:\n{report}"
    );
}
