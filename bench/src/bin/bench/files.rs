//! `files`: raw-body throughput and memory (issue 23): a `google.api.HttpBody` download and
//! upload of `--mib` MiB (default 1 GiB) through the gateway beside the same bytes directly
//! over gRPC, in front of the fast upstream's file service (`src/bin/upstream.rs`:
//! `StreamDownload` streams slices of one shared buffer, `StreamUpload` only counts).
//!
//! Each round, in this order, one transfer each:
//! - `download` through the gateway: `GET /v1/files/bench/stream?size=N&chunk=1048576` on
//!   one HTTP/1.1 connection, the chunked body read as fast as it comes;
//! - `download` direct: `StreamDownload` over tonic, 1 MiB messages;
//! - `upload` through the gateway: `POST /v1/files/bench/stream` with a streamed raw body
//!   (`Content-Length` N, written in 1 MiB pieces), which the gateway sends upstream in
//!   messages of `upload_chunk_bytes` (1 MiB, the default);
//! - `upload` direct: `StreamUpload` over tonic, 1 MiB messages.
//!
//! Every gateway transfer has a fresh gateway (the release build, every setting at its
//! default but a long deadline and `max_upload_bytes` above N), pinned to the gateway CPU;
//! its peak RSS (`VmHWM`) after the transfer is that direction's memory, and its
//! `utime + stime` over the transfer its CPU. The clients run in the runner, on the load CPU
//! with the upstream. The table shows medians over `--repeats` rounds and the largest peak.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, StreamBody};
use hyper::body::{Body, Frame};
use hyper::client::conn::http1;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use protogate_bench::files::v1::files_client::FilesClient;
use protogate_bench::files::v1::{DownloadRequest, UploadRequest};
use protogate_bench::google::api::HttpBody;
use serde::Serialize;
use tokio_stream::StreamExt as _;

use crate::measure;
use crate::procs::Spec;
use crate::report;
use crate::rig::{self, Gateway, Rig};

const MIB: u64 = 1024 * 1024;
/// The message size of both direct calls, of the download the gateway asks for, and of the
/// gateway's uploads (its default `upload_chunk_bytes`).
const CHUNK: u64 = MIB;
const NAME: &str = "bench";
const CONTENT_TYPE: &str = "application/octet-stream";

/// One direction's figures: medians over the rounds, and the largest peak.
#[derive(Debug, Serialize)]
pub struct Direction {
    pub name: &'static str,
    pub gateway_mib_per_second: f64,
    pub direct_mib_per_second: f64,
    /// Gateway throughput over direct throughput.
    pub ratio: f64,
    /// Gateway CPU seconds per GiB moved.
    pub gateway_cpu_seconds_per_gib: f64,
    /// The gateway's largest peak RSS (VmHWM) over the rounds.
    pub peak_rss_kib: u64,
    /// The gateway's RSS right after start, before the transfer (the largest over rounds).
    pub idle_rss_kib: u64,
}

/// What `bench files` measured.
#[derive(Debug, Serialize)]
pub struct Files {
    pub mib: u64,
    pub chunk_bytes: u64,
    pub directions: Vec<Direction>,
}

/// One round's figures of one direction.
#[derive(Default)]
struct Samples {
    gateway: Vec<f64>,
    direct: Vec<f64>,
    cpu: Vec<f64>,
    peak_rss_kib: u64,
    idle_rss_kib: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Download,
    Upload,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Download => "download",
            Way::Upload => "upload",
        }
    }
}

