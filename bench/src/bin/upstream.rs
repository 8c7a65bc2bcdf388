//! `upstream`: the fast upstream of the benchmark, a tiny tonic `MyService` server with the
//! seeded user table (`protogate_bench::users`), so that what is measured in front of it is
//! the gateway and not the service. Wire paths `/MyService/User` and `/MyService/Health`,
//! as in the seed's package-less `api.proto`. It also serves grpc's RouteGuide for `bench
//! streams`, shaped for measuring streams: `ListFeatures` streams `hi.latitude -
//! lo.latitude` features (at most 1,000,000), and `RouteChat` answers each note at once with
//! the same note (one reply per request message). And it serves the file service
//! (`tests/protos/files/v1/files.proto`) for `bench files`, as cheaply as it can:
//! `StreamDownload` streams `size` bytes (at most 64 GiB) in messages of `chunk` bytes
//! (default and at most 4 MiB), each message's data a slice of one shared buffer of zeros
//! (no copy, no pattern); `StreamUpload` reads the upload to its end and answers with the
//! bytes and messages it counted (no hash). The other file methods are UNIMPLEMENTED.
//!
//! It binds `--listen` (default `127.0.0.1:0`) and prints one readiness line on stdout,
//! `upstream listening on ADDR`, with the real address. It runs until killed.

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use protogate_bench::files::v1::files_server::{Files, FilesServer};
use protogate_bench::files::v1::{DownloadRequest, SubmitReply, SubmitRequest, UploadReply, UploadRequest};
use protogate_bench::google::api::HttpBody;
use protogate_bench::pb::my_service_server::{MyService, MyServiceServer};
use protogate_bench::pb::{UserReply, UserReq};
use protogate_bench::routeguide::route_guide_server::{RouteGuide, RouteGuideServer};
use protogate_bench::routeguide::{Feature, Point, Rectangle, RouteNote, RouteSummary};
use protogate_bench::users;
use tokio_stream::StreamExt as _;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

/// A fast tonic MyService server for benchmarks.
#[derive(Debug, Parser)]
struct Cli {
    /// Address to bind; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Worker threads; default: the CPUs this process may run on (see taskset).
    #[arg(long)]
    threads: Option<usize>,
}

struct Users;

#[tonic::async_trait]
impl MyService for Users {
    async fn health(&self, _request: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }

    async fn user(&self, request: Request<UserReq>) -> Result<Response<UserReply>, Status> {
        let data = users::users(&request.get_ref().user_i_ds);
        Ok(Response::new(UserReply {
            message: "success".to_owned(),
            data,
        }))
    }
}

/// The most features one `ListFeatures` call streams.
const MAX_FEATURES: i32 = 1_000_000;

struct Guide;

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl RouteGuide for Guide {
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Status> {
        Ok(Response::new(Feature {
            name: String::new(),
            location: Some(request.into_inner()),
        }))
    }

    type ListFeaturesStream = Stream<Feature>;

    async fn list_features(
        &self,
        request: Request<Rectangle>,
    ) -> Result<Response<Self::ListFeaturesStream>, Status> {
        let rect = request.into_inner();
        let lo = rect.lo.unwrap_or_default().latitude;
        let hi = rect.hi.unwrap_or_default().latitude;
        let count = hi.saturating_sub(lo).clamp(0, MAX_FEATURES);
        let features = tokio_stream::iter(0..count).map(move |i| {
            Ok(Feature {
                name: format!("feature {i}"),
                location: Some(Point {
                    latitude: lo + i,
                    longitude: -746_188_906,
                }),
            })
        });
        Ok(Response::new(Box::pin(features)))
    }

    async fn record_route(
        &self,
        request: Request<Streaming<Point>>,
    ) -> Result<Response<RouteSummary>, Status> {
        let mut points = request.into_inner();
        let mut point_count = 0;
        while points.message().await?.is_some() {
            point_count += 1;
        }
        Ok(Response::new(RouteSummary {
            point_count,
            ..RouteSummary::default()
        }))
    }

    type RouteChatStream = Stream<RouteNote>;

    async fn route_chat(
        &self,
        request: Request<Streaming<RouteNote>>,
    ) -> Result<Response<Self::RouteChatStream>, Status> {
        Ok(Response::new(Box::pin(request.into_inner())))
    }
}

