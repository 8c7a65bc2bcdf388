//! `http_load`: the fixed-rate HTTP/1.1 load generator behind the "added p99 at 2k req/s"
//! check (wrk does the closed-loop runs). `-c` keep-alive connections (hyper's client
//! connection, `TCP_NODELAY`), each a caller of `protogate_bench::load`, so the schedule,
//! the coordinated-omission correction and the histogram are exactly those of `grpc_load`
//! and the two latencies compare like for like. Without `--rate` it runs closed-loop.
//!
//! A request counts as an error unless it is answered `200` within `--timeout-ms`; a failed
//! connection is opened again on the next request. Prints one JSON line (`load::Summary`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use protogate_bench::load::{self, Caller, Outcome, Plan};

/// Closed-loop or fixed-rate HTTP/1.1 GET load over keep-alive connections.
#[derive(Debug, Parser)]
struct Cli {
    /// The URL to GET, e.g. http://127.0.0.1:8080/users?ids=1,2 (an IP address, no TLS).
    url: Uri,
    /// Keep-alive connections, one caller each.
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Seconds of the measured window.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unrecorded load before it.
    #[arg(short, long, default_value_t = 1.0)]
    warmup: f64,
    /// Requests per second (fixed-rate); without it the load is closed-loop.
    #[arg(short, long)]
    rate: Option<f64>,
    /// Per-request timeout.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Runtime worker threads; default: the CPUs this process may run on.
    #[arg(long)]
    threads: Option<usize>,
}

/// Where and what to send; shared by every connection.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

struct HttpCaller {
    target: Target,
    sender: Option<SendRequest<Empty<Bytes>>>,
    timeout: Duration,
}

impl Caller for HttpCaller {
    async fn call(&mut self) -> Outcome {
        match tokio::time::timeout(self.timeout, self.once()).await {
            Ok(Ok(StatusCode::OK)) => Outcome::Ok,
            Ok(Ok(_)) => Outcome::Rejected,
            Ok(Err(_)) | Err(_) => {
                // The connection may be half-used; start the next request on a fresh one.
                self.sender = None;
                Outcome::Failed
            }
        }
    }
}

impl HttpCaller {
    async fn once(&mut self) -> anyhow::Result<StatusCode> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.sender.insert(connect(self.target.addr).await?),
        };
        sender.ready().await?;
        let request = Request::get(self.target.path.as_str())
            .header(header::HOST, self.target.host.as_str())
            .body(Empty::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        Ok(status)
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when the sender is dropped or the peer closes.
    tokio::spawn(connection);
    Ok(sender)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let summary = load::runtime(cli.threads)?.block_on(drive(&cli))?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

async fn drive(cli: &Cli) -> anyhow::Result<load::Summary> {
    anyhow::ensure!(cli.connections > 0, "--connections must be at least 1");
    let target = target(&cli.url)?;
    let callers = (0..cli.connections)
        .map(|_| HttpCaller {
            target: target.clone(),
            sender: None,
            timeout: Duration::from_millis(cli.timeout_ms),
        })
        .collect();
    let plan = Plan::from_flags(cli.warmup, cli.duration, cli.rate)?;
    load::run(plan, callers).await
}

fn target(url: &Uri) -> anyhow::Result<Target> {
    anyhow::ensure!(
        url.scheme_str() == Some("http"),
        "only http:// URLs are supported"
    );
    let authority = url.authority().context("the URL has no host")?;
    let addr: SocketAddr = authority
        .as_str()
        .parse()
        .context("the URL's host must be IP:PORT, such as 127.0.0.1:8080")?;
    let path = url.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok(Target {
        addr,
        host: authority.as_str().to_owned(),
        path,
    })
}
