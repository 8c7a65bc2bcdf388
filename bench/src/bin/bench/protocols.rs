//! `bench protocols`: what the seed call costs the gateway per protocol (issue 24), side by
//! side in one run in front of the fast upstream: REST `GET /users?ids=1,2` (wrk), the same
//! call as gRPC pass-through (`grpc_load` pointed at the gateway: N callers on one HTTP/2
//! connection, as the direct rows) and as Connect unary JSON (`POST /MyService/User` with
//! `Connect-Protocol-Version: 1` and `{"userIDs":[1,2]}`, wrk with a script that shapes the
//! request), with direct gRPC as the ceiling. Every gateway row is a fresh, quiet gateway
//! pinned to the gateway CPU, its CPU read around the measured window (`loads.rs`), and the
//! report gives each protocol's CPU per request against REST's; the issue's target is
//! pass-through at most half of REST.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::loads::{HttpLoad, Sample, WRK_LUA};
use crate::report::{Row, errors, interleaved, ms, opt};
use crate::rig::{Logging, Rig, USERS_PATH};

#[derive(Clone, Copy, Debug)]
enum Scenario {
    Direct,
    Rest,
    Passthrough,
    ConnectJson,
}

const SCENARIOS: [(&str, Scenario); 4] = [
    ("direct gRPC → fast upstream", Scenario::Direct),
    ("REST `GET /users?ids=1,2`", Scenario::Rest),
    ("gRPC pass-through `MyService.User`", Scenario::Passthrough),
    ("Connect unary JSON `POST /MyService/User`", Scenario::ConnectJson),
];

/// The Connect call's path and body; the script sets its method and headers.
const CONNECT_PATH: &str = "/MyService/User";
const CONNECT_LUA: &str = r#"-- written by bench/src/bin/bench/protocols.rs: Connect unary JSON
wrk.method = "POST"
wrk.body = '{"userIDs":[1,2]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Connect-Protocol-Version"] = "1"
"#;

#[derive(Debug, Serialize)]
pub struct ProtocolsReport {
    pub rows: Vec<Row>,
}

/// Runs every scenario `repeats` times, interleaved.
pub fn run(rig: &Rig) -> anyhow::Result<ProtocolsReport> {
    let lua = rig.out.join("wrk-connect.lua");
    std::fs::write(&lua, format!("{CONNECT_LUA}{WRK_LUA}")).context("cannot write the Connect wrk script")?;
    let rows = interleaved(rig.opts.repeats, &SCENARIOS, |scenario| one(rig, &lua, scenario))?;
    Ok(ProtocolsReport { rows })
}

fn one(rig: &Rig, lua: &Path, scenario: Scenario) -> anyhow::Result<Sample> {
    let c = rig.opts.connections;
    match scenario {
        Scenario::Direct => rig.direct(&rig.fast, c, "1,2"),
        Scenario::Rest => rig.through(&rig.fast, Logging::Quiet, USERS_PATH, c, HttpLoad::Closed),
        Scenario::Passthrough => {
            let gateway = rig.gateway(&rig.fast, Logging::Quiet)?;
            rig.measured(&gateway, 0, |seconds| {
                rig.grpc_for(&gateway.server, c, "1,2", None, seconds, 0)
            })
        }
        Scenario::ConnectJson => {
            let gateway = rig.gateway(&rig.fast, Logging::Quiet)?;
            let url = gateway.url(CONNECT_PATH);
            let lua: PathBuf = lua.to_path_buf();
            rig.measured(&gateway, 0, |seconds| {
                let run = rig.start_wrk_with(&lua, &url, c, seconds)?;
                rig.finish_wrk(run, c, seconds)
            })
        }
    }
}

/// The markdown body: the table, then each protocol against REST.
pub fn markdown(report: &ProtocolsReport, rig: &Rig) -> String {
    let rows = &report.rows;
    let mut md = format!(
        "\n## The seed call per protocol, closed loop, {} connections (gRPC: {} callers on one \
         HTTP/2 connection), fast upstream, quiet log\n\n\
         | scenario | ok req/s | p50 ms | p99 ms | errors | gateway CPU µs/req | CPU µs/req range |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        rig.opts.connections, rig.opts.connections
    );
    for row in rows {
        let m = &row.median;
        let cpu: Vec<f64> = row
            .samples
            .iter()
            .filter_map(|s| s.gateway.as_ref().map(|g| g.cpu_us_per_request))
            .collect();
        let range = match cpu.is_empty() {
            true => "—".to_string(),
            false => {
                let lo = cpu.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = cpu.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!("{lo:.1}–{hi:.1}")
            }
        };
        md += &format!(
            "| {} | {:.0} | {} | {} | {} | {} | {range} |\n",
            row.scenario,
            m.rps,
            ms(m.p50_us),
            ms(m.p99_us),
            errors(m),
            opt(m.cpu_us_per_request, |v| format!("{v:.1}")),
        );
    }
    let cpu = |i: usize| rows[i].median.cpu_us_per_request.unwrap_or(f64::NAN);
    let (rest, pass, connect) = (cpu(1), cpu(2), cpu(3));
    let verdict = if pass <= 0.5 * rest { "PASS" } else { "MISS" };
    md += &format!(
        "\n## Against REST (medians of this run)\n\n\
         - gRPC pass-through: {pass:.1} µs/req, {:.2}× REST's {rest:.1} µs/req \
         (target ≤ 0.5×: **{verdict}**)\n\
         - Connect unary JSON: {connect:.1} µs/req, {:.2}× REST\n",
        pass / rest,
        connect / rest,
    );
    md
}
