//! Several upstream replicas behind one name: calls go round-robin over every resolved
//! address, and the rotation follows the name as replicas come and go. The resolver is
//! scripted so the test controls what "DNS" answers; the upstreams are real tonic servers.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use protogate::gateway::Gateway;
use protogate::pb::protogate_unpackaged::UserReply;
use protogate::upstream::{Resolve, Upstream};
use protogate::{Config, Overrides};
use support::eventually;
use support::http::get;
use support::upstream::{RecordingUpstream, Reply};

/// A resolver whose answer the test sets; clones share the answer.
#[derive(Clone)]
struct Scripted(
    Arc<Mutex<std::io::Result<Vec<SocketAddr>>>>,
    Arc<std::sync::atomic::AtomicUsize>,
);

impl Scripted {
    fn resolutions(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn set(&self, answer: std::io::Result<Vec<SocketAddr>>) {
        *self.0.lock().expect("lock") = answer;
    }
}

impl Resolve for Scripted {
    fn resolve(&self) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let answer = match &*self.0.lock().expect("lock") {
            Ok(addrs) => Ok(addrs.clone()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        Box::pin(async move { answer })
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    eventually(what, Duration::from_secs(5), || {
        let done = done();
        async move { done.then_some(()) }
    })
    .await
}

#[tokio::test]
async fn calls_spread_over_replicas_and_follow_the_name() {
    let replicas = [
        RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await,
        RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await,
        RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await,
    ];
    let text = format!(
        "[upstream]\nresolve_interval = \"50ms\"\n{}",
        support::gateway::SEED_RULES
    );
    let overrides = Overrides {
        upstream: Some("http://users.internal:50051".into()),
        ..Default::default()
    };
    let config = Config::from_toml(&text, &overrides).expect("valid");
    let resolver = Scripted(Arc::new(Mutex::new(Ok(Vec::new()))), Arc::default());
    resolver.set(Ok(vec![replicas[0].addr]));
    let upstream =
        Upstream::with_resolver(&config.upstream, Arc::new(resolver.clone())).expect("valid upstream");
    let gateway = Arc::new(Gateway::with_upstream(config, upstream).expect("valid"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/users?ids=1", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(protogate::server::serve_gateway(
        listener,
        gateway.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    until("the first address", || gateway.upstream().addresses().len() == 1).await;
    // Scale up: two more replicas appear under the name.
    resolver.set(Ok(replicas.iter().map(|r| r.addr).collect()));
    until("three addresses", || gateway.upstream().addresses().len() == 3).await;
    let before: Vec<usize> = replicas.iter().map(|r| r.calls().len()).collect();
    for _ in 0..30 {
        assert_eq!(get(&url).await.status, 200);
    }
    let served: Vec<usize> = replicas
        .iter()
        .zip(&before)
        .map(|(r, b)| r.calls().len() - b)
        .collect();
    assert_eq!(served, vec![10, 10, 10], "round-robin over every replica");

    // A resolver failure keeps the rotation as it was.
    resolver.set(Err(std::io::Error::other("SERVFAIL")));
    let seen = resolver.resolutions();
    until("two failed resolutions", || resolver.resolutions() >= seen + 2).await;
    assert_eq!(gateway.upstream().addresses().len(), 3);

    // Scale down: the first replica leaves the name and stops; no call fails afterwards.
    resolver.set(Ok(vec![replicas[1].addr, replicas[2].addr]));
    until("two addresses", || gateway.upstream().addresses().len() == 2).await;
    let [first, second, third] = replicas;
    first.kill().await;
    let before = (second.calls().len(), third.calls().len());
    for _ in 0..10 {
        assert_eq!(get(&url).await.status, 200);
    }
    assert_eq!(
        (second.calls().len() - before.0, third.calls().len() - before.1),
        (5, 5)
    );

    let _ = stop.send(());
    server.await.expect("no panic").expect("served");
}

/// A replica that refuses connections costs no request: the call never left, so it is
/// retried once on the next address, whatever the method.
#[tokio::test]
async fn refused_connection_is_retried_on_the_next_replica() {
    let live = RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await;
    let dead = RecordingUpstream::start(|_| Reply::message(&UserReply::default())).await;
    let dead_addr = dead.addr;
    dead.kill().await;
    let text = format!(
        "[upstream]\nresolve_interval = \"1h\"\n{}",
        support::gateway::SEED_RULES
    );
    let overrides = Overrides {
        upstream: Some("http://users.internal:50051".into()),
        ..Default::default()
    };
    let config = Config::from_toml(&text, &overrides).expect("valid");
    let resolver = Scripted(
        Arc::new(Mutex::new(Ok(vec![dead_addr, live.addr]))),
        Arc::default(),
    );
    let upstream = Upstream::with_resolver(&config.upstream, Arc::new(resolver)).expect("valid upstream");
    let gateway = Arc::new(Gateway::with_upstream(config, upstream).expect("valid"));
    until("two addresses", || gateway.upstream().addresses().len() == 2).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/MyService/User", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(protogate::server::serve_gateway(
        listener,
        gateway.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    for _ in 0..6 {
        assert_eq!(
            support::http::post_json(&url, "{\"userIDs\":[1]}").await.status,
            200
        );
    }
    assert_eq!(live.calls().len(), 6);
    // Whatever other calls take from the rotation meanwhile, a retry never lands on the
    // address that just failed while another is known.
    for _ in 0..5 {
        let other = gateway
            .upstream()
            .pick_avoiding(Some(dead_addr))
            .expect("an address");
        assert_eq!(other.addr(), live.addr);
    }
    let _ = stop.send(());
    server.await.expect("no panic").expect("served");
}