/// The largest `StreamDownload` message, and the default one.
const MAX_CHUNK: usize = 4 * 1024 * 1024;
/// The most bytes one `StreamDownload` call streams.
const MAX_DOWNLOAD: i64 = 64 << 30;

struct FileService {
    /// `MAX_CHUNK` zeros; every download message's data is a slice of it.
    zeros: Bytes,
}

#[tonic::async_trait]
impl Files for FileService {
    async fn download(&self, _request: Request<DownloadRequest>) -> Result<Response<HttpBody>, Status> {
        Err(Status::unimplemented("bench upstream: StreamDownload only"))
    }

    type StreamDownloadStream = Stream<HttpBody>;

    async fn stream_download(
        &self,
        request: Request<DownloadRequest>,
    ) -> Result<Response<Self::StreamDownloadStream>, Status> {
        let request = request.into_inner();
        let size = request.size.clamp(0, MAX_DOWNLOAD) as u64;
        let chunk = match usize::try_from(request.chunk) {
            Ok(chunk) if (1..=MAX_CHUNK).contains(&chunk) => chunk as u64,
            _ => MAX_CHUNK as u64,
        };
        let content_type = if request.content_type.is_empty() {
            "application/octet-stream".to_owned()
        } else {
            request.content_type
        };
        let zeros = self.zeros.clone();
        let messages = size.div_ceil(chunk);
        let replies = tokio_stream::iter(0..messages).map(move |i| {
            let len = chunk.min(size - i * chunk) as usize;
            Ok(HttpBody {
                content_type: content_type.clone(),
                data: zeros.slice(..len),
                extensions: Vec::new(),
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }

    async fn upload(&self, _request: Request<UploadRequest>) -> Result<Response<UploadReply>, Status> {
        Err(Status::unimplemented("bench upstream: StreamUpload only"))
    }

    async fn echo(&self, _request: Request<HttpBody>) -> Result<Response<HttpBody>, Status> {
        Err(Status::unimplemented("bench upstream: StreamUpload only"))
    }

    async fn submit(&self, _request: Request<SubmitRequest>) -> Result<Response<SubmitReply>, Status> {
        Err(Status::unimplemented("bench upstream: StreamUpload only"))
    }

    async fn stream_submit(
        &self,
        _request: Request<Streaming<SubmitRequest>>,
    ) -> Result<Response<SubmitReply>, Status> {
        Err(Status::unimplemented("bench upstream: StreamUpload only"))
    }

    async fn stream_upload(
        &self,
        request: Request<Streaming<UploadRequest>>,
    ) -> Result<Response<UploadReply>, Status> {
        let mut parts = request.into_inner();
        let mut reply = UploadReply {
            consistent: true,
            ..UploadReply::default()
        };
        while let Some(part) = parts.message().await? {
            let file = part.file.unwrap_or_default();
            if reply.messages == 0 {
                reply.name = part.name;
                reply.content_type = file.content_type;
            } else if part.name != reply.name || file.content_type != reply.content_type {
                reply.consistent = false;
            }
            let len = file.data.len() as i64;
            reply.size += len;
            reply.largest_message = reply.largest_message.max(len);
            reply.messages += 1;
        }
        Ok(Response::new(reply))
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    protogate_bench::load::runtime(cli.threads)?.block_on(serve(cli.listen))
}

async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let incoming = TcpIncoming::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?
        .with_nodelay(Some(true));
    let addr = incoming.local_addr().context("no local address")?;
    // The runner waits for this line; Rust's stdout is line-buffered even into a pipe.
    println!("upstream listening on {addr}");
    Server::builder()
        .add_service(MyServiceServer::new(Users))
        .add_service(RouteGuideServer::new(Guide))
        .add_service(FilesServer::new(FileService {
            zeros: Bytes::from(vec![0; MAX_CHUNK]),
        }))
        .serve_with_incoming(incoming)
        .await
        .context("the server failed")
}
