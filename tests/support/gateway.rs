//! The gateway served in-process by `protogate::serve` on `127.0.0.1:0`.

use std::net::SocketAddr;

use protogate::{Config, Overrides};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running gateway; dropping it shuts it down.
pub struct TestGateway {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), protogate::StartupError>>>,
}

/// The shipped seed rules, for tests that don't care about config.
pub const SEED_RULES: &str = r#"
[[rules]]
selector = "MyService.User"
get = "/users"
query_aliases = { ids = "userIDs" }

[[rules]]
selector = "MyService.Health"
get = "/health"
"#;

impl TestGateway {
    /// Starts a gateway for `upstream` with the seed rules plus `extra_toml`.
    pub async fn start(upstream: SocketAddr, extra_toml: &str) -> TestGateway {
        Self::start_for(&format!("http://{upstream}"), extra_toml).await
    }

    /// Starts a gateway for the upstream URL `url` (`https://` for TLS) with the seed rules
    /// plus `extra_toml`.
    pub async fn start_for(url: &str, extra_toml: &str) -> TestGateway {
        let text = format!("{extra_toml}\n{SEED_RULES}");
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            upstream: Some(url.to_string()),
            ..Default::default()
        };
        let mut config = Config::from_toml(&text, &overrides).expect("test config is valid");
        // Scripted upstreams count and script every call; the check of the upstream's
        // services is the real binary's business (tests/startup_and_logs.rs).
        config.schema.check_upstream = false;
        Self::start_with(config).await
    }

    pub async fn start_with(config: Config) -> TestGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(protogate::serve(listener, config, async move {
            let _ = rx.await;
        }));
        TestGateway {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signals shutdown and waits for the drain to finish.
    pub async fn stop(mut self) -> Result<(), protogate::StartupError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task
            .take()
            .expect("running")
            .await
            .expect("serve task does not panic")
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A config section that makes the gateway load the descriptors compiled into it as a
/// runtime schema (`--schema descriptors:`), so that every method goes through the dynamic
/// codec: the other half of the tests that run through both codecs.
pub fn dynamic_schema_config() -> String {
    let path = std::env::temp_dir().join(format!("protogate-descriptors-{}.binpb", std::process::id()));
    std::fs::write(&path, protogate::pb::DESCRIPTOR_SET).expect("write descriptors");
    format!("[schema]\nsource = \"descriptors:{}\"\n", path.display())
}
