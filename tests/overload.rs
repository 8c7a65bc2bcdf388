//! Overload against the real binary: many more concurrent clients than
//! `server.max_concurrent_requests`, with a slow upstream. The excess is shed at once with
//! 503, `Retry-After` and a `google.rpc.Status` body; the upstream never sees more calls at
//! once than the limit; accepted requests finish; and memory stays bounded: it does not grow
//! with the time spent overloaded, because nothing queues.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protogate::pb::protogate_unpackaged::UserReply;
use support::http::get;
use support::process::{memory_kib, shipped_config, spawn_gateway};
use support::upstream::{RecordingUpstream, Reply};

const LIMIT: usize = 16;
const CLIENTS: usize = 300;
const UPSTREAM_DELAY: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Tally {
    ok: usize,
    shed: usize,
    other: Vec<String>,
}

/// `CLIENTS` tasks GET in a loop for `period`, each request on a new connection.
async fn overload(addr: SocketAddr, period: Duration) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (tally, stop) = (tally.clone(), stop.clone());
            tokio::spawn(async move {
                let url = format!("http://{addr}/users?ids=1");
                while !stop.load(Ordering::SeqCst) {
                    let reply = tokio::time::timeout(Duration::from_secs(10), get(&url))
                        .await
                        .expect("no request may hang under overload");
                    let mut tally = tally.lock().expect("lock");
                    match reply.status.as_u16() {
                        200 => tally.ok += 1,
                        503 if reply.header("retry-after") == Some("1")
                            && reply.header("content-type") == Some("application/json")
                            && reply.json()["code"] == 14 =>
                        {
                            tally.shed += 1
                        }
                        _ => tally.other.push(format!(
                            "{} {:?} {:?}",
                            reply.status,
                            reply.headers,
                            String::from_utf8_lossy(&reply.body)
                        )),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(period).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("client task");
    }
    Arc::try_unwrap(tally)
        .ok()
        .expect("tasks done")
        .into_inner()
        .expect("lock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_at_once_and_memory_stays_bounded() {
    let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = starts.clone();
    let upstream = RecordingUpstream::start(move |_| {
        seen.lock().expect("lock").push(Instant::now());
        Reply::message(&UserReply::default()).after(UPSTREAM_DELAY)
    })
    .await;
    let shipped = std::fs::read_to_string(shipped_config()).expect("shipped config");
    let limited = shipped.replace(
        "max_concurrent_requests = 256",
        &format!("max_concurrent_requests = {LIMIT}"),
    );
    assert_ne!(
        limited, shipped,
        "the shipped config sets max_concurrent_requests = 256"
    );
    let path = std::env::temp_dir().join(format!("protogate-overload-{}.toml", std::process::id()));
    std::fs::write(&path, limited).expect("write config");
    let upstream_url = format!("http://{}", upstream.addr);
    let (gateway, addr, _log) = spawn_gateway(
        &[
            "--config",
            path.to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream_url,
        ],
        &[("RUST_LOG", "warn,protogate::server=info")],
    );
    let _ = std::fs::remove_file(&path);
    for _ in 0..5 {
        assert_eq!(get(&format!("http://{addr}/users?ids=1")).await.status, 200);
    }
    let idle = memory_kib(gateway.pid(), "VmRSS");

    let first = overload(addr, Duration::from_secs(2)).await;
    let after_first = memory_kib(gateway.pid(), "VmHWM");
    let second = overload(addr, Duration::from_secs(2)).await;
    let after_second = memory_kib(gateway.pid(), "VmHWM");
    eprintln!(
        "idle {idle} KiB; peak after 2 s {after_first} KiB, after 4 s {after_second} KiB; \
         ok {} + {}, shed {} + {}",
        first.ok, second.ok, first.shed, second.shed
    );

    for tally in [&first, &second] {
        assert!(
            tally.other.is_empty(),
            "only 200 or a proper 503: {:?}",
            &tally.other[..tally.other.len().min(3)]
        );
        assert!(
            tally.shed > tally.ok,
            "{CLIENTS} clients over a limit of {LIMIT} must be shed"
        );
        assert!(tally.ok >= LIMIT, "accepted requests finish: {} ok", tally.ok);
    }
    // The upstream never had more than LIMIT calls at once: each lasts UPSTREAM_DELAY, so
    // LIMIT + 1 starts within that long would mean LIMIT + 1 in flight.
    let mut starts = starts.lock().expect("lock").clone();
    starts.sort();
    for window in starts.windows(LIMIT + 1) {
        assert!(
            window[LIMIT] - window[0] >= UPSTREAM_DELAY - Duration::from_millis(10),
            "more than {LIMIT} upstream calls in flight at once"
        );
    }
    // Bounded: a second period of the same overload (thousands more requests) costs
    // almost nothing more — a leak of 2 KiB per request would show — and the peak stays
    // small in absolute terms.
    assert!(
        after_second <= after_first + 8 * 1024,
        "memory grew with time overloaded: {after_first} KiB then {after_second} KiB"
    );
    assert!(
        after_second <= idle + 64 * 1024,
        "peak {after_second} KiB over idle {idle} KiB"
    );
}
