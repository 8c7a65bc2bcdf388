//! `bench peers [--baseline BIN]`: protogate against a reference gateway, grpc-gateway v1.6.4
//! (`bench/peers/grpc-gateway/`, built from Debian's packages), side by side in one run: the
//! table of issue 20 and its goals. Every repeat runs, interleaved, direct gRPC, grpc-gateway,
//! the baseline build (if given) and the current build, each a fresh process pinned to the
//! gateway CPU, in front of the same upstream: the grpc-go `MyService` of `clients/go/server`
//! (the default, as in the table) or the bench's fast tonic upstream (`--upstream
//! fast`). Three calls: the seed call (`[1,2]`), a reply of `--users` users (100 by default),
//! and the seed call in front of the Python service (no grpc-gateway there: the goal is
//! protogate against direct gRPC; by default with the Python service alone on the load CPU
//! and its client, direct or through a gateway, on the gateway CPU: `--python-placement`).
//!
//! grpc-gateway has no query aliases and no comma lists, so its request is
//! `GET /users?userIDs=1&userIDs=2` where protogate's is `GET /users?ids=1,2`; both carry
//! the same `UserReq` and get the same reply bytes (the `reply B` column shows it).
//! It measures grpc-gateway exactly as protogate: the same first-200 poll (on its own
//! path), idle RSS after that, CPU from /proc around the measured window, `VmHWM` after it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::ValueEnum;
use serde::Serialize;

use crate::loads::{HttpLoad, Sample};
use crate::procs::{self, Server, Spec};
use crate::report::{Row, interleaved, mib, ms, opt};
use crate::rig::{Logging, Rig, START_TIMEOUT};
use crate::table::Target;

/// The upstream the seed call and the large replies go to.
#[derive(Clone, Copy, Debug, Serialize, ValueEnum)]
pub enum PeerUpstream {
    /// The grpc-go MyService of clients/go/server (the method).
    Go,
    /// The bench's fast tonic upstream.
    Fast,
}

/// Where the seed call in front of the Python service puts its client.
#[derive(Clone, Copy, Debug, Serialize, ValueEnum)]
pub enum PythonPlacement {
    /// The Python service alone on the load CPU; the client (grpc_load, or wrk and the
    /// gateway) on the gateway CPU: both rows give the bottleneck the same CPU.
    Own,
    /// As the other rows: the client on the load CPU beside the Python service, so direct
    /// gRPC's client (grpc_load) takes Python's CPU where a gateway's gRPC client does not.
    Shared,
}

/// The programs of a peers run beyond the rig's own.
#[derive(Debug, Serialize)]
pub struct PeerBins {
    pub grpc_gateway: PathBuf,
    pub go_server: PathBuf,
    pub baseline: Option<PathBuf>,
}

