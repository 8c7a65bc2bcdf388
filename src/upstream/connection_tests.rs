//! The connection state machine on tokio's paused clock (no real waiting): the backoff after
//! failed dials, reconnecting after a connection ends or is forgotten, the keepalive ping
//! and its timeout, and the connect timeout. Dials go to in-memory duplex pipes instead of
//! TCP (`Connection::transport`), so that nothing but the clock decides the timing.

use std::io;
use std::sync::atomic::AtomicUsize;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::task::JoinHandle;

use super::*;

/// Makes the client end of one new connection.
pub(super) type Transport = Arc<dyn Fn() -> BoxFuture<'static, io::Result<DuplexStream>> + Send + Sync>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

fn connection(transport: Transport) -> Arc<Connection> {
    let settings = Settings {
        scheme: http::uri::Scheme::HTTP,
        authority: http::uri::Authority::from_static("users:50051"),
        connect_timeout: CONNECT_TIMEOUT,
        keepalive_interval: KEEPALIVE_INTERVAL,
        keepalive_timeout: KEEPALIVE_TIMEOUT,
        tls: None,
        max_reply_bytes: 4 << 20,
        compress_requests: None,
    };
    Arc::new(Connection {
        addr: "127.0.0.1:50051".parse().expect("addr"),
        settings: Arc::new(settings),
        slot: Mutex::new(idle()),
        generation: AtomicU64::new(0),
        transport: Some(transport),
    })
}

/// A transport that counts its dials and answers each as `outcome` says.
fn counting(
    dials: &Arc<AtomicUsize>,
    outcome: impl Fn(usize) -> BoxFuture<'static, io::Result<DuplexStream>> + Send + Sync + 'static,
) -> Transport {
    let dials = dials.clone();
    Arc::new(move || outcome(dials.fetch_add(1, Ordering::SeqCst)))
}

fn refused() -> BoxFuture<'static, io::Result<DuplexStream>> {
    Box::pin(async { Err(io::Error::from(io::ErrorKind::ConnectionRefused)) })
}

/// A pipe with an HTTP/2 server on the far end; aborting the returned task drops that end.
fn h2_server() -> (DuplexStream, JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        if let Ok(mut connection) = h2::server::handshake(server).await {
            while let Some(Ok(_)) = connection.accept().await {}
        }
    });
    (client, task)
}

/// The error of a dial that must fail (`Live` has no `Debug` for `expect_err`).
async fn failure(connection: &Arc<Connection>, why: &str) -> ConnectError {
    match connection.live().await {
        Ok(live) => panic!("{why}: connected (generation {})", live.generation),
        Err(err) => err,
    }
}

fn is_live(connection: &Connection) -> bool {
    matches!(&*lock(&connection.slot), Slot::Live(_))
}

