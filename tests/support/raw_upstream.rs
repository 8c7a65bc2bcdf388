//! A scripted raw HTTP/2 upstream on `127.0.0.1:0`, for the ways a gRPC call can break that
//! no real server does on purpose: an `h2` server answers the n-th call as the test's
//! script says (`RST_STREAM` with any reason, before or after the reply head; a status;
//! a reply without `grpc-status`; compressed or bomb messages), and records every request's
//! head and body. Connections lost mid-call and GOAWAYs are spoken byte by byte instead
//! (`Lose`), because the h2 crate counts every stream it received as processed and flushes
//! on its own schedule.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use h2::Reason;
use http::{HeaderMap, Response};
use prost::Message;
use protogate::pb::protogate_unpackaged::{User, UserReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the upstream does with the n-th call (0-based).
#[derive(Clone, Debug)]
pub enum Act {
    ResetAtOnce(Reason),
    ResetAfterHeaders(Reason),
    /// `{"message":"success","data":[Alice]}`, status OK.
    Answer,
    /// A trailers-only reply with this `grpc-status` and raw `grpc-status-details-bin`.
    Status(&'static str, &'static str),
    /// A reply head (with `content-type: application/grpc`) plus `head`, these DATA
    /// frames, then these trailers, or no trailers (the last DATA frame ends the stream).
    Reply {
        head: Vec<(&'static str, &'static str)>,
        data: Vec<Bytes>,
        trailers: Option<Vec<(&'static str, &'static str)>>,
    },
}

/// A connection spoken by hand: what happens after the client's first HEADERS frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lose {
    /// The TCP connection closes with no answer at all.
    BeforeTheHead,
    /// A reply head (200, application/grpc), then the connection closes.
    AfterTheHead,
    /// GOAWAY with last stream id 0 (the call was not processed), then close.
    GoAwayUnprocessed,
}

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct RawUpstream {
    pub addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
}

type Script = Arc<dyn Fn(usize) -> Act + Send + Sync>;

impl RawUpstream {
    /// Answers every call on HTTP/2 connections as `script` says.
    pub async fn start(script: impl Fn(usize) -> Act + Send + Sync + 'static) -> RawUpstream {
        Self::start_with(script, None).await
    }

    /// Like `start`, except that the first connection is spoken by hand and broken as
    /// `first` says; later connections follow the script.
    pub async fn start_with(
        script: impl Fn(usize) -> Act + Send + Sync + 'static,
        first: Option<Lose>,
    ) -> RawUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = RawUpstream {
            addr: listener.local_addr().expect("addr"),
            calls: Arc::new(AtomicUsize::new(0)),
            connections: Arc::new(AtomicUsize::new(0)),
            received: Arc::new(Mutex::new(Vec::new())),
        };
        let script: Script = Arc::new(script);
        let (calls, connections, received) = (
            upstream.calls.clone(),
            upstream.connections.clone(),
            upstream.received.clone(),
        );
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if connections.fetch_add(1, Ordering::SeqCst) == 0
                    && let Some(lose) = first
                {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(lose_connection(tcp, lose));
                    continue;
                }
                let (script, calls, received) = (script.clone(), calls.clone(), received.clone());
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(tcp).await else {
                        return;
                    };
                    while let Some(Ok((request, respond))) = connection.accept().await {
                        let n = calls.fetch_add(1, Ordering::SeqCst);
                        let (act, received) = (script(n), received.clone());
                        tokio::spawn(async move {
                            let (parts, mut body) = request.into_parts();
                            let mut bytes = BytesMut::new();
                            while let Some(Ok(chunk)) = body.data().await {
                                let _ = body.flow_control().release_capacity(chunk.len());
                                bytes.extend_from_slice(&chunk);
                            }
                            received.lock().expect("lock").push(Received {
                                headers: parts.headers,
                                body: bytes.freeze(),
                            });
                            act_on(act, respond);
                        });
                    }
                });
            }
        });
        upstream
    }

    /// Calls received so far (a hand-spoken connection counts as one).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The requests the h2 connections received.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

