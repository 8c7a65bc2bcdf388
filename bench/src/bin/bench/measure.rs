//! What the runner reads about the gateway: CPU time and memory from /proc, and HTTP probes
//! over fresh connections (the spawn-to-first-200 time, a reply's size).
//!
//! CPU is `utime + stime` of `/proc/PID/stat`: process-wide, including threads that have
//! already exited, in clock ticks (`getconf CLK_TCK`, normally 100 per second). A 10 s run
//! at ~100% CPU is ~1000 ticks, so the tick adds at most ~0.1% of error. Memory is `VmRSS`
//! (resident now) and `VmHWM` (the resident high-water mark) of `/proc/PID/status`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// `utime + stime` of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("cannot parse {path}"))
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the
    // last ')'. Then field 3 (state) is index 0, utime (14) index 11, stime (15) index 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Vm*` line of /proc/PID/status (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_status_kib(&status, key).with_context(|| format!("no {key} in {path}"))
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.split(':').next() == Some(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The answer to one probe.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Length of the body.
    pub body_bytes: usize,
}

/// `GET path` on a fresh connection (`Connection: close`), within `timeout`.
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    parse_answer(&reply).context("malformed HTTP reply")
}

fn parse_answer(reply: &[u8]) -> Option<Answer> {
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&reply[..head_end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        body_bytes: reply.len() - head_end - 4,
    })
}

/// Polls `GET path` on fresh connections, back to back, until one answers 200, and returns
/// the time since `since` (the spawn) at that moment. Fails after `timeout`.
pub fn first_ok(addr: &str, path: &str, since: Instant, timeout: Duration) -> anyhow::Result<Duration> {
    let deadline = since + timeout;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match http_get(addr, path, Duration::from_secs(1)) {
            Ok(answer) if answer.status == 200 => return Ok(since.elapsed()),
            Ok(answer) => last = format!("HTTP {}", answer.status),
            Err(err) => last = err.to_string(),
        }
    }
    bail!("no 200 from http://{addr}{path} within {timeout:?} (last: {last})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_comm_with_spaces() {
        let stat = "42 (tokio (rt) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(281));
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let status = "Name:\tprotogate\nVmHWM:\t   12345 kB\nVmRSS:\t    6789 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(6789));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(12345));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn the_answer_has_a_status_and_a_body_length() {
        let answer = parse_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((answer.status, answer.body_bytes), (200, 2));
    }

    #[test]
    fn our_own_process_has_cpu_and_memory() {
        let pid = std::process::id();
        assert!(status_kib(pid, "VmRSS").unwrap() > 0);
        cpu_ticks(pid).unwrap();
    }
}