/// Lets the connection's driver task run until `done` holds (bounded).
async fn settle_until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(start_paused = true)]
async fn failed_dials_back_off_from_100ms_doubling_to_1s() {
    let dials = Arc::new(AtomicUsize::new(0));
    let connection = connection(counting(&dials, |_| refused()));
    for (n, backoff_ms) in [100, 200, 400, 800, 1000, 1000].into_iter().enumerate() {
        let err = failure(&connection, "refused").await;
        assert_eq!(err.stage, "tcp connect error");
        assert_eq!(dials.load(Ordering::SeqCst), n + 1);
        // Within the backoff, calls fail at once with the last error and dial nothing.
        tokio::time::advance(Duration::from_millis(backoff_ms - 1)).await;
        assert!(connection.backing_off(), "dial {}: {backoff_ms} ms", n + 1);
        let again = failure(&connection, "backing off").await;
        assert_eq!(again.stage, "tcp connect error");
        assert_eq!(dials.load(Ordering::SeqCst), n + 1, "no dial during the backoff");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            !connection.backing_off(),
            "dial {}: over after {backoff_ms} ms",
            n + 1
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_ends_is_dialled_again_and_a_success_resets_the_backoff() {
    let dials = Arc::new(AtomicUsize::new(0));
    let servers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let kept = servers.clone();
    // Dial 0 fails, dials 1 and 2 succeed, dial 3 fails.
    let connection = connection(counting(&dials, move |n| match n {
        0 | 3 => refused(),
        _ => {
            let (client, task) = h2_server();
            lock(&kept).push(task);
            Box::pin(async move { Ok(client) })
        }
    }));
    failure(&connection, "first dial refused").await;
    tokio::time::advance(FIRST_BACKOFF).await;
    let live = connection.live().await.expect("second dial");
    assert_eq!(live.generation, 1);
    assert_eq!(
        connection.live().await.expect("shared").generation,
        1,
        "one connection for every call"
    );
    assert_eq!(dials.load(Ordering::SeqCst), 2);

    // The server goes away: the driver sees the end and the next call dials at once.
    lock(&servers)[0].abort();
    settle_until("the ended connection is retired", || !is_live(&connection)).await;
    assert!(!connection.backing_off(), "an ended connection is no failed dial");
    let again = connection.live().await.expect("third dial");
    assert_eq!(again.generation, 2);

    // A call that found the connection closed forgets it; an older generation is ignored.
    connection.forget(1, &h2::Error::from(h2::Reason::NO_ERROR));
    assert!(is_live(&connection), "generation 1 is long gone");
    connection.forget(2, &h2::Error::from(h2::Reason::NO_ERROR));
    assert!(!is_live(&connection));

    // The next failure backs off from the first step again: the success reset the count.
    failure(&connection, "fourth dial refused").await;
    tokio::time::advance(FIRST_BACKOFF - Duration::from_millis(1)).await;
    assert!(connection.backing_off());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!connection.backing_off());
}

/// Reads what the client writes and never answers; counts the PING frames (type 6 without
/// the ACK flag) it sees.
fn silent_peer(mut server: DuplexStream, pings: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        let mut preface = [0u8; 24];
        if server.read_exact(&mut preface).await.is_err() {
            return;
        }
        loop {
            let mut head = [0u8; 9];
            if server.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0u8; len];
            if server.read_exact(&mut payload).await.is_err() {
                return;
            }
            if head[3] == 0x6 && head[4] & 0x1 == 0 {
                pings.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_only_with_calls_in_flight_and_a_late_pong_closes() {
    let pings = Arc::new(AtomicUsize::new(0));
    let seen = pings.clone();
    let connection = connection(Arc::new(move || {
        let (client, server) = tokio::io::duplex(64 * 1024);
        silent_peer(server, seen.clone());
        Box::pin(async move { Ok(client) })
    }));
    let live = connection.live().await.expect("dial");
    let start = Instant::now();

    // No call in flight: no PING (grpcio's policy punishes pings without data), so even a
    // peer that never answers keeps the connection for many intervals.
    tokio::time::sleep(KEEPALIVE_INTERVAL * 3 + KEEPALIVE_INTERVAL / 2).await;
    assert_eq!(pings.load(Ordering::SeqCst), 0);
    assert!(is_live(&connection));

    // A call in flight: the next tick (at 40 s) pings; no PONG by 45 s closes it.
    let call = live.in_flight();
    let next_tick = start + KEEPALIVE_INTERVAL * 4;
    tokio::time::sleep_until(next_tick + KEEPALIVE_TIMEOUT - Duration::from_millis(1)).await;
    assert_eq!(pings.load(Ordering::SeqCst), 1);
    assert!(is_live(&connection), "the PONG is not late yet");
    tokio::time::sleep(Duration::from_millis(2)).await;
    settle_until("the connection is closed after the late PONG", || {
        !is_live(&connection)
    })
    .await;
    assert!(
        Instant::now() < next_tick + KEEPALIVE_TIMEOUT + Duration::from_millis(100),
        "closed at the timeout, not later"
    );
    drop(call);
}

#[tokio::test(start_paused = true)]
async fn a_dial_that_hangs_fails_at_the_connect_timeout() {
    let dials = Arc::new(AtomicUsize::new(0));
    let connection = connection(counting(&dials, |_| Box::pin(std::future::pending())));
    let started = Instant::now();
    let err = failure(&connection, "hangs").await;
    assert_eq!(err.stage, "connect timeout");
    assert_eq!(started.elapsed(), CONNECT_TIMEOUT);
    assert!(err.cause.contains("within 1000ms"), "{}", err.cause);
    assert!(
        connection.backing_off(),
        "a timed-out dial backs off like a refused one"
    );
    assert_eq!(dials.load(Ordering::SeqCst), 1);
}

/// A caller that gives up (its deadline, its client gone) does not cancel the dial that
/// others wait on: the dial runs in a task of its own and its outcome is shared.
#[tokio::test(start_paused = true)]
async fn a_caller_that_leaves_does_not_cancel_the_shared_dial() {
    let dials = Arc::new(AtomicUsize::new(0));
    let connection = connection(counting(&dials, |_| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Ok(h2_server().0)
        })
    }));
    let leaving = tokio::spawn({
        let connection = connection.clone();
        async move { connection.live().await.map(|live| live.generation) }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    leaving.abort();
    let live = connection.live().await.expect("the same dial completes");
    assert_eq!(live.generation, 1);
    assert_eq!(dials.load(Ordering::SeqCst), 1);
}
