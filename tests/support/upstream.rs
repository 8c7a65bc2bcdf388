//! A recording, fault-injecting gRPC upstream on `127.0.0.1:0`. It serves `MyService/*` with
//! a raw-bytes codec, so it records exactly what the gateway sent (path, metadata, message
//! bytes) and replies with whatever a test scripts: any message, any status with details,
//! a delay, response metadata, or an oversized reply; gzip-compressed with `start_gzip`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use futures_util::future::BoxFuture;
use prost::Message;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

/// One call as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub metadata: MetadataMap,
    pub message: Bytes,
}

impl Recorded {
    pub fn decode<M: Message + Default>(&self) -> M {
        M::decode(self.message.clone()).expect("upstream received a decodable message")
    }

    pub fn meta(&self, key: &str) -> Option<String> {
        self.metadata
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// What the upstream answers.
pub struct Reply {
    pub delay: Duration,
    pub result: Result<Bytes, Status>,
    pub metadata: Vec<(&'static str, String)>,
    /// For server-streaming paths: the messages, the pause before each, and how it ends.
    pub stream: Vec<Bytes>,
    pub gap: Duration,
}

impl Reply {
    pub fn message<M: Message>(message: &M) -> Reply {
        Reply {
            delay: Duration::ZERO,
            result: Ok(message.encode_to_vec().into()),
            metadata: Vec::new(),
            stream: Vec::new(),
            gap: Duration::ZERO,
        }
    }

    pub fn status(status: Status) -> Reply {
        Reply {
            result: Err(status),
            ..Reply::message(&())
        }
    }

    /// A server stream of `messages`, `gap` apart, ending with OK.
    pub fn stream<M: Message>(messages: &[M], gap: Duration) -> Reply {
        let stream = messages.iter().map(|m| m.encode_to_vec().into()).collect();
        Reply {
            stream,
            gap,
            ..Reply::message(&())
        }
    }

    /// Ends a stream with `status` after its messages.
    pub fn then_fail(mut self, status: Status) -> Reply {
        self.result = Err(status);
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn with_metadata(mut self, key: &'static str, value: impl Into<String>) -> Reply {
        self.metadata.push((key, value.into()));
        self
    }
}

type Script = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// The running upstream. Dropping it stops it.
pub struct RecordingUpstream {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Recorded>>>,
    cancelled: Arc<std::sync::atomic::AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RecordingUpstream {
    /// Starts an upstream that answers every call with `script`.
    pub async fn start(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> RecordingUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        Self::serve(listener, Arc::new(script))
    }

    /// Starts an upstream that speaks gRPC over TLS only, with the given server settings.
    pub async fn start_tls(
        tls: tonic::transport::ServerTlsConfig,
        script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> RecordingUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        Self::serve_on(listener, Arc::new(script), Some(tls))
    }

    /// Starts an upstream that gzips its replies to a client that accepts gzip (tonic's
    /// `send_compressed`), and takes gzip requests.
    pub async fn start_gzip(
        script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> RecordingUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        Self::serve_with(listener, Arc::new(script), None, true)
    }

    /// Starts on a given listener (to restart on the same port).
    pub fn serve(listener: tokio::net::TcpListener, script: Script) -> RecordingUpstream {
        Self::serve_on(listener, script, None)
    }

    fn serve_on(
        listener: tokio::net::TcpListener,
        script: Script,
        tls: Option<tonic::transport::ServerTlsConfig>,
    ) -> RecordingUpstream {
        Self::serve_with(listener, script, tls, false)
    }

    fn serve_with(
        listener: tokio::net::TcpListener,
        script: Script,
        tls: Option<tonic::transport::ServerTlsConfig>,
        gzip: bool,
    ) -> RecordingUpstream {
        let addr = listener.local_addr().expect("addr");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let cancelled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let service = Recorder {
            calls: calls.clone(),
            script,
            cancelled: cancelled.clone(),
            gzip,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Every path goes to the recorder, whatever the service name.
            let routes = tonic::service::Routes::from(axum::Router::new().fallback_service(service));
            let mut builder = tonic::transport::Server::builder();
            if let Some(tls) = tls {
                builder = builder.tls_config(tls).expect("valid test TLS config");
            }
            let _ = builder
                .add_routes(routes)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                    let _ = stopped.await;
                })
                .await;
        });
        RecordingUpstream {
            addr,
            calls,
            cancelled,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().expect("lock").clone()
    }

    /// Forgets the calls received so far.
    pub fn clear(&self) {
        self.calls.lock().expect("lock").clear();
    }

    /// How many server streams the client abandoned before they ended.
    pub fn cancelled_streams(&self) -> usize {
        self.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The only call received; panics unless exactly one arrived.
    pub fn only_call(&self) -> Recorded {
        let calls = self.calls();
        assert_eq!(
            calls.len(),
            1,
            "expected exactly one upstream call, got {calls:?}"
        );
        calls[0].clone()
    }

    /// Stops serving and waits until the port is closed.
    pub async fn kill(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[derive(Clone)]
struct Recorder {
    calls: Arc<Mutex<Vec<Recorded>>>,
    script: Script,
    cancelled: Arc<std::sync::atomic::AtomicUsize>,
    gzip: bool,
}

impl<B> tower::Service<http::Request<B>> for Recorder
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // It serves no reflection, and says so as a gRPC server does: the gateway's check of
        // the upstream's services (gateway/served.rs) is neither recorded nor scripted.
        if request.uri().path().starts_with("/grpc.reflection.") {
            let answer = Status::unimplemented("unknown service").into_http();
            return Box::pin(async move { Ok(answer) });
        }
        let handler = Handler {
            path: request.uri().path().to_string(),
            recorder: self.clone(),
        };
        // Methods named Stream* are server-streaming in the test protos.
        let streaming = handler
            .path
            .rsplit('/')
            .next()
            .is_some_and(|m| m.starts_with("Stream"));
        let gzip = self.gzip;
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec);
            if gzip {
                use tonic::codec::CompressionEncoding::Gzip;
                grpc = grpc.send_compressed(Gzip).accept_compressed(Gzip);
            }
            Ok(if streaming {
                grpc.server_streaming(handler, request).await
            } else {
                grpc.unary(handler, request).await
            })
        })
    }
}

struct Handler {
    path: String,
    recorder: Recorder,
}

impl Handler {
    /// Records the call and asks the script for the reply.
    fn record(&self, request: Request<Bytes>) -> Reply {
        let recorded = Recorded {
            path: self.path.clone(),
            metadata: request.metadata().clone(),
            message: request.into_inner(),
        };
        let reply = (self.recorder.script)(&recorded);
        self.recorder.calls.lock().expect("lock").push(recorded);
        reply
    }
}

impl tonic::server::UnaryService<Bytes> for Handler {
    type Response = Bytes;
    type Future = BoxFuture<'static, Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let reply = self.record(request);
        Box::pin(async move {
            tokio::time::sleep(reply.delay).await;
            let mut metadata = MetadataMap::new();
            for (key, value) in reply.metadata {
                metadata.insert(key, value.parse().expect("ascii metadata"));
            }
            match reply.result {
                Ok(message) => {
                    let mut response = Response::new(message);
                    *response.metadata_mut() = metadata;
                    Ok(response)
                }
                Err(mut status) => {
                    *status.metadata_mut() = metadata;
                    Err(status)
                }
            }
        })
    }
}

impl tonic::server::ServerStreamingService<Bytes> for Handler {
    type Response = Bytes;
    type ResponseStream = futures_util::stream::BoxStream<'static, Result<Bytes, Status>>;
    type Future = BoxFuture<'static, Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let reply = self.record(request);
        let cancelled = self.recorder.cancelled.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Status>>(1);
        tokio::spawn(async move {
            for message in reply.stream {
                tokio::time::sleep(reply.gap).await;
                if tx.send(Ok(message)).await.is_err() {
                    // The client went away: the gateway cancelled the call.
                    cancelled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return;
                }
            }
            if let Err(status) = reply.result {
                let _ = tx.send(Err(status)).await;
            }
        });
        Box::pin(async move {
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
            Ok(Response::new(futures_util::StreamExt::boxed(stream)))
        })
    }
}

/// Passes message bytes through untouched.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
