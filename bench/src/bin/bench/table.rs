//! `bench run`: the main table of issue 6 and its targets. Five closed-loop scenarios (direct
//! gRPC and protogate, each in front of the fast upstream and of the Python service, plus
//! protogate with its default `info` access log), then the fixed-rate latency check (direct
//! gRPC and protogate at `--rate`, both to the fast upstream). The repeats are interleaved
//! (run 1 of every scenario, then run 2, …) so slow drift on a busy machine spreads evenly.

use serde::Serialize;

use crate::loads::{HttpLoad, Sample};
use crate::report::{FIXED_RATE_HEAD, Row, errors, fixed_rate_row, interleaved, mib, ms, opt};
use crate::rig::{Logging, Rig, USERS_PATH, Upstream};

#[derive(Clone, Copy, Debug)]
enum Scenario {
    Direct(Upstream),
    Gateway(Upstream, Logging),
    DirectAtRate,
    GatewayAtRate,
}

/// The rows in print order; the first five are the main table, the last two the fixed rate.
const SCENARIOS: [(&str, Scenario); 7] = [
    ("direct gRPC → fast upstream", Scenario::Direct(Upstream::Fast)),
    (
        "protogate → fast upstream",
        Scenario::Gateway(Upstream::Fast, Logging::Quiet),
    ),
    (
        "protogate → fast upstream, default info log",
        Scenario::Gateway(Upstream::Fast, Logging::Default),
    ),
    ("direct gRPC → Python", Scenario::Direct(Upstream::Python)),
    (
        "protogate → Python",
        Scenario::Gateway(Upstream::Python, Logging::Quiet),
    ),
    ("direct gRPC → fast upstream, fixed rate", Scenario::DirectAtRate),
    ("protogate → fast upstream, fixed rate", Scenario::GatewayAtRate),
];

/// One target of issue 6 with its verdict.
#[derive(Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub value: f64,
    pub limit: f64,
    pub unit: &'static str,
    /// True for "at least" targets (throughput ratio), false for "at most".
    pub at_least: bool,
    pub pass: bool,
}

impl Target {
    pub fn new(
        name: impl Into<String>,
        value: f64,
        limit: f64,
        unit: &'static str,
        at_least: bool,
    ) -> Target {
        let pass = if at_least { value >= limit } else { value <= limit };
        Target {
            name: name.into(),
            value,
            limit,
            unit,
            at_least,
            pass,
        }
    }

    pub fn line(&self) -> String {
        let verdict = if self.pass { "PASS" } else { "MISS" };
        let sign = if self.at_least { "≥" } else { "≤" };
        let margin = (self.value - self.limit).abs();
        let how = if self.pass { "margin" } else { "missed by" };
        format!(
            "- **{verdict}** {}: {:.2} {u} (target {sign} {} {u}; {how} {margin:.2} {u})",
            self.name,
            self.value,
            self.limit,
            u = self.unit
        )
    }
}

#[derive(Debug, Serialize)]
pub struct MainReport {
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
}

/// Runs every scenario `repeats` times.
pub fn run(rig: &Rig) -> anyhow::Result<MainReport> {
    let rows = interleaved(rig.opts.repeats, &SCENARIOS, |scenario| one(rig, scenario))?;
    let targets = targets(&rows, rig);
    Ok(MainReport { rows, targets })
}

fn one(rig: &Rig, scenario: Scenario) -> anyhow::Result<Sample> {
    let c = rig.opts.connections;
    match scenario {
        Scenario::Direct(u) => rig.direct(rig.upstream(u)?, c, "1,2"),
        Scenario::Gateway(u, logging) => {
            rig.through(rig.upstream(u)?, logging, USERS_PATH, c, HttpLoad::Closed)
        }
        Scenario::DirectAtRate => rig.direct_at_rate(),
        Scenario::GatewayAtRate => rig.through_at_rate(&rig.bins.gateway),
    }
}

