//! Runtime schemas with the real binary: `--schema reflection` against the real Python
//! service (grpcio-reflection, v1alpha), a gateway started before its upstream, an upstream
//! without reflection, and live reload of a descriptor file (on a change of mtime and on
//! SIGHUP), where a bad file is refused and the last good schema keeps serving, and a SIGHUP
//! to a gateway on the compiled schema, which is logged and ignored.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::http::{get, send};
use support::process::{
    Finished, free_port, gateway_command, manifest_dir, run_to_exit, shipped_config,
    spawn_gateway_with_schema, spawn_python_users, spawn_python_users_on,
};
use support::upstream::{RecordingUpstream, Reply};
use support::{TempDir, eventually};

fn shipped_config_str() -> String {
    shipped_config().to_str().expect("UTF-8").to_string()
}

/// The seed's proto, optionally with one more method, as a descriptor set file at `path`.
fn write_descriptors(dir: &TempDir, path: &PathBuf, extra_method: bool) {
    let mut source = std::fs::read_to_string(manifest_dir().join("proto/api.proto")).expect("api.proto");
    if extra_method {
        source = source.replacen(
            "service MyService {",
            "service MyService {\n  rpc Ping (UserReq) returns (UserReply) {}",
            1,
        );
    }
    let proto = dir.join("api.proto");
    std::fs::write(&proto, source).expect("write proto");
    let set = protox::compile([&proto], [dir.0.clone()]).expect("proto compiles");
    std::fs::write(path, prost::Message::encode_to_vec(&set)).expect("write descriptors");
}