/// One gRPC frame: the flag, the big-endian length, the payload.
pub fn frame(compressed: bool, payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + payload.len());
    frame.put_u8(u8::from(compressed));
    frame.put_u32(u32::try_from(payload.len()).expect("fits"));
    frame.put_slice(payload);
    frame.freeze()
}

/// The reply of `Act::Answer`, unframed.
pub fn alice_reply() -> Vec<u8> {
    UserReply {
        message: "success".into(),
        data: vec![User {
            name: "Alice".into(),
            age: 30,
            email: "alice@example.com".into(),
        }],
    }
    .encode_to_vec()
}

fn act_on(act: Act, mut respond: h2::server::SendResponse<Bytes>) {
    let head = |extra: &[(&'static str, &'static str)]| {
        let mut head = Response::builder().header("content-type", "application/grpc");
        for (name, value) in extra {
            head = head.header(*name, *value);
        }
        head.body(()).expect("response head")
    };
    match act {
        Act::ResetAtOnce(reason) => respond.send_reset(reason),
        Act::ResetAfterHeaders(reason) => {
            let mut stream = respond.send_response(head(&[]), false).expect("head");
            stream.send_reset(reason);
        }
        Act::Status(code, details) => {
            let trailers_only = head(&[
                ("grpc-status", code),
                ("grpc-message", "bad%20things"),
                ("grpc-status-details-bin", details),
            ]);
            let _ = respond.send_response(trailers_only, true);
        }
        Act::Answer => act_on(
            Act::Reply {
                head: Vec::new(),
                data: vec![frame(false, &alice_reply())],
                trailers: Some(vec![("grpc-status", "0")]),
            },
            respond,
        ),
        Act::Reply {
            head: extra,
            data,
            trailers,
        } => {
            let mut stream = respond.send_response(head(&extra), false).expect("head");
            let last = data.len().saturating_sub(1);
            for (i, chunk) in data.into_iter().enumerate() {
                let end = i == last && trailers.is_none();
                stream.send_data(chunk, end).expect("data");
            }
            if let Some(trailers) = trailers {
                let mut map = HeaderMap::new();
                for (name, value) in trailers {
                    map.insert(name, value.parse().expect("value"));
                }
                stream.send_trailers(map).expect("trailers");
            }
        }
    }
}

/// Reads the client preface and frames until the first HEADERS frame, answers SETTINGS,
/// then breaks the connection as `lose` says.
async fn lose_connection(mut tcp: TcpStream, lose: Lose) {
    let mut preface = [0u8; 24];
    if tcp.read_exact(&mut preface).await.is_err() {
        return;
    }
    let stream_id = loop {
        let mut head = [0u8; 9];
        if tcp.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        if tcp.read_exact(&mut payload).await.is_err() {
            return;
        }
        if head[3] == 0x1 {
            break [head[5] & 0x7f, head[6], head[7], head[8]];
        }
    };
    let mut out = vec![0u8, 0, 0, 0x4, 0, 0, 0, 0, 0]; // SETTINGS, empty
    match lose {
        Lose::BeforeTheHead => {}
        Lose::AfterTheHead => {
            // HPACK: `:status: 200` (static index 8), then `content-type` (static index
            // 31) as a literal without indexing, value "application/grpc".
            let mut block = vec![0x88, 0x0f, 0x10, 16];
            block.extend_from_slice(b"application/grpc");
            out.extend_from_slice(&[0, 0, u8::try_from(block.len()).expect("small"), 0x1, 0x4]);
            out.extend_from_slice(&stream_id);
            out.extend_from_slice(&block);
        }
        Lose::GoAwayUnprocessed => {
            out.extend_from_slice(&[0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
    }
    let _ = tcp.write_all(&out).await;
    let _ = tcp.shutdown().await;
    // Read until the client closes too: closing with unread bytes (the request's DATA
    // frame) would send a TCP RST, which may overtake what was written.
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
}