fn targets(rows: &[Row], rig: &Rig) -> Vec<Target> {
    let m = |i: usize| &rows[i].median;
    let gateway_rows = [1, 2, 4];
    let worst = |f: fn(&crate::report::Median) -> Option<f64>| {
        gateway_rows
            .iter()
            .filter_map(|&i| f(m(i)))
            .fold(f64::NAN, f64::max)
    };
    vec![
        Target::new(
            "protogate/direct throughput, Python service",
            100.0 * m(4).rps / m(3).rps,
            97.0,
            "%",
            true,
        ),
        Target::new(
            "gateway CPU per request, fast upstream",
            m(1).cpu_us_per_request.unwrap_or(f64::NAN),
            30.0,
            "µs",
            false,
        ),
        Target::new(
            if rig.opts.rate == 2000.0 {
                "added p99 at 2000 req/s"
            } else {
                "added p99 at --rate"
            },
            (m(6).p99_us - m(5).p99_us) / 1000.0,
            0.5,
            "ms",
            false,
        ),
        Target::new(
            "idle RSS (worst row)",
            worst(|x| x.idle_rss_kib) / 1024.0,
            8.0,
            "MiB",
            false,
        ),
        Target::new(
            "peak RSS under load (worst row)",
            worst(|x| x.peak_rss_kib) / 1024.0,
            20.0,
            "MiB",
            false,
        ),
        Target::new(
            "spawn to first 200",
            m(1).first_ok_ms.unwrap_or(f64::NAN),
            20.0,
            "ms",
            false,
        ),
    ]
}

/// The markdown body: the table, the fixed-rate check, the ratios, the targets.
pub fn markdown(report: &MainReport, rig: &Rig) -> String {
    let rows = &report.rows;
    let mut md = format!(
        "\n## Closed loop, {} connections (`GET {USERS_PATH}` / `MyService.User([1,2])`)\n\n\
         | scenario | ok req/s | ok req/s range | p50 ms | p99 ms | errors | gateway CPU µs/req | CPU s / 10k req | idle RSS MiB | peak RSS MiB | first 200 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        rig.opts.connections
    );
    for row in &rows[..5] {
        let m = &row.median;
        md += &format!(
            "| {} | {:.0} | {:.0}–{:.0} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.scenario,
            m.rps,
            m.rps_min,
            m.rps_max,
            ms(m.p50_us),
            ms(m.p99_us),
            errors(m),
            opt(m.cpu_us_per_request, |v| format!("{v:.1}")),
            opt(m.cpu_us_per_request, |v| format!("{:.3}", v / 100.0)),
            opt(m.idle_rss_kib, mib),
            opt(m.peak_rss_kib, mib),
            opt(m.first_ok_ms, |v| format!("{v:.1}")),
        );
    }
    md += &format!(
        "\n## Fixed rate, {:.0} req/s over {} connections (latency from the scheduled send time)\n\n{FIXED_RATE_HEAD}",
        rig.opts.rate, rig.opts.connections
    );
    for row in &rows[5..] {
        md += &fixed_rate_row(row);
    }
    let (direct, gateway) = (&rows[5].median, &rows[6].median);
    md += &format!(
        "\nadded by protogate at this rate: p50 {} ms, p99 {} ms\n\n## Ratios\n\n\
         - protogate/direct throughput, fast upstream: {:.1}% (the gateway's own ceiling on one core)\n\
         - protogate/direct throughput, Python service: {:.1}%\n\
         - default info access log vs quiet: {} µs/req of gateway CPU, {:.1}% of the quiet throughput\n\
         \n## Targets (issue 6)\n\n",
        ms(gateway.p50_us - direct.p50_us),
        ms(gateway.p99_us - direct.p99_us),
        100.0 * rows[1].median.rps / rows[0].median.rps,
        100.0 * rows[4].median.rps / rows[3].median.rps,
        opt(
            rows[2]
                .median
                .cpu_us_per_request
                .zip(rows[1].median.cpu_us_per_request)
                .map(|(a, b)| a - b),
            |v| format!("{v:+.1}")
        ),
        100.0 * rows[2].median.rps / rows[1].median.rps,
    );
    for target in &report.targets {
        md += &target.line();
        md.push('\n');
    }
    md
}