pub fn run(rig: &Rig, mib: u64) -> anyhow::Result<Files> {
    anyhow::ensure!(mib > 0, "--mib must be positive");
    let size = mib * MIB;
    let upstream: SocketAddr = rig
        .upstream(rig::Upstream::Fast)?
        .addr
        .parse()
        .context("the upstream's address")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the load runtime")?;
    let config = write_config(rig, size)?;
    let mut down = Samples::default();
    let mut up = Samples::default();
    for round in 0..rig.opts.repeats {
        for (way, samples) in [(Way::Download, &mut down), (Way::Upload, &mut up)] {
            let gateway = launch(rig, &config, upstream)?;
            let addr: SocketAddr = gateway.server.addr.parse().context("the gateway's address")?;
            let before = measure::cpu_ticks(gateway.pid())?;
            let started = Instant::now();
            match way {
                Way::Download => runtime.block_on(download_http(addr, size))?,
                Way::Upload => runtime.block_on(upload_http(addr, size))?,
            }
            let seconds = started.elapsed().as_secs_f64();
            let cpu = rig.cpu_seconds(before, measure::cpu_ticks(gateway.pid())?);
            let peak = measure::status_kib(gateway.pid(), "VmHWM")?;
            samples.idle_rss_kib = samples.idle_rss_kib.max(gateway.idle_rss_kib);
            drop(gateway);
            let started = Instant::now();
            match way {
                Way::Download => runtime.block_on(download_grpc(upstream, size))?,
                Way::Upload => runtime.block_on(upload_grpc(upstream, size))?,
            }
            let direct = started.elapsed().as_secs_f64();
            let rate = |secs: f64| mib as f64 / secs;
            eprintln!(
                "bench files: round {} {}: gateway {:.0} MiB/s, direct {:.0} MiB/s, peak RSS {:.1} MiB",
                round + 1,
                way.name(),
                rate(seconds),
                rate(direct),
                peak as f64 / 1024.0
            );
            samples.gateway.push(rate(seconds));
            samples.direct.push(rate(direct));
            samples.cpu.push(cpu * 1024.0 / mib as f64);
            samples.peak_rss_kib = samples.peak_rss_kib.max(peak);
        }
    }
    let directions = [(Way::Download, down), (Way::Upload, up)]
        .into_iter()
        .map(|(way, s)| {
            let gateway = report::median(s.gateway);
            let direct = report::median(s.direct);
            Direction {
                name: way.name(),
                gateway_mib_per_second: gateway,
                direct_mib_per_second: direct,
                ratio: gateway / direct,
                gateway_cpu_seconds_per_gib: report::median(s.cpu),
                peak_rss_kib: s.peak_rss_kib,
                idle_rss_kib: s.idle_rss_kib,
            }
        })
        .collect();
    Ok(Files {
        mib,
        chunk_bytes: CHUNK,
        directions,
    })
}

/// The gateway's config: the defaults, but a deadline long enough for a slow gigabyte and
/// uploads up to twice the size (at least the default 1 GiB).
fn write_config(rig: &Rig, size: u64) -> anyhow::Result<String> {
    let config = rig.out.join("protogate-files.toml");
    let max_upload = (2 * size).max(1 << 30);
    let text = format!(
        "# bench files: the defaults, but a long deadline and uploads up to {max_upload} bytes\n\
         [upstream]\ntimeout = \"600s\"\nmax_timeout = \"600s\"\n\
         [transcoding]\nmax_upload_bytes = {max_upload}\n"
    );
    std::fs::write(&config, text).context("cannot write the files config")?;
    Ok(config.to_string_lossy().into_owned())
}

/// A fresh gateway in front of the fast upstream, with the file service's proto as schema.
fn launch(rig: &Rig, config: &str, upstream: SocketAddr) -> anyhow::Result<Gateway> {
    let root = rig.opts.root.to_string_lossy();
    let schema = format!("protos:{root}/tests/protos/files");
    let upstream = format!("http://{upstream}");
    let args = [
        "--config",
        config,
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--schema",
        &schema,
    ];
    let spec = Spec::new("gateway", &rig.bins.gateway, &args)
        .pinned(rig.opts.gateway_cpu)
        .env("PROTOGATE_LOG_FORMAT", Some("json"))
        .env("RUST_LOG", Some("warn,protogate::server=info"));
    rig.launch(&spec, rig::listening_addr, "/healthz")
}

/// One HTTP/1.1 connection to the gateway, its driver spawned.
async fn connect<B>(addr: SocketAddr) -> anyhow::Result<http1::SendRequest<B>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// `size` zero bytes in `CHUNK` pieces, each a slice of one buffer.
fn pieces(size: u64) -> impl Iterator<Item = Bytes> {
    let zeros = Bytes::from(vec![0; CHUNK as usize]);
    (0..size.div_ceil(CHUNK)).map(move |i| zeros.slice(..CHUNK.min(size - i * CHUNK) as usize))
}

