//! Memory stays bounded under the worst bodies a client may send: the real binary (shipped
//! config) receives 16 concurrent 1 MiB bodies of small integers (`{"userIDs":[0,0,…]}`,
//! half a million array items each) and its peak RSS (`VmHWM`) stays under 64 MiB. Before
//! the request object was decoded without a `serde_json::Value` tree, each such body became
//! about half a million `Value` nodes. `bench/` has the wider hostile scenario
//! (`scripts/bench hostile`).

mod support;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::{UserReply, UserReq};
use support::http::send;
use support::process::spawn_gateway_for;
use support::upstream::{RecordingUpstream, Reply};

/// `VmHWM` (peak RSS) or `VmRSS` of `pid`, in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field")
}

/// A body of `userIDs` zeros just under 1 MiB (the default `max_body_bytes`).
fn integer_array_body() -> Bytes {
    let head = "{\"userIDs\":[";
    let items = (1024 * 1024 - head.len() - 2) / 2;
    let mut body = String::with_capacity(1024 * 1024);
    body.push_str(head);
    for i in 0..items {
        body.push_str(if i == 0 { "0" } else { ",0" });
    }
    body.push_str("]}");
    assert!(body.len() <= 1024 * 1024);
    Bytes::from(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_1mib_integer_array_bodies_stay_under_64mib_peak_rss() {
    // The upstream answers each call small; only the request side is measured here.
    let upstream = RecordingUpstream::start(|_| {
        Reply::message(&UserReply {
            message: "success".into(),
            data: vec![],
        })
    })
    .await;
    let (gateway, addr, _log) = spawn_gateway_for(&format!("http://{}", upstream.addr));
    let idle = memory_kib(gateway.pid(), "VmRSS");
    let body = integer_array_body();
    let url = format!("http://{addr}/MyService/User");
    for round in 0..2 {
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let (url, body) = (url.clone(), body.clone());
                tokio::spawn(async move {
                    // The longest deadline the shipped config allows: this test measures
                    // memory, and a debug build on a busy machine can take over the 5 s default.
                    let headers = [("content-type", "application/json"), ("grpc-timeout", "30S")];
                    send(Method::POST, &url, &headers, body).await.status.as_u16()
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.expect("no panic"), 200, "round {round}");
        }
    }
    let peak = memory_kib(gateway.pid(), "VmHWM");
    eprintln!("idle RSS {} KiB, peak RSS {} KiB", idle, peak);
    assert!(
        peak < 64 * 1024,
        "peak RSS {} MiB (idle {} MiB) for 16 concurrent 1 MiB integer arrays",
        peak / 1024,
        idle / 1024
    );
    // Every call reached the upstream with its half-million items.
    let calls = upstream.calls();
    assert_eq!(calls.len(), 32);
    let items = (body.len() - "{\"userIDs\":[]}".len()).div_ceil(2);
    for call in calls {
        assert_eq!(call.decode::<UserReq>().user_i_ds.len(), items);
    }
}
