//! `upstream`: the fast upstream of the benchmark, a tiny tonic `MyService` server with the
//! seeded user table (`protogate_bench::users`), so that what is measured in front of it is
//! the gateway and not the service. Wire paths `/MyService/User` and `/MyService/Health`,
//! as in the seed's package-less `api.proto`. It also serves grpc's RouteGuide for `bench
//! streams`, shaped for measuring streams: `ListFeatures` streams `hi.latitude -
//! lo.latitude` features (at most 1,000,000), and `RouteChat` answers each note at once with
//! the same note (one reply per request message).
//!
//! It binds `--listen` (default `127.0.0.1:0`) and prints one readiness line on stdout,
//! `upstream listening on ADDR`, with the real address. It runs until killed.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
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
        .serve_with_incoming(incoming)
        .await
        .context("the server failed")
}