async fn download_http(addr: SocketAddr, size: u64) -> anyhow::Result<()> {
    let mut sender = connect::<Empty<Bytes>>(addr).await?;
    let path = format!("/v1/files/{NAME}/stream?size={size}&chunk={CHUNK}");
    let request = Request::get(&path)
        .header(header::HOST, addr.to_string())
        .body(Empty::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let mut body = response.into_body();
    if status != StatusCode::OK {
        let text = body.collect().await?.to_bytes();
        anyhow::bail!("{path}: {status}: {}", String::from_utf8_lossy(&text));
    }
    let mut read = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.context("the download broke off")?.data_ref() {
            read += data.len() as u64;
        }
    }
    anyhow::ensure!(
        read == size,
        "the gateway's download carried {read} bytes, not {size}"
    );
    Ok(())
}

async fn upload_http(addr: SocketAddr, size: u64) -> anyhow::Result<()> {
    type Piece = Result<Frame<Bytes>, std::convert::Infallible>;
    let frames = tokio_stream::iter(pieces(size).map(|piece| Piece::Ok(Frame::data(piece))));
    let mut sender = connect::<StreamBody<_>>(addr).await?;
    let path = format!("/v1/files/{NAME}/stream");
    let request = Request::post(&path)
        .header(header::HOST, addr.to_string())
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .header(header::CONTENT_LENGTH, size)
        .body(StreamBody::new(frames))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let text = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status == StatusCode::OK,
        "{path}: {status}: {}",
        String::from_utf8_lossy(&text)
    );
    // The reply is UploadReply as JSON; int64 prints as a string.
    let reply: serde_json::Value = serde_json::from_slice(&text).context("the upload's reply")?;
    let got = match &reply["size"] {
        serde_json::Value::String(s) => s.parse::<u64>().ok(),
        other => other.as_u64(),
    };
    anyhow::ensure!(
        got == Some(size),
        "the upstream got {:?} bytes through the gateway, not {size}: {reply}",
        reply["size"]
    );
    Ok(())
}

async fn grpc_client(upstream: SocketAddr) -> anyhow::Result<FilesClient<tonic::transport::Channel>> {
    let client = FilesClient::connect(format!("http://{upstream}"))
        .await
        .context("cannot connect to the upstream")?;
    Ok(client)
}

async fn download_grpc(upstream: SocketAddr, size: u64) -> anyhow::Result<()> {
    let mut client = grpc_client(upstream).await?;
    let request = DownloadRequest {
        name: NAME.to_owned(),
        size: size as i64,
        chunk: CHUNK as i32,
        ..DownloadRequest::default()
    };
    let mut replies = client.stream_download(request).await?.into_inner();
    let mut read = 0u64;
    while let Some(reply) = replies.message().await? {
        read += reply.data.len() as u64;
    }
    anyhow::ensure!(
        read == size,
        "the direct download carried {read} bytes, not {size}"
    );
    Ok(())
}

async fn upload_grpc(upstream: SocketAddr, size: u64) -> anyhow::Result<()> {
    let mut client = grpc_client(upstream).await?;
    let messages = tokio_stream::iter(pieces(size)).map(|data| UploadRequest {
        name: NAME.to_owned(),
        file: Some(HttpBody {
            content_type: CONTENT_TYPE.to_owned(),
            data,
            extensions: Vec::new(),
        }),
    });
    let reply = client.stream_upload(messages).await?.into_inner();
    anyhow::ensure!(
        reply.size == size as i64,
        "the upstream got {} bytes directly, not {size}",
        reply.size
    );
    Ok(())
}

pub fn markdown(f: &Files) -> String {
    let mut md = format!(
        "## Files\n\n{} MiB each way, one transfer at a time, in front of the fast upstream's \
         file service; messages of {} KiB both ways and direct. A fresh gateway per transfer; \
         peak RSS is its VmHWM after the transfer.\n\n\
         | direction | gateway MiB/s | direct gRPC MiB/s | gateway/direct | gateway CPU s/GiB \
         | gateway peak RSS MiB | idle RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|\n",
        f.mib,
        f.chunk_bytes / 1024
    );
    for d in &f.directions {
        md.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} |\n",
            d.name,
            d.gateway_mib_per_second,
            d.direct_mib_per_second,
            d.ratio,
            d.gateway_cpu_seconds_per_gib,
            d.peak_rss_kib as f64 / 1024.0,
            d.idle_rss_kib as f64 / 1024.0
        ));
    }
    md
}
