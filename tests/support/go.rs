//! The Go programs of `clients/go/`, built from Debian's Go packages by `clients/go/build`
//! (which `scripts/setup` runs too): the seed's client and the grpc-go `MyService` server.
//! It owns building them once per test binary, starting the server on `127.0.0.1:0` and
//! waiting for its readiness line, and running the client to completion. A missing Go
//! toolchain is a test failure, never a skip.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::process::{ChildGuard, Finished, READY_TIMEOUT, manifest_dir, run_to_exit};

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
