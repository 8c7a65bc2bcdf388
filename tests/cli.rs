//! The `protogate` command line as an operator meets it: startup failures (exit 2 and one
//! `protogate: ...` line on stderr that names the problem), `check-config`, the
//! `PROTOGATE_*` env vars and their precedence, and `healthcheck`. Requests through a running
//! gateway are `python_e2e.rs`'s business; config validation rules in detail are unit tests
//! in `src/config_tests.rs`.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use support::http::get;
use support::process::{
    Finished, free_port, gateway_command, manifest_dir, run_to_exit, shipped_config, spawn_gateway,
    spawn_python_users,
};

/// Long enough for a cold binary start; a gateway that wrongly starts is killed after it.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A config file under the temp dir with a name unique to this process and call; removed
/// on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(text: &str) -> TempConfig {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("protogate-cli-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write temp config");
        TempConfig(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run(args: &[&str]) -> Finished {
    let mut command: Command = gateway_command();
    command.args(args);
    run_to_exit(command, EXIT_TIMEOUT)
}

/// Asserts the startup-failure contract: exit code 2 and exactly one stderr line, starting
/// `protogate: ` and containing every one of `needles`.
fn assert_fails_naming(finished: &Finished, needles: &[&str]) {
    assert_eq!(
        finished.status.code(),
        Some(2),
        "exit status; stderr: {:?}",
        finished.stderr
    );
    let [line] = finished.stderr.as_slice() else {
        panic!("want exactly one stderr line, got {:?}", finished.stderr);
    };
    assert!(line.starts_with("protogate: "), "{line}");
    // Once: not again as a JSON log line on stdout.
    assert!(
        finished.stdout.is_empty(),
        "the failure is printed once, on stderr; stdout has {:?}",
        finished.stdout
    );
    for needle in needles {
        assert!(
            line.contains(needle),
            "stderr line does not name {needle:?}: {line}"
        );
    }
}

/// Starts the gateway on `config` (port 0, so a wrongly valid config cannot take 8080).
fn start_with(config: &str) -> Finished {
    let config = TempConfig::new(config);
    run(&["--config", config.path(), "--listen", "127.0.0.1:0"])
}

#[test]
fn unknown_config_key_fails_startup_naming_key_and_line() {
    let finished =
        start_with("listen = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://127.0.0.1:1\"\ntimout = \"1s\"\n");
    assert_fails_naming(
        &finished,
        &["config line 4", "unknown field `timout`", "protogate-cli-"],
    );
}

#[test]
fn rule_with_unknown_selector_fails_startup_listing_known_methods() {
    let finished = start_with("[[rules]]\nselector = \"MyService.Nope\"\nget = \"/x\"\n");
    assert_fails_naming(
        &finished,
        &[
            "config rule 1",
            "no method \"MyService.Nope\"",
            "known methods: MyService.Health, MyService.User",
        ],
    );
}

#[test]
fn rule_with_unknown_field_fails_startup_naming_field() {
    for (rule, field) in [
        ("get = \"/users/{nope}\"", "nope"),
        ("post = \"/users\"\nbody = \"bodyfield\"", "bodyfield"),
        (
            "get = \"/users\"\nquery_aliases = { ids = \"aliased\" }",
            "aliased",
        ),
    ] {
        let finished = start_with(&format!("[[rules]]\nselector = \"MyService.User\"\n{rule}\n"));
        assert_fails_naming(
            &finished,
            &[
                "config rule 1",
                "MyService.User",
                &format!("no field \"{field}\""),
            ],
        );
    }
}

#[test]
fn bad_listen_and_upstream_flags_fail_startup() {
    assert_fails_naming(
        &run(&["--listen", "127.0.0.1:0", "--upstream", "ftp://x"]),
        &["upstream.url", "ftp://x"],
    );
    assert_fails_naming(&run(&["--listen", "nonsense"]), &["listen", "\"nonsense\""]);
    let missing = std::env::temp_dir().join(format!("protogate-cli-{}-missing.toml", std::process::id()));
    let missing = missing.to_str().expect("UTF-8");
    assert_fails_naming(
        &run(&["--config", missing, "--listen", "127.0.0.1:0"]),
        &["cannot read config", missing],
    );
}

#[test]
fn listen_address_in_use_fails_startup() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    assert_fails_naming(
        &run(&["--listen", &addr, "--upstream", "http://127.0.0.1:1"]),
        &["cannot listen on", &addr],
    );
}

#[test]
fn check_config_prints_the_shipped_route_table() {
    let config = shipped_config();
    let finished = run(&["check-config", "--config", config.to_str().expect("UTF-8")]);
    let stderr_head = finished.stderr.iter().take(4).collect::<Vec<_>>();
    assert!(
        finished.status.success(),
        "exit {}; stderr: {stderr_head:?}",
        finished.status
    );
    let routes = &finished.stdout;
    for route in ["GET /users -> MyService.User", "GET /health -> MyService.Health"] {
        assert!(
            routes.iter().any(|l| l.starts_with(route)),
            "no {route:?} in {routes:?}"
        );
    }
    // unbound_methods = true also serves every method at POST /{Service}/{Method}.
    assert!(
        routes
            .iter()
            .any(|l| l.starts_with("POST /MyService/User -> MyService.User")),
        "{routes:?}"
    );
    // In the reader's order: the rules' routes first, the unbound ones after them.
    let first_unbound = routes
        .iter()
        .position(|l| l.contains("(unbound method"))
        .expect("unbound routes");
    let last_rule = routes
        .iter()
        .rposition(|l| l.contains("(config rule"))
        .expect("rule routes");
    assert!(last_rule < first_unbound, "{routes:?}");
}

