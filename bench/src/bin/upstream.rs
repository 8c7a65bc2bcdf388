//! `upstream`: the fast upstream of the benchmark, a tiny tonic `MyService` server with the
//! seeded user table (`protogate_bench::users`), so that what is measured in front of it is
//! the gateway and not the service. Wire paths `/MyService/User` and `/MyService/Health`,
//! as in the seed's package-less `api.proto`.
//!
//! It binds `--listen` (default `127.0.0.1:0`) and prints one readiness line on stdout,
//! `upstream listening on ADDR`, with the real address. It runs until killed.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use protogate_bench::pb::my_service_server::{MyService, MyServiceServer};
use protogate_bench::pb::{UserReply, UserReq};
use protogate_bench::users;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

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
        .serve_with_incoming(incoming)
        .await
        .context("the server failed")
}
