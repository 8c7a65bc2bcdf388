//! `hostile`: the gateway's memory under the worst inputs a client may send within the
//! limits of its config. `--clients` (default 256, the shipped `max_concurrent_requests`)
//! threads each send, in turn, for `--duration` seconds:
//! - `ints`: a POST of just under `max_body_bytes` (1 MiB) of small integers,
//!   `{"userIDs":[0,0,…]}`, half a million array items (decoded straight into the message);
//! - `nested`: a max-size POST of arrays nested to serde_json's depth limit (127) beside a long
//!   string, which takes the JSON-tree path and ends in a 400;
//! - `string`: a max-size POST whose one value is a long string (`{"userIDs":"aaa…"}`), also
//!   the tree path and a 400;
//! - `big-reply`: an 8 KiB `GET /users?ids=1,1,1,…` (just under `max_uri_bytes`), which the
//!   fast upstream answers with one row per id: about 4 000 users, a 200 KiB reply.
//!
//! `--kinds` picks some of them (`--clients 16 --kinds ints` is the documented target:
//! 16 concurrent 1 MiB integer arrays). Each request is on a fresh connection. The report gives, per kind, the answers by status
//! (503 is the in-flight body budget or the concurrency limit shedding), and the gateway's
//! idle and peak RSS (`VmHWM`) over the run. The load runs in the runner, on the load CPU.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::measure;
use crate::rig::{Logging, Rig, Upstream};

/// What one hostile run measured.
#[derive(Debug, Serialize)]
pub struct Hostile {
    pub clients: usize,
    pub seconds: u64,
    pub idle_rss_kib: u64,
    pub peak_rss_kib: u64,
    /// kind → status ("200", "503", …, or "error") → count.
    pub answers: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

const KINDS: [&str; 4] = ["ints", "nested", "string", "big-reply"];

/// The four requests, each as the raw bytes of an HTTP/1.1 request with `Connection: close`.
fn requests() -> Vec<Vec<u8>> {
    let limit = 1024 * 1024 - 64;
    let post = |body: String| {
        let mut raw = format!(
            "POST /MyService/User HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body.as_bytes());
        raw
    };
    let mut ints = String::from("{\"userIDs\":[0");
    while ints.len() + 4 < limit {
        ints.push_str(",0");
    }
    ints.push_str("]}");
    let depth = 126;
    let nested = format!(
        "{{\"pad\":\"{}\",\"deep\":{}{}}}",
        "a".repeat(limit - 2 * depth - 32),
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let string = format!("{{\"userIDs\":\"{}\"}}", "a".repeat(limit - 16));
    let mut path = String::from("/users?ids=1");
    while path.len() + 2 < 8 * 1024 - 16 {
        path.push_str(",1");
    }
    let get = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").into_bytes();
    vec![post(ints), post(nested), post(string), get]
}

/// One request on a fresh connection: the status code, or "error".
fn send(addr: &str, request: &[u8]) -> String {
    let exchange = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let head = String::from_utf8_lossy(&answer[..answer.len().min(16)]).into_owned();
        Ok(head.split(' ').nth(1).unwrap_or("error").to_string())
    };
    exchange().unwrap_or_else(|_| "error".to_string())
}

pub fn run(rig: &Rig, clients: usize, kinds: &[String]) -> anyhow::Result<Hostile> {
    let chosen: Vec<usize> = kinds
        .iter()
        .map(|kind| {
            KINDS
                .iter()
                .position(|k| k == kind)
                .ok_or_else(|| anyhow::anyhow!("unknown kind {kind:?}; the kinds are {KINDS:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!chosen.is_empty(), "--kinds names no kind");
    let upstream = rig.upstream(Upstream::Fast)?;
    let gateway = rig.gateway(upstream, Logging::Quiet)?;
    let addr = gateway.server.addr.clone();
    let requests = Arc::new(requests());
    let answers: Arc<Mutex<BTreeMap<&'static str, BTreeMap<String, u64>>>> = Arc::default();
    let until = Instant::now() + Duration::from_secs(rig.opts.duration);
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let (addr, requests, answers) = (addr.clone(), requests.clone(), answers.clone());
            let chosen = chosen.clone();
            std::thread::spawn(move || {
                let mut turn = client;
                while Instant::now() < until {
                    let kind = chosen[turn % chosen.len()];
                    let status = send(&addr, &requests[kind]);
                    let mut answers = answers.lock().unwrap_or_else(|e| e.into_inner());
                    *answers.entry(KINDS[kind]).or_default().entry(status).or_default() += 1;
                    turn += 1;
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    let peak_rss_kib = measure::status_kib(gateway.pid(), "VmHWM")?;
    let answers = answers.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Hostile {
        clients,
        seconds: rig.opts.duration,
        idle_rss_kib: gateway.idle_rss_kib,
        peak_rss_kib,
        answers,
    })
}

pub fn markdown(h: &Hostile) -> String {
    let mut md = format!(
        "## Hostile inputs\n\n{} clients for {} s, each on a fresh connection per request.\n\n\
         | kind | answers |\n|---|---|\n",
        h.clients, h.seconds
    );
    for kind in KINDS {
        let answers = h.answers.get(kind).map_or_else(String::new, |by_status| {
            let parts: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} × {s}")).collect();
            parts.join(", ")
        });
        md.push_str(&format!("| {kind} | {answers} |\n"));
    }
    md.push_str(&format!(
        "\nGateway RSS: idle {:.1} MiB, peak (VmHWM) {:.1} MiB.\n",
        h.idle_rss_kib as f64 / 1024.0,
        h.peak_rss_kib as f64 / 1024.0
    ));
    md
}
