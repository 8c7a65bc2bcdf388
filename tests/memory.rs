//! Memory stays bounded under the worst bodies a client may send: the real binary (shipped
//! config) receives 16 concurrent 1 MiB bodies of small integers (`{"userIDs":[0,0,…]}`,
//! half a million array items each) and its peak RSS (`VmHWM`) stays under 64 MiB. Before
//! the request object was decoded without a `serde_json::Value` tree, each such body became
//! about half a million `Value` nodes. The same holds for a runtime schema (the dynamic
//! codec), under a wider bound, and whatever the number of worker threads (the test says
//! why). `bench/` has the wider hostile scenario (`scripts/bench hostile`).

mod support;

use bytes::Bytes;
use http::Method;
use protogate::pb::protogate_unpackaged::{UserReply, UserReq};
use support::TempDir;
use support::http::send;
use support::process::{
    manifest_dir, memory_kib, shipped_config, spawn_gateway_for, spawn_gateway_with_schema_env,
};
use support::upstream::{RecordingUpstream, Reply};

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
    sixteen_bodies_stay_under(None, 64).await;
}

/// The same with the dynamic codec (a runtime schema: `--schema descriptors:`), on eight
/// worker threads. It reads the keys and then the message straight from the bytes too, but
/// prost-reflect's message holds tens of bytes per item while it is built (about 50 MiB for
/// one such body in the debug build). Two things bound the peak, and this test fails
/// without either (debug build, eight workers, two cores):
/// - large bodies are decoded one at a time (`body_intake.rs`): 282 MiB without the turns;
/// - the binary fixes glibc's mmap and trim thresholds (`tune_allocator` in `main.rs`), so
///   that each worker's heap does not keep the large blocks its decodes freed: 176-267 MiB
///   without.
///
/// With both, 83-96 MiB over many runs, also with two busy loops beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bodies_through_a_runtime_schema_on_eight_workers_stay_under_128mib_peak_rss() {
    let dir = TempDir::new("memory");
    let proto = manifest_dir().join("proto");
    let set = protox::compile([proto.join("api.proto")], [proto]).expect("proto compiles");
    let file = dir.join("api.binpb");
    std::fs::write(&file, prost::Message::encode_to_vec(&set)).expect("write descriptors");
    sixteen_bodies_stay_under(Some(format!("descriptors:{}", file.display())), 128).await;
}

/// Two rounds of 16 concurrent 1 MiB integer arrays to `POST /MyService/User` of a gateway
/// on the shipped config (one worker thread; with `schema`, eight): every call answers 200
/// and reaches the upstream whole, and the gateway's peak RSS stays under `limit_mib`.
async fn sixteen_bodies_stay_under(schema: Option<String>, limit_mib: u64) {
    // The upstream answers each call small; only the request side is measured here.
    let upstream = RecordingUpstream::start(|_| {
        Reply::message(&UserReply {
            message: "success".into(),
            data: vec![],
        })
    })
    .await;
    let upstream_url = format!("http://{}", upstream.addr);
    let (gateway, addr, _log) = match &schema {
        None => spawn_gateway_for(&upstream_url),
        Some(schema) => {
            let config = shipped_config();
            let config = config.to_str().expect("UTF-8");
            let workers = [("PROTOGATE_WORKER_THREADS", "8")];
            spawn_gateway_with_schema_env(config, &upstream_url, schema, &workers)
        }
    };
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
        peak < limit_mib * 1024,
        "peak RSS {} MiB (idle {} MiB) for 16 concurrent 1 MiB integer arrays, schema {schema:?}",
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
