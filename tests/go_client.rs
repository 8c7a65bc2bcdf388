//! The seed's own Go client (`clients/go/client`, built from Debian's Go packages) against
//! the real Python service: the proof that `services/users` is still the service the seed's
//! Go client talks to. It calls `Health`, then `User([1,2])`, and prints the users as the
//! seed does (`gprc result: %+v`, golang/protobuf 1.3's compact text per message).

mod support;

use support::go::run_seed_client;
use support::process::{spawn_python_users, spawn_python_users_with};

const EXPECTED: [&str; 2] = [
    "health: ok",
    r#"gprc result: [name:"Alice" age:30 email:"alice@example.com"  name:"Bob" age:25 email:"bob@example.com" ]"#,
];

fn assert_seed_output(finished: &support::process::Finished) {
    assert!(
        finished.status.success(),
        "the seed client failed: {}\nstdout:\n{}\nstderr:\n{}",
        finished.status,
        finished.stdout.join("\n"),
        finished.stderr.join("\n")
    );
    assert_eq!(
        finished.stdout,
        EXPECTED,
        "stderr:\n{}",
        finished.stderr.join("\n")
    );
}

#[test]
fn seed_go_client_gets_alice_and_bob_from_the_python_service() {
    let (_python, addr) = spawn_python_users(&[]);
    assert_seed_output(&run_seed_client(addr));
}

/// The seed's server as the seed writes it (MyService only), with reply compression on:
/// the Go client still gets the same answer.
#[test]
fn seed_go_client_works_against_the_seed_style_server_with_gzip() {
    let (_python, addr) = spawn_python_users_with(0, &[], &["--seed-style", "--compression", "gzip"]);
    assert_seed_output(&run_seed_client(addr));
}