/// Sends SIGHUP to the gateway process.
fn hang_up(gateway: &support::process::ChildGuard) {
    let status = Command::new("kill")
        .args(["-HUP", &gateway.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

async fn json_of(url: String) -> (u16, Value) {
    let reply = get(&url).await;
    (reply.status.as_u16(), reply.json())
}

async fn metric(addr: SocketAddr, series: &str) -> u64 {
    let text = String::from_utf8(get(&format!("http://{addr}/metrics")).await.body.to_vec()).expect("UTF-8");
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test]
async fn reflection_serves_what_the_compiled_schema_serves() {
    let (_python, upstream) = spawn_python_users(&[]);
    let upstream = format!("http://{upstream}");
    let config = shipped_config_str();
    let (_compiled, compiled, _) = spawn_gateway_with_schema(&config, &upstream, "compiled");
    let (_reflected, reflected, log) = spawn_gateway_with_schema(&config, &upstream, "reflection");
    for request in [
        "/users?ids=1,2",
        "/users?ids=3",
        "/users",
        "/users?ids=abc",
        "/health",
    ] {
        let want = get(&format!("http://{compiled}{request}")).await;
        let got = get(&format!("http://{reflected}{request}")).await;
        assert_eq!((got.status, &got.body), (want.status, &want.body), "{request}");
    }
    let (status, ready) = json_of(format!("http://{reflected}/readyz")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["schema"]["source"], "reflection");
    let loaded = log.wait_for("schema loaded", Duration::from_secs(5), |_| true);
    assert_eq!(loaded["source"], "reflection");
    assert_eq!(loaded["hash"], ready["schema"]["hash"]);
    // The reflection and health services themselves are not fronted.
    let (_, openapi) = json_of(format!("http://{reflected}/openapi.json")).await;
    let paths: Vec<&String> = openapi["paths"].as_object().expect("paths").keys().collect();
    assert!(paths.iter().any(|p| *p == "/users"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("grpc.")), "{paths:?}");
}

#[tokio::test]
async fn reflection_gateway_starts_before_its_upstream_and_serves_once_it_answers() {
    let port = free_port();
    let config = shipped_config_str();
    let upstream = format!("http://127.0.0.1:{port}");
    let (_gateway, addr, _log) = spawn_gateway_with_schema(&config, &upstream, "reflection");
    let (status, body) = json_of(format!("http://{addr}/users?ids=1")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], 14, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("no schema yet")),
        "{body}"
    );
    let (status, body) = json_of(format!("http://{addr}/readyz")).await;
    assert_eq!((status, body["code"].clone()), (503, Value::from(14)), "{body}");
    assert_eq!(get(&format!("http://{addr}/healthz")).await.status, 200);

    let (_python, _) = spawn_python_users_on(port, &[]);
    let users = eventually(
        "the first schema once the upstream answers",
        Duration::from_secs(15),
        || async {
            let (status, body) = json_of(format!("http://{addr}/users?ids=1")).await;
            (status == 200).then_some(body)
        },
    )
    .await;
    assert_eq!(users["data"][0]["name"], "Alice", "{users}");
    assert_eq!(json_of(format!("http://{addr}/readyz")).await.0, 200);
}

fn run(args: &[&str]) -> Finished {
    let mut command: Command = gateway_command();
    command.args(args);
    run_to_exit(command, Duration::from_secs(15))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_without_reflection_stops_startup_naming_the_cure() {
    // A gRPC server with no reflection service: it answers those calls UNIMPLEMENTED, as
    // grpcio ("Method not found!") and grpc-go ("unknown service") do.
    let upstream = RecordingUpstream::start(|call| Reply {
        result: if call.path.contains("ServerReflection") {
            Err(tonic::Status::unimplemented("unknown service"))
        } else {
            Ok(bytes::Bytes::new())
        },
        ..Reply::message(&())
    })
    .await;
    let url = format!("http://{}", upstream.addr);
    let config = shipped_config_str();
    let finished = tokio::task::spawn_blocking(move || {
        run(&[
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &url,
            "--schema",
            "reflection",
        ])
    })
    .await
    .expect("run");
    assert_eq!(finished.status.code(), Some(2), "{:?}", finished.stderr);
    let [line] = finished.stderr.as_slice() else {
        panic!("want one stderr line: {:?}", finished.stderr);
    };
    for needle in [
        "does not serve gRPC server reflection",
        "--schema compiled",
        "descriptors:PATH",
        "protos:DIR",
    ] {
        assert!(line.contains(needle), "{needle:?} not in {line}");
    }
}

/// A config with a short refresh interval, so that a changed file is noticed quickly.
fn config_with_refresh(dir: &TempDir, interval: &str) -> String {
    let text = std::fs::read_to_string(shipped_config()).expect("shipped config");
    assert!(
        text.contains("refresh_interval = \"30s\""),
        "the shipped config sets the interval"
    );
    let text = text.replacen(
        "refresh_interval = \"30s\"",
        &format!("refresh_interval = \"{interval}\""),
        1,
    );
    let path = dir.join("protogate.toml");
    std::fs::write(&path, text).expect("write config");
    path.to_str().expect("UTF-8").to_string()
}

async fn has_ping(addr: SocketAddr) -> bool {
    let (_, openapi) = json_of(format!("http://{addr}/openapi.json")).await;
    openapi["paths"].get("/MyService/Ping").is_some()
}

/// The real Python service and a gateway on `--schema descriptors:FILE` (the seed's proto),
/// refreshed every `interval`: how the file-reload tests start.
struct DescriptorFileGateway {
    _python: support::process::ChildGuard,
    dir: TempDir,
    file: PathBuf,
    gateway: support::process::ChildGuard,
    addr: SocketAddr,
    log: support::process::GatewayLog,
}

impl DescriptorFileGateway {
    fn start(interval: &str, python_env: &[(&str, &str)]) -> DescriptorFileGateway {
        let (python, upstream) = spawn_python_users(python_env);
        let dir = TempDir::new("reload");
        let file = dir.join("api.binpb");
        write_descriptors(&dir, &file, false);
        let config = config_with_refresh(&dir, interval);
        let schema = format!("descriptors:{}", file.display());
        let (gateway, addr, log) = spawn_gateway_with_schema(&config, &format!("http://{upstream}"), &schema);
        DescriptorFileGateway {
            _python: python,
            dir,
            file,
            gateway,
            addr,
            log,
        }
    }
}

#[tokio::test]
async fn a_changed_descriptor_file_is_served_and_a_bad_one_refused() {
    let reload = DescriptorFileGateway::start("100ms", &[]);
    let (dir, file, addr, log) = (&reload.dir, &reload.file, reload.addr, &reload.log);
    assert!(!has_ping(addr).await);
    let ping = |addr: SocketAddr| async move {
        send(
            http::Method::POST,
            &format!("http://{addr}/MyService/Ping"),
            &[("content-type", "application/json")],
            "{}".to_string(),
        )
        .await
    };
    assert_eq!(ping(addr).await.status, 404);
    let (_, before) = json_of(format!("http://{addr}/readyz")).await;

    // A new method in the file: routed and documented, without a restart. The Python
    // service does not have it, so calling it reaches the upstream and is its 501.
    write_descriptors(dir, file, true);
    eventually(
        "the new method in /openapi.json",
        Duration::from_secs(10),
        || async { has_ping(addr).await.then_some(()) },
    )
    .await;
    let reply = ping(addr).await;
    assert_eq!(
        (reply.status.as_u16(), reply.json()["code"].clone()),
        (501, Value::from(12))
    );
    let (_, after) = json_of(format!("http://{addr}/readyz")).await;
    assert_ne!(after["schema"]["hash"], before["schema"]["hash"], "{after}");
    log.wait_for("schema loaded", Duration::from_secs(5), |r| {
        r["trigger"] == "interval"
    });

    // A malformed file is refused: the last good schema keeps serving.
    std::fs::write(file, b"\xff\xff not descriptors").expect("write junk");
    let refused = log.wait_for(
        "schema refused; the last good one keeps serving",
        Duration::from_secs(10),
        |_| true,
    );
    assert!(
        refused["error"].as_str().is_some_and(|e| e.contains("api.binpb")),
        "{refused}"
    );
    assert_eq!(refused["serving"], after["schema"]["hash"], "{refused}");
    assert!(metric(addr, "protogate_schema_reloads_total{result=\"error\"}").await >= 1);
    assert_eq!(get(&format!("http://{addr}/users?ids=1")).await.status, 200);
    assert!(has_ping(addr).await);
    let (_, still) = json_of(format!("http://{addr}/readyz")).await;
    assert_eq!(still["schema"]["hash"], after["schema"]["hash"]);
}

#[tokio::test]
async fn sighup_reloads_the_schema_and_requests_in_flight_finish() {
    // The interval is long: only the signal can make this reload happen in time.
    let reload = DescriptorFileGateway::start("1h", &[("USERS_SERVICE_TEST_HOOKS", "1")]);
    let (dir, file, addr, log) = (&reload.dir, &reload.file, reload.addr, &reload.log);
    let gateway = &reload.gateway;
    write_descriptors(dir, file, true);
    assert!(!has_ping(addr).await);
    // A request in flight across the swap finishes on the schema it started with.
    let slow_url = format!("http://{addr}/users?ids=1");
    let slow = tokio::spawn(async move {
        send(
            http::Method::GET,
            &slow_url,
            &[("grpc-metadata-x-test-delay-ms", "1500")],
            bytes::Bytes::new(),
        )
        .await
    });
    eventually(
        "the slow request to be in flight",
        Duration::from_secs(5),
        || async { (metric(addr, "http_server_active_requests").await >= 2).then_some(()) },
    )
    .await;
    hang_up(gateway);
    let loaded = log.wait_for("schema loaded", Duration::from_secs(10), |r| {
        r["trigger"] == "sighup"
    });
    assert_eq!(loaded["source"], format!("descriptors:{}", file.display()));
    assert!(has_ping(addr).await);
    assert_eq!(
        metric(addr, "protogate_schema_reloads_total{result=\"changed\"}").await,
        1
    );
    let slow = slow.await.expect("slow request");
    assert_eq!(slow.status, 200, "{}", String::from_utf8_lossy(&slow.body));
    assert_eq!(slow.json()["data"][0]["name"], "Alice");
    // The same descriptors again: counted as unchanged, nothing swapped.
    hang_up(gateway);
    eventually(
        "the second SIGHUP to be counted",
        Duration::from_secs(10),
        || async {
            (metric(addr, "protogate_schema_reloads_total{result=\"unchanged\"}").await >= 1).then_some(())
        },
    )
    .await;
    assert_eq!(
        metric(addr, "protogate_schema_reloads_total{result=\"changed\"}").await,
        1
    );
}

#[tokio::test]
async fn sighup_on_the_compiled_schema_is_logged_and_never_ends_the_gateway() {
    let (_python, upstream) = spawn_python_users(&[]);
    let upstream = format!("http://{upstream}");
    let (mut gateway, addr, log) = spawn_gateway_with_schema(&shipped_config_str(), &upstream, "compiled");
    for _ in 0..2 {
        hang_up(&gateway);
    }
    let ignored = log.wait_for("schema not reloaded", Duration::from_secs(10), |r| {
        r["trigger"] == "sighup"
    });
    assert_eq!(ignored["source"], "compiled");
    assert!(
        ignored["why"]
            .as_str()
            .is_some_and(|why| why.contains("reflection")),
        "{ignored}"
    );
    assert!(
        gateway.wait_exit(Duration::from_millis(200)).is_none(),
        "the gateway exited on SIGHUP"
    );
    let reply = get(&format!("http://{addr}/users?ids=1")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["data"][0]["name"], "Alice");
    assert_eq!(
        metric(addr, "protogate_schema_reloads_total{result=\"changed\"}").await,
        0
    );
}

/// A grpcio server with reflection for `proto` (the seed's, changed by the caller): stubs
/// generated by grpcio-tools into `dir`, every method UNIMPLEMENTED; `extra` goes to the
/// script (`--v1-only`).
fn reflection_server(dir: &TempDir, proto: &str, port: u16, extra: &[&str]) -> support::process::ChildGuard {
    let stubs = dir.join(&format!("stubs-{port}-{}", proto.len()));
    std::fs::create_dir_all(&stubs).expect("stubs dir");
    std::fs::write(stubs.join("api.proto"), proto).expect("write proto");
    let generated = Command::new(support::process::python_venv())
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(&stubs)
        .arg(format!("--python_out={}", stubs.display()))
        .arg(format!("--grpc_python_out={}", stubs.display()))
        .arg(stubs.join("api.proto"))
        .status()
        .expect("grpc_tools.protoc");
    assert!(generated.success(), "stubs for the changed proto");
    let mut command = Command::new(support::process::python_venv());
    command
        .arg(manifest_dir().join("tests/python/reflection_server.py"))
        .arg(&stubs)
        .arg(port.to_string())
        .args(extra);
    let server = support::process::ChildGuard::spawn("reflection server", command);
    if server
        .stdout()
        .wait_for(Duration::from_secs(20), |l| l == "ready")
        .is_none()
    {
        server.fail("printed no \"ready\" line");
    }
    server
}

#[tokio::test]
async fn an_unimplemented_answer_reloads_a_reflected_schema_at_once() {
    let dir = TempDir::new("reload");
    let seed = std::fs::read_to_string(manifest_dir().join("proto/api.proto")).expect("api.proto");
    let with_ping = seed.replacen(
        "service MyService {",
        "service MyService {\n  rpc Ping (UserReq) returns (UserReply) {}",
        1,
    );
    let port = free_port();
    let first = reflection_server(&dir, &with_ping, port, &[]);
    // An hour between reads: only the UNIMPLEMENTED answer can make this reload happen.
    let config = config_with_refresh(&dir, "1h");
    let upstream = format!("http://127.0.0.1:{port}");
    let (_gateway, addr, log) = spawn_gateway_with_schema(&config, &upstream, "reflection");
    assert!(has_ping(addr).await, "the first schema has Ping");

    // The service is replaced by one without Ping. The gateway still routes it; the
    // service answers UNIMPLEMENTED, which makes the gateway read the schema again.
    drop(first);
    let _second = reflection_server(&dir, &seed, port, &[]);
    let ping = || async {
        send(
            http::Method::POST,
            &format!("http://{addr}/MyService/Ping"),
            &[("content-type", "application/json")],
            "{}".to_string(),
        )
        .await
    };
    let first_try = eventually("the new service to answer", Duration::from_secs(10), || async {
        let reply = ping().await;
        (reply.status != 503).then_some(reply)
    })
    .await;
    assert_eq!(
        (first_try.status.as_u16(), first_try.json()["code"].clone()),
        (501, Value::from(12)),
        "the service's UNIMPLEMENTED"
    );
    let loaded = log.wait_for("schema loaded", Duration::from_secs(10), |r| {
        r["trigger"] == "unimplemented"
    });
    assert_eq!(loaded["source"], "reflection");
    eventually(
        "Ping to leave the route table",
        Duration::from_secs(10),
        || async { (ping().await.status == 404 && !has_ping(addr).await).then_some(()) },
    )
    .await;
}

/// A server that serves reflection only under `grpc.reflection.v1` (newer grpc-go and grpc
/// Java): read there, without the v1alpha fallback.
#[tokio::test]
async fn reflection_v1_is_read_where_the_server_serves_only_it() {
    let dir = TempDir::new("reflection-v1");
    let seed = std::fs::read_to_string(manifest_dir().join("proto/api.proto")).expect("api.proto");
    let port = free_port();
    let _server = reflection_server(&dir, &seed, port, &["--v1-only"]);
    let config = shipped_config_str();
    let (_gateway, addr, log) =
        spawn_gateway_with_schema(&config, &format!("http://127.0.0.1:{port}"), "reflection");
    let loaded = log.wait_for("schema loaded", Duration::from_secs(10), |_| true);
    assert_eq!(loaded["source"], "reflection");
    let (_, openapi) = json_of(format!("http://{addr}/openapi.json")).await;
    assert!(openapi["paths"].get("/MyService/User").is_some(), "{openapi}");
    // Routed, and the call reaches the server (which implements nothing).
    let (status, body) = json_of(format!("http://{addr}/users?ids=1")).await;
    assert_eq!((status, body["code"].clone()), (501, Value::from(12)), "{body}");
}
