//! The Go programs of `clients/go/`, built from Debian's Go packages by `clients/go/build`
//! (which `scripts/setup` runs too): the seed's client, the grpc-go `MyService` server, and a
//! grpc-go server of reflection alone for any descriptor set.
//! It owns building them once per test binary, starting the server on `127.0.0.1:0` and
//! waiting for its readiness line, and running the client to completion. A missing Go
//! toolchain is a test failure, never a skip.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::process::{ChildGuard, Finished, READY_TIMEOUT, manifest_dir, run_to_exit, spawn_listening};

/// Where `clients/go/build` puts its binaries (`target/go/bin`).
fn bin_dir() -> PathBuf {
    manifest_dir().join("target/go/bin")
}

/// Builds the Go programs, once per test binary (Go's cache makes a rebuild about a second).
pub fn build() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = manifest_dir().join("clients/go/build");
            let mut command = Command::new(&script);
            command.current_dir(manifest_dir());
            let finished = run_to_exit(command, Duration::from_secs(300));
            assert!(
                finished.status.success(),
                "{} failed ({}); run scripts/setup first (it installs golang-go, \
                 golang-google-grpc-dev, golang-goprotobuf-dev and protobuf-compiler)\nstdout:\n{}\nstderr:\n{}",
                script.display(),
                finished.status,
                finished.stdout.join("\n"),
                finished.stderr.join("\n")
            );
            bin_dir()
        })
        .clone()
}

/// Starts the grpc-go `MyService` server (`clients/go/server`) with `args` (`-gzip`) on a
/// free port, and returns it with its address once it printed its readiness line.
pub fn spawn_go_users(args: &[&str]) -> (ChildGuard, SocketAddr) {
    let mut command = Command::new(build().join("users-server"));
    command.args(["-addr", "127.0.0.1:0"]).args(args);
    let child = ChildGuard::spawn("go users-server", command);
    const PREFIX: &str = "users_server listening on ";
    let line = child
        .stdout()
        .wait_for(READY_TIMEOUT, |l| l.starts_with(PREFIX))
        .unwrap_or_else(|| {
            panic!(
                "the Go server printed no readiness line within {READY_TIMEOUT:?}\nstderr:\n{}",
                child.stderr().text()
            )
        });
    let addr = line[PREFIX.len()..]
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad readiness line {line:?}: {e}"));
    (child, addr)
}

/// Runs the seed's Go client against `addr` to completion.
pub fn run_seed_client(addr: SocketAddr) -> Finished {
    let mut command = Command::new(build().join("seed-client"));
    command.args(["-addr", &addr.to_string()]);
    run_to_exit(command, Duration::from_secs(30))
}

/// Starts the grpc-go reflection server (`clients/go/reflection`) serving the descriptor set
/// at `descriptors` (every method UNIMPLEMENTED) on a free port: grpc.reflection.v1alpha, or
/// with `v1_only` grpc.reflection.v1 alone.
pub fn spawn_go_reflection(descriptors: &std::path::Path, v1_only: bool) -> (ChildGuard, SocketAddr) {
    let mut command = Command::new(build().join("reflection-server"));
    command
        .args(["-addr", "127.0.0.1:0", "-descriptors"])
        .arg(descriptors);
    if v1_only {
        command.arg("-v1-only");
    }
    spawn_listening("go reflection-server", command, "reflection_server listening on ")
}

/// Starts the grpc-go RouteGuide server (`clients/go/routeguide`: all four method shapes,
/// reflection) on a free port; returns it once it says where it listens.
pub fn spawn_go_routeguide() -> (ChildGuard, SocketAddr) {
    let mut command = Command::new(build().join("routeguide-server"));
    command.args(["-addr", "127.0.0.1:0"]);
    spawn_listening("go routeguide-server", command, "routeguide listening on ")
}