#[test]
fn help_lists_every_schema_source() {
    let finished = run(&["--help"]);
    assert_eq!(finished.status.code(), Some(0), "{:?}", finished.stderr);
    let help = finished.stdout.join(" ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for source in ["compiled", "reflection", "descriptors:PATH", "protos:DIR"] {
        assert!(help.contains(source), "--help does not list {source}: {help}");
    }
    let finished = run(&["check-config", "--help"]);
    let help = finished.stdout.join("\n");
    for flag in ["--upstream", "--schema", "--config"] {
        assert!(help.contains(flag), "check-config --help has no {flag}: {help}");
    }
}

#[test]
fn check_config_takes_upstream_and_reads_its_reflection() {
    let (_users, addr) = spawn_python_users(&[]);
    let upstream = format!("http://{addr}");
    let finished = run(&["check-config", "--schema", "reflection", "--upstream", &upstream]);
    assert_eq!(finished.status.code(), Some(0), "{:?}", finished.stderr);
    assert_eq!(
        finished.stdout.first().map(String::as_str),
        Some("# schema reflection: 2 methods, 2 routes"),
        "{:?}",
        finished.stdout
    );
    assert!(
        finished
            .stdout
            .iter()
            .any(|l| l == "POST /MyService/User -> MyService.User (unbound method MyService.User)"),
        "{:?}",
        finished.stdout
    );
}

#[test]
fn check_config_names_the_upstream_it_could_not_reach() {
    let port = free_port();
    let upstream = format!("http://127.0.0.1:{port}");
    let finished = run(&["check-config", "--schema", "reflection", "--upstream", &upstream]);
    assert_fails_naming(
        &finished,
        &[
            "no schema",
            &format!("the upstream at http://127.0.0.1:{port}/"),
            "point --upstream at it",
        ],
    );
}

/// The first `scripts/run` builds the release binary for minutes: it must say so and let
/// cargo show its progress, not build under `--quiet` in silence.
#[test]
fn scripts_run_says_what_it_builds_and_shows_progress() {
    let script = std::fs::read_to_string(manifest_dir().join("scripts/run")).expect("scripts/run");
    let build = script
        .lines()
        .find(|l| l.trim_start().starts_with("cargo build"))
        .expect("scripts/run builds the binary");
    assert!(
        !build.contains("--quiet"),
        "a silent build looks like a hang: {build}"
    );
    let before = &script[..script.find(build).expect("found")];
    assert!(
        before.contains("echo \"run: building protogate") && before.contains("minutes"),
        "scripts/run says what it builds and about how long, before it builds"
    );
}

#[test]
fn check_config_rejects_a_bad_rule() {
    let config = TempConfig::new("[[rules]]\nselector = \"MyService.Nope\"\nget = \"/x\"\n");
    assert_fails_naming(
        &run(&["check-config", "--config", config.path()]),
        &["no method \"MyService.Nope\""],
    );
}

#[tokio::test]
async fn env_vars_override_the_config_file() {
    let config = shipped_config();
    let env = [
        ("PROTOGATE_CONFIG", config.to_str().expect("UTF-8")),
        // The shipped file says 0.0.0.0:8080 and 127.0.0.1:50051; the env must win.
        ("PROTOGATE_LISTEN", "127.0.0.1:0"),
        ("PROTOGATE_UPSTREAM", "http://127.0.0.1:1"),
    ];
    let (_gateway, addr, _log) = spawn_gateway(&[], &env);
    assert!(addr.ip().is_loopback() && addr.port() != 8080, "{addr}");
    get(&format!("http://{addr}/healthz"))
        .await
        .assert_json(200, json!({"status": "SERVING"}));
    let reply = get(&format!("http://{addr}/users?ids=1")).await;
    assert_eq!(reply.status.as_u16(), 503, "{:?}", reply.body);
    assert_eq!(reply.json()["code"], 14);
}

#[tokio::test]
async fn flags_override_env_vars() {
    let env = [
        ("PROTOGATE_LISTEN", "nonsense"),
        ("PROTOGATE_UPSTREAM", "ftp://nonsense"),
    ];
    let (_gateway, addr, _log) = spawn_gateway(
        &["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1"],
        &env,
    );
    get(&format!("http://{addr}/healthz"))
        .await
        .assert_json(200, json!({"status": "SERVING"}));
}

#[test]
fn healthcheck_exits_zero_on_200_and_one_otherwise() {
    // Upstream down: /healthz is 200, /readyz is 503.
    let (_gateway, addr, _log) = spawn_gateway(
        &["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1"],
        &[],
    );
    let healthz = format!("http://{addr}/healthz");
    let finished = run(&["healthcheck", "--url", &healthz]);
    assert_eq!(finished.status.code(), Some(0), "stderr: {:?}", finished.stderr);

    let readyz = format!("http://{addr}/readyz");
    let finished = run(&["healthcheck", "--url", &readyz]);
    assert_eq!(finished.status.code(), Some(1), "stderr: {:?}", finished.stderr);
    assert!(
        finished.stderr.iter().any(|l| l.contains("503")),
        "{:?}",
        finished.stderr
    );

    let closed = format!("http://127.0.0.1:{}/healthz", free_port());
    let finished = run(&["healthcheck", "--url", &closed, "--timeout", "2s"]);
    assert_eq!(finished.status.code(), Some(1), "stderr: {:?}", finished.stderr);
    assert!(
        finished.stderr.iter().any(|l| l.starts_with("healthcheck: ")),
        "{:?}",
        finished.stderr
    );
}
