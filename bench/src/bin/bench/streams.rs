//! `streams`: the gateway's CPU per message of a server stream and of a bidirectional
//! stream (issue 22), side by side in one run, in front of the fast upstream's RouteGuide
//! (`src/bin/upstream.rs`: `ListFeatures` streams as many features as asked, `RouteChat`
//! echoes each note at once). The gateway is a fresh process per run, with every setting at
//! its default (the shipped config's `[[rules]]` name `MyService`, which this schema lacks)
//! and `--schema protos:ROOT/tests/routeguide`, pinned to the gateway CPU.
//!
//! `--clients` keep-alive HTTP/1.1 connections (in the runner, on the load CPU) each call,
//! in turn, for `--duration` seconds:
//! - `server stream`: `POST /routeguide.RouteGuide/ListFeatures` with a rectangle that asks
//!   for `--messages` features, read as NDJSON;
//! - `bidi stream`: `POST /routeguide.RouteGuide/RouteChat` with an NDJSON body of
//!   `--messages` notes, whose `--messages` echoes come back as NDJSON while it is read.
//!
//! A message is one reply line; the bidirectional one also carries its request message in.
//! CPU is the gateway's `utime + stime` over the window, divided by the reply lines read.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;

use crate::measure;
use crate::procs::Spec;
use crate::report;
use crate::rig::{self, Rig};

/// One shape's figures, medians over the repeats.
#[derive(Debug, Serialize)]
pub struct Shape {
    pub name: &'static str,
    /// Reply messages per second over the window.
    pub messages_per_second: f64,
    /// Gateway CPU per reply message.
    pub cpu_us_per_message: f64,
    /// The gateway's peak RSS (VmHWM) over the runs.
    pub peak_rss_kib: u64,
}

/// What `bench streams` measured.
#[derive(Debug, Serialize)]
pub struct Streams {
    pub clients: usize,
    pub messages: usize,
    pub shapes: Vec<Shape>,
}

/// The request of one shape: its path, content type and the body of `messages` messages.
fn request(shape: &str, messages: usize) -> (&'static str, &'static str, String) {
    if shape == "server stream" {
        let body = format!(r#"{{"lo":{{"latitude":0}},"hi":{{"latitude":{messages}}}}}"#);
        return ("/routeguide.RouteGuide/ListFeatures", "application/json", body);
    }
    let mut body = String::new();
    for i in 0..messages {
        body.push_str(&format!(
            r#"{{"location":{{"latitude":{i},"longitude":-746188906}},"message":"note {i}"}}"#
        ));
        body.push('\n');
    }
    ("/routeguide.RouteGuide/RouteChat", "application/x-ndjson", body)
}

pub fn run(rig: &Rig, clients: usize, messages: usize) -> anyhow::Result<Streams> {
    anyhow::ensure!(
        clients > 0 && messages > 0,
        "--clients and --messages must be positive"
    );
    let mut shapes = Vec::new();
    for name in ["server stream", "bidi stream"] {
        let mut rates = Vec::new();
        let mut costs = Vec::new();
        let mut peak_rss_kib = 0;
        for _ in 0..rig.opts.repeats {
            let (rate, cost, peak) = once(rig, name, clients, messages)?;
            rates.push(rate);
            costs.push(cost);
            peak_rss_kib = peak_rss_kib.max(peak);
        }
        shapes.push(Shape {
            name,
            messages_per_second: report::median(rates),
            cpu_us_per_message: report::median(costs),
            peak_rss_kib,
        });
    }
    Ok(Streams {
        clients,
        messages,
        shapes,
    })
}

/// One fresh gateway, a warmup, then the measured window: (messages/s, µs/message, peak KiB).
fn once(rig: &Rig, name: &'static str, clients: usize, messages: usize) -> anyhow::Result<(f64, f64, u64)> {
    let root = rig.opts.root.to_string_lossy();
    let schema = format!("protos:{root}/tests/routeguide");
    let upstream = format!("http://{}", rig.upstream(rig::Upstream::Fast)?.addr);
    // The defaults: the shipped config's [[rules]] name MyService, which this schema lacks.
    let config = rig.out.join("protogate-streams.toml");
    std::fs::write(&config, "# bench streams: every setting at its default\n")
        .context("cannot write the streams config")?;
    let config = config.to_string_lossy();
    let args = [
        "--config",
        &config,
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
    let gateway = rig.launch(&spec, rig::listening_addr, "/healthz")?;
    let addr: SocketAddr = gateway.server.addr.parse().context("the gateway's address")?;
    let (path, content_type, body) = request(name, messages);
    let body = Bytes::from(body);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the load runtime")?;
    let load = |seconds: u64| {
        let body = body.clone();
        runtime.block_on(async move {
            let until = Instant::now() + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..clients)
                .map(|_| tokio::spawn(client(addr, path, content_type, body.clone(), until)))
                .collect();
            let mut lines = 0;
            for task in tasks {
                lines += task.await.context("a load task failed")??;
            }
            anyhow::Ok(lines)
        })
    };
    load(rig.opts.warmup)?;
    let before = measure::cpu_ticks(gateway.pid())?;
    let started = Instant::now();
    let lines = load(rig.opts.duration)?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = rig.cpu_seconds(before, measure::cpu_ticks(gateway.pid())?);
    let peak = measure::status_kib(gateway.pid(), "VmHWM")?;
    anyhow::ensure!(lines > 0, "{name}: no reply message in the window");
    Ok((lines as f64 / seconds, cpu * 1e6 / lines as f64, peak))
}

/// One connection calling until `until`: the reply lines it read.
async fn client(
    addr: SocketAddr,
    path: &'static str,
    content_type: &'static str,
    body: Bytes,
    until: Instant,
) -> anyhow::Result<u64> {
    let mut sender = connect(addr).await?;
    let mut lines = 0;
    while Instant::now() < until {
        sender.ready().await?;
        let request = Request::post(path)
            .header(header::HOST, addr.to_string())
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/x-ndjson")
            .body(Full::new(body.clone()))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let mut reply = response.into_body();
        if status != StatusCode::OK {
            let body = reply.collect().await?.to_bytes();
            anyhow::bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        while let Some(frame) = reply.frame().await {
            if let Some(data) = frame?.data_ref() {
                lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
            }
        }
    }
    Ok(lines)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

pub fn markdown(s: &Streams) -> String {
    let mut md = format!(
        "## Streams\n\n{} keep-alive connections, {} messages per call (NDJSON both ways), \
         in front of the fast upstream's RouteGuide.\n\n\
         | shape | messages/s | gateway CPU µs/message | peak RSS MiB |\n|---|---:|---:|---:|\n",
        s.clients, s.messages
    );
    for shape in &s.shapes {
        md.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.1} |\n",
            shape.name,
            shape.messages_per_second,
            shape.cpu_us_per_message,
            shape.peak_rss_kib as f64 / 1024.0
        ));
    }
    md
}