impl PeerBins {
    /// The defaults are where scripts/bench builds them (bench/target/{peers,go}/bin).
    pub fn new(
        root: &Path,
        grpc_gateway: Option<PathBuf>,
        go_server: Option<PathBuf>,
        baseline: Option<PathBuf>,
    ) -> PeerBins {
        let target = root.join("bench/target");
        PeerBins {
            grpc_gateway: grpc_gateway.unwrap_or_else(|| target.join("peers/bin/grpc-gateway")),
            go_server: go_server.unwrap_or_else(|| target.join("go/bin/users-server")),
            baseline,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Direct,
    GrpcGateway,
    Baseline,
    Current,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    /// `[1,2]` to the chosen upstream.
    Seed,
    /// `--users` users per reply from the chosen upstream.
    Many,
    /// `[1,2]` to the Python service.
    Python,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    call: Call,
    via: Via,
}

#[derive(Debug, Serialize)]
pub struct PeersReport {
    pub upstream: PeerUpstream,
    pub users: usize,
    pub python_placement: PythonPlacement,
    pub bins: PeerBins,
    pub current: PathBuf,
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
}

/// The scenarios in print order, with their row names.
fn scenarios(baseline: bool, users: usize, upstream: &str) -> Vec<(String, Scenario)> {
    let mut out = Vec::new();
    let calls = [
        (Call::Seed, format!("seed call → {upstream}")),
        (Call::Many, format!("{users} users → {upstream}")),
        (Call::Python, "seed call → Python".to_owned()),
    ];
    for (call, what) in calls {
        for via in [Via::Direct, Via::GrpcGateway, Via::Baseline, Via::Current] {
            if (via == Via::Baseline && !baseline) || (via == Via::GrpcGateway && call == Call::Python) {
                continue;
            }
            out.push((format!("{}, {what}", via_name(via)), Scenario { call, via }));
        }
    }
    out
}

fn via_name(via: Via) -> &'static str {
    match via {
        Via::Direct => "direct gRPC",
        Via::GrpcGateway => "grpc-gateway v1.6.4",
        Via::Baseline => "protogate baseline",
        Via::Current => "protogate current",
    }
}

/// Runs every scenario `repeats` times, interleaved.
pub fn run(
    rig: &Rig,
    bins: PeerBins,
    upstream: PeerUpstream,
    users: usize,
    python_placement: PythonPlacement,
) -> anyhow::Result<PeersReport> {
    for (bin, how) in [
        (
            &bins.grpc_gateway,
            "bench/peers/grpc-gateway/build (scripts/bench peers runs it)",
        ),
        (
            &bins.go_server,
            "clients/go/build bench/target/go (scripts/bench peers runs it)",
        ),
    ] {
        anyhow::ensure!(bin.is_file(), "{} is missing: run {how}", bin.display());
    }
    if let Some(baseline) = &bins.baseline {
        anyhow::ensure!(
            baseline.is_file(),
            "--baseline {} is not a file",
            baseline.display()
        );
    }
    let go = match upstream {
        PeerUpstream::Go => Some(start_go_server(rig, &bins.go_server)?),
        PeerUpstream::Fast => None,
    };
    let name = match upstream {
        PeerUpstream::Go => "grpc-go",
        PeerUpstream::Fast => "fast upstream",
    };
    let list = scenarios(bins.baseline.is_some(), users, name);
    let named: Vec<(&str, Scenario)> = list.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let chosen = go.as_ref().unwrap_or(&rig.fast);
    let rows = interleaved(rig.opts.repeats, &named, |s| {
        let own = matches!(python_placement, PythonPlacement::Own) && s.call == Call::Python;
        rig.client_cpu_override.set(own.then_some(rig.opts.gateway_cpu));
        let sample = one(rig, &bins, chosen, users, s);
        rig.client_cpu_override.set(None);
        sample
    })?;
    let targets = targets(&list, &rows);
    Ok(PeersReport {
        upstream,
        users,
        python_placement,
        bins,
        current: rig.bins.gateway.clone(),
        rows,
        targets,
    })
}

/// The grpc-go server, pinned to the load CPU beside the other upstreams.
fn start_go_server(rig: &Rig, bin: &Path) -> anyhow::Result<Server> {
    let spec = Spec::new("users-server-go", bin, &["-addr", "127.0.0.1:0"]).pinned(rig.opts.load_cpu);
    procs::start_server(&spec, &rig.logs, START_TIMEOUT, |line| {
        line.strip_prefix("users_server listening on ").map(str::to_owned)
    })
}

/// The request of `users` users (`1` repeated; the seed call is `[1,2]`) in each form.
struct Request {
    /// For grpc_load's `--ids`.
    ids: String,
    /// protogate's path (comma list under the alias `ids`).
    protogate: String,
    /// grpc-gateway's path (the field name, repeated).
    grpc_gateway: String,
}

fn request(call: Call, users: usize) -> Request {
    let ids: Vec<&str> = match call {
        Call::Seed | Call::Python => vec!["1", "2"],
        Call::Many => vec!["1"; users.max(1)],
    };
    let repeated: Vec<String> = ids.iter().map(|id| format!("userIDs={id}")).collect();
    Request {
        ids: ids.join(","),
        protogate: format!("/users?ids={}", ids.join(",")),
        grpc_gateway: format!("/users?{}", repeated.join("&")),
    }
}

fn one(rig: &Rig, bins: &PeerBins, chosen: &Server, users: usize, s: Scenario) -> anyhow::Result<Sample> {
    let upstream = match s.call {
        Call::Python => rig.python()?,
        Call::Seed | Call::Many => chosen,
    };
    let req = request(s.call, users);
    let c = rig.opts.connections;
    let protogate =
        |bin: &Path| rig.through_from(bin, upstream, Logging::Quiet, &req.protogate, c, HttpLoad::Closed);
    match s.via {
        Via::Direct => rig.direct(upstream, c, &req.ids),
        Via::Current => protogate(&rig.bins.gateway),
        Via::Baseline => protogate(bins.baseline.as_deref().context("no --baseline")?),
        Via::GrpcGateway => {
            let args = ["-addr", "127.0.0.1:0", "-upstream", &upstream.addr];
            let spec = Spec::new("grpc-gateway", &bins.grpc_gateway, &args).pinned(rig.opts.gateway_cpu);
            let ready = |line: &str| line.strip_prefix("grpc-gateway listening on ").map(str::to_owned);
            // Its first 200 is polled on its own form of the seed call.
            let gateway = rig.launch(&spec, ready, &request(Call::Seed, 0).grpc_gateway)?;
            rig.through_gateway(&gateway, &req.grpc_gateway, c, HttpLoad::Closed)
        }
    }
}

/// The goals of issue 20, for each protogate build of the run.
fn targets(list: &[(String, Scenario)], rows: &[Row]) -> Vec<Target> {
    let find = |call: Call, via: Via| {
        list.iter()
            .position(|(_, s)| s.call == call && s.via == via)
            .map(|i| &rows[i].median)
    };
    let mut out = Vec::new();
    for (via, who) in [(Via::Baseline, "baseline"), (Via::Current, "current")] {
        let (Some(seed), Some(many), Some(py)) = (
            find(Call::Seed, via),
            find(Call::Many, via),
            find(Call::Python, via),
        ) else {
            continue;
        };
        let gg = find(Call::Seed, Via::GrpcGateway);
        let gg_many = find(Call::Many, Via::GrpcGateway);
        let py_direct = find(Call::Python, Via::Direct);
        let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map_or(f64::NAN, |(a, b)| a / b);
        out.push(Target::new(
            format!("{who}: seed call, gateway CPU/req against grpc-gateway's"),
            ratio(seed.cpu_us_per_request, gg.and_then(|m| m.cpu_us_per_request)),
            0.30,
            "×",
            false,
        ));
        out.push(Target::new(
            format!("{who}: large replies, req/s against grpc-gateway's"),
            ratio(Some(many.rps), gg_many.map(|m| m.rps)),
            15.0,
            "×",
            true,
        ));
        out.push(Target::new(
            format!("{who}: idle RSS (seed call row)"),
            seed.idle_rss_kib.unwrap_or(f64::NAN) / 1024.0,
            8.0,
            "MiB",
            false,
        ));
        out.push(Target::new(
            format!("{who}: spawn to first 200 (seed call row)"),
            seed.first_ok_ms.unwrap_or(f64::NAN),
            10.0,
            "ms",
            false,
        ));
        out.push(Target::new(
            format!("{who}: req/s against direct gRPC, Python service"),
            100.0 * ratio(Some(py.rps), py_direct.map(|m| m.rps)),
            97.0,
            "%",
            true,
        ));
    }
    out
}

/// The markdown body: the table, the per-round CPU ratios, the goals.
pub fn markdown(report: &PeersReport, rig: &Rig) -> String {
    let b = &report.bins;
    let mut md = format!(
        "\ngrpc-gateway: `{}`  \nbaseline: `{}`  \ncurrent: `{}`  \nupstream: {:?} ({})\n\n\
         ## Closed loop, {} connections (wrk; grpc-gateway gets `?userIDs=1&userIDs=2`, protogate `?ids=1,2`)\n\n\
         Python rows: {}\n\n\
         | scenario | req/s median (min–max) | gateway CPU µs/req | p50 / p99 ms | idle / peak RSS MiB | first 200 ms | reply B | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        b.grpc_gateway.display(),
        b.baseline
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
        report.current.display(),
        report.upstream,
        match report.upstream {
            PeerUpstream::Go => b.go_server.display().to_string(),
            PeerUpstream::Fast => rig.bins.upstream.display().to_string(),
        },
        rig.opts.connections,
        match report.python_placement {
            PythonPlacement::Own => format!(
                "the Python service alone on CPU {}, its client (grpc_load, or wrk and the gateway) on CPU {}",
                rig.opts.load_cpu, rig.opts.gateway_cpu
            ),
            PythonPlacement::Shared => format!(
                "the client (grpc_load, or wrk) beside the Python service on CPU {}, the gateway on CPU {}",
                rig.opts.load_cpu, rig.opts.gateway_cpu
            ),
        },
    );
    for row in &report.rows {
        let m = &row.median;
        md += &format!(
            "| {} | {:.0} ({:.0}–{:.0}) | {} | {} / {} | {} / {} | {} | {} | {} |\n",
            row.scenario,
            m.rps,
            m.rps_min,
            m.rps_max,
            opt(m.cpu_us_per_request, |v| format!("{v:.1}")),
            ms(m.p50_us),
            ms(m.p99_us),
            opt(m.idle_rss_kib, mib),
            opt(m.peak_rss_kib, mib),
            opt(m.first_ok_ms, |v| format!("{v:.1}")),
            opt(m.reply_bytes, |v| format!("{v:.0}")),
            crate::report::errors(m),
        );
    }
    md += "\n## Against grpc-gateway, round by round (protogate ÷ grpc-gateway, same repeat)\n\n";
    md += &rounds(report);
    md += "\n## Goals (issue 20; medians of this run)\n\n";
    for target in &report.targets {
        md += &target.line();
        md.push('\n');
    }
    md
}

/// Per repeat: CPU/req and req/s of each protogate build over grpc-gateway's, seed call
/// and large replies. Repeat i of every row ran in the same round, minutes apart at most.
fn rounds(report: &PeersReport) -> String {
    let rows = &report.rows;
    let by = |name: &str| rows.iter().find(|r| r.scenario.starts_with(name));
    let mut md = String::new();
    for call in ["seed call", &format!("{} users", report.users)] {
        let Some(gg) = by(&format!("grpc-gateway v1.6.4, {call}")) else {
            continue;
        };
        for who in ["protogate baseline", "protogate current"] {
            let Some(pg) = by(&format!("{who}, {call}")) else {
                continue;
            };
            let cells: Vec<String> = pg
                .samples
                .iter()
                .zip(&gg.samples)
                .map(|(p, g)| {
                    let cpu = |s: &Sample| s.gateway.as_ref().map_or(f64::NAN, |c| c.cpu_us_per_request);
                    let rps = |s: &Sample| s.load.rps;
                    format!("CPU {:.2}×, req/s {:.2}×", cpu(p) / cpu(g), rps(p) / rps(g))
                })
                .collect();
            md += &format!("- {who}, {call}: {}\n", cells.join("; "));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::{Call, request, scenarios};

    #[test]
    fn both_gateways_get_the_same_ids_in_their_own_form() {
        let seed = request(Call::Seed, 0);
        assert_eq!(seed.ids, "1,2");
        assert_eq!(seed.protogate, "/users?ids=1,2");
        assert_eq!(seed.grpc_gateway, "/users?userIDs=1&userIDs=2");
        let many = request(Call::Many, 3);
        assert_eq!(many.protogate, "/users?ids=1,1,1");
        assert_eq!(many.grpc_gateway, "/users?userIDs=1&userIDs=1&userIDs=1");
    }

    #[test]
    fn the_baseline_rows_appear_only_with_a_baseline() {
        assert_eq!(scenarios(false, 100, "grpc-go").len(), 8);
        let with = scenarios(true, 100, "grpc-go");
        assert_eq!(with.len(), 11);
        assert_eq!(with[1].0, "grpc-gateway v1.6.4, seed call → grpc-go");
        assert!(
            !with
                .iter()
                .any(|(n, _)| n.starts_with("grpc-gateway") && n.ends_with("Python"))
        );
    }
}
