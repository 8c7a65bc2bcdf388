//! `grpc_load`: the direct gRPC load generator, the ceiling the gateway is compared with.
//! N concurrent callers share ONE tonic `Channel`, that is one HTTP/2 connection, and call
//! `MyService.User` with `--ids` (default `1,2`, the request behind `GET /users?ids=1,2`).
//!
//! Closed-loop by default; `--rate R` runs a fixed-rate schedule with coordinated-omission
//! correct latency (see `protogate_bench::load`). Prints one JSON line (`load::Summary`).
//! A call counts as an error when it fails, times out (`--timeout-ms`) or returns fewer
//! users than the ids ask for, so a broken upstream cannot look fast.

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use protogate_bench::load::{self, Caller, Outcome, Plan};
use protogate_bench::pb::UserReq;
use protogate_bench::pb::my_service_client::MyServiceClient;
use tonic::transport::{Channel, Endpoint};

/// Closed-loop or fixed-rate gRPC load on MyService.User over one HTTP/2 connection.
#[derive(Debug, Parser)]
struct Cli {
    /// The upstream, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    addr: String,
    /// Concurrent callers (all on one connection).
    #[arg(short, long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of the measured window.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unrecorded load before it.
    #[arg(short, long, default_value_t = 1.0)]
    warmup: f64,
    /// Requests per second (fixed-rate); without it the load is closed-loop.
    #[arg(short, long)]
    rate: Option<f64>,
    /// The userIDs of every request, a comma list (repeat ids for large replies).
    #[arg(long, default_value = "1,2")]
    ids: String,
    /// Users each reply must hold; default: how many of the ids are in the seeded table.
    #[arg(long)]
    expect: Option<usize>,
    /// Per-call timeout.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Runtime worker threads; default: the CPUs this process may run on.
    #[arg(long)]
    threads: Option<usize>,
}

struct GrpcCaller {
    client: MyServiceClient<Channel>,
    request: UserReq,
    expect: usize,
    timeout: Duration,
}

impl Caller for GrpcCaller {
    async fn call(&mut self) -> Outcome {
        let call = self.client.user(self.request.clone());
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(reply)) if reply.get_ref().data.len() == self.expect => Outcome::Ok,
            // A wrong reply or an error status (tonic also reports transport errors as a
            // status, UNAVAILABLE, so those count here too).
            Ok(_) => Outcome::Rejected,
            Err(_) => Outcome::Failed,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let summary = load::runtime(cli.threads)?.block_on(drive(&cli))?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

async fn drive(cli: &Cli) -> anyhow::Result<load::Summary> {
    anyhow::ensure!(cli.concurrency > 0, "--concurrency must be at least 1");
    let ids = protogate_bench::parse_ids(&cli.ids).map_err(anyhow::Error::msg)?;
    let expect = cli
        .expect
        .unwrap_or_else(|| protogate_bench::users::users(&ids).len());
    // One connect, one Channel: every clone below multiplexes on the same HTTP/2 connection.
    // The buffer must hold every caller's request, or callers past 1024 would queue in it.
    let channel = Endpoint::from_shared(cli.addr.clone())
        .context("invalid --addr")?
        .tcp_nodelay(true)
        .buffer_size(cli.concurrency.max(1024))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", cli.addr))?;
    // Large replies (1000 users) are far below tonic's 4 MiB default decode limit.
    let client = MyServiceClient::new(channel);
    let request = UserReq { user_i_ds: ids };
    let callers = (0..cli.concurrency)
        .map(|_| GrpcCaller {
            client: client.clone(),
            request: request.clone(),
            expect,
            timeout: Duration::from_millis(cli.timeout_ms),
        })
        .collect();
    let plan = Plan::from_flags(cli.warmup, cli.duration, cli.rate)?;
    load::run(plan, callers).await
}
