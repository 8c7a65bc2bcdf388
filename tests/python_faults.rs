//! Upstream faults against the real Python grpcio service and the real gateway binary: the
//! service is killed with SIGKILL in the middle of a load and started again on the same
//! port, and the gateway's HTTP/2 keepalive is held against grpc-core's strict default ping
//! policy (a client that pings more often than every 5 minutes while no data flows gets
//! `GOAWAY too_many_pings`).

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::json;
use support::eventually;
use support::http::{get, send};
use support::process::{
    shipped_config, spawn_gateway, spawn_gateway_for, spawn_python_users, spawn_python_users_on,
    spawn_python_users_with,
};

const HOOKS: &[(&str, &str)] = &[("USERS_SERVICE_TEST_HOOKS", "1")];

/// What one request of the load saw.
#[derive(Debug, Clone)]
struct Seen {
    status: u16,
    /// The `google.rpc.Status` code of an error body, or `None` for a 200 / a non-JSON body.
    code: Option<i64>,
    json: bool,
}

/// GETs in a loop on `clients` tasks until `stop` is set, recording every answer. Each
/// request has its own timeout: a hang fails the test instead of stalling it.
fn load(
    addr: SocketAddr,
    clients: usize,
    stop: Arc<Mutex<bool>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (stop, seen) = (stop.clone(), seen.clone());
            tokio::spawn(async move {
                let url = format!("http://{addr}/users?ids=1,2");
                while !*stop.lock().expect("lock") {
                    let reply = tokio::time::timeout(Duration::from_secs(10), get(&url))
                        .await
                        .expect("no request may hang while the upstream dies and returns");
                    let body: Option<serde_json::Value> = serde_json::from_slice(&reply.body).ok();
                    seen.lock().expect("lock").push(Seen {
                        status: reply.status.as_u16(),
                        code: body.as_ref().and_then(|b| b["code"].as_i64()),
                        json: body.is_some() && reply.header("content-type") == Some("application/json"),
                    });
                }
            })
        })
        .collect()
}

/// Waits (bounded) until `pred` holds for the answers recorded after index `from`.
async fn wait_until(
    seen: &Mutex<Vec<Seen>>,
    from: usize,
    what: &str,
    pred: impl Fn(&[Seen]) -> bool,
) -> usize {
    eventually(what, Duration::from_secs(20), || async {
        let now = seen.lock().expect("lock").len();
        pred(&seen.lock().expect("lock")[from..]).then_some(now)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_killed_under_load_and_restarted_is_followed_without_a_gateway_restart() {
    let (python, upstream) = spawn_python_users(&[]);
    let (gateway, addr, _log) = spawn_gateway_for(&format!("http://{upstream}"));
    let gateway_pid = gateway.pid();
    let stop = Arc::new(Mutex::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tasks = load(addr, 8, stop.clone(), seen.clone());

    let ok = |s: &[Seen]| s.iter().filter(|s| s.status == 200).count();
    let mark = wait_until(&seen, 0, "200s under load", |s| ok(s) >= 100).await;
    drop(python); // SIGKILL, with calls in flight
    let mark = wait_until(&seen, mark, "the gateway to notice", |s| {
        s.iter().any(|s| s.status == 503)
    })
    .await;
    let (_python, back) = spawn_python_users_on(upstream.port(), &[]);
    assert_eq!(back, upstream);
    let mark = wait_until(&seen, mark, "200s again", |s| ok(s) >= 1).await;
    // Once back, it stays back: the next 100 answers are all 200.
    let settled = seen.lock().expect("lock").len();
    wait_until(&seen, settled, "100 answers after recovery", |s| s.len() >= 100).await;
    *stop.lock().expect("lock") = true;
    for task in tasks {
        task.await.expect("load task");
    }

    let seen = seen.lock().expect("lock").clone();
    assert!(mark > 0);
    for s in &seen {
        match s.status {
            200 => {}
            // Refused connections are 503/14; a call cut by the kill is 502/13 or 503/14.
            502 | 503 => assert!(s.json && matches!(s.code, Some(13 | 14)), "{s:?}"),
            _ => panic!("unexpected answer while the upstream died and came back: {s:?}"),
        }
    }
    assert!(
        seen[settled..].iter().all(|s| s.status == 200),
        "after recovery every answer is 200: {:?}",
        seen[settled..]
            .iter()
            .filter(|s| s.status != 200)
            .collect::<Vec<_>>()
    );
    assert_eq!(gateway.pid(), gateway_pid, "same gateway process throughout");
}

/// grpc-core's defaults, which the service normally relaxes for the gateway.
const STRICT_PING_POLICY: &[&str] = &[
    "--grpc-option",
    "grpc.http2.min_ping_interval_without_data_ms=300000",
    "--grpc-option",
    "grpc.http2.max_ping_strikes=2",
    "--grpc-option",
    "grpc.keepalive_permit_without_calls=0",
];

/// A 3 s call through `gateway`: the upstream sends nothing meanwhile, so any ping the
/// gateway sends counts against grpc-core's policy.
async fn slow_call(gateway: SocketAddr) -> support::http::Reply {
    let headers = [("grpc-metadata-x-test-delay-ms", "3000"), ("grpc-timeout", "20S")];
    send(
        Method::GET,
        &format!("http://{gateway}/users?ids=1"),
        &headers,
        Bytes::new(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_keepalive_survives_grpc_cores_strict_ping_policy() {
    let (_python, upstream) = spawn_python_users_with(0, HOOKS, STRICT_PING_POLICY);
    let upstream = format!("http://{upstream}");

    // Control: a gateway that pings every 200 ms is cut off by this server (GOAWAY
    // ENHANCE_YOUR_CALM "too_many_pings" after the third strike), so the test does see a
    // keepalive that breaks the policy. The shipped 300 s interval, pinned by a config test,
    // sends no ping at all within a call of this length.
    let shipped = std::fs::read_to_string(shipped_config()).expect("shipped config");
    let eager = shipped.replace("keepalive_interval = \"300s\"", "keepalive_interval = \"200ms\"");
    assert_ne!(
        eager, shipped,
        "the shipped config sets keepalive_interval = \"300s\""
    );
    let path = std::env::temp_dir().join(format!("protogate-eager-keepalive-{}.toml", std::process::id()));
    std::fs::write(&path, eager).expect("write config");
    let config = path.to_str().expect("utf-8").to_string();
    let (_eager, eager_addr, _) = spawn_gateway(
        &[
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
        ],
        &[],
    );
    let (_shipped, shipped_addr, _) = spawn_gateway_for(&upstream);

    let (eager, shipped) = tokio::join!(slow_call(eager_addr), slow_call(shipped_addr));
    let _ = std::fs::remove_file(&path);
    assert!(
        eager.status == 503 && eager.json()["code"] == 14,
        "a 200 ms keepalive should trip grpc-core's ping policy; got {} {:?}",
        eager.status,
        String::from_utf8_lossy(&eager.body)
    );
    shipped.assert_json(
        200,
        json!({"message": "success", "data": [{"name": "Alice", "age": 30, "email": "alice@example.com"}]}),
    );
}
