//! `bench compare --baseline PATH`: two gateway builds side by side in one run, for the
//! before/after numbers of an optimisation. On a shared VM the speed of the machine drifts
//! by tens of percent within minutes, so two separate `bench run`s do not compare; here
//! every repeat runs direct gRPC, the baseline and the current build back to back
//! (interleaved, as in the main table), in front of the fast upstream and of the Python
//! service and at the fixed rate, and the report gives current/baseline ratios of medians
//! from the same run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::loads::{HttpLoad, Sample};
use crate::report::{FIXED_RATE_HEAD, Row, errors, fixed_rate_row, interleaved, mib, ms, opt};
use crate::rig::{Logging, Rig, Upstream};

#[derive(Clone, Copy, Debug)]
enum Build {
    Baseline,
    Current,
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    Direct(Upstream),
    Gateway(Build, Upstream),
    DirectAtRate,
    GatewayAtRate(Build),
}

/// The rows in print order: six closed-loop rows, then three at the fixed rate.
const SCENARIOS: [(&str, Scenario); 9] = [
    ("direct gRPC → fast upstream", Scenario::Direct(Upstream::Fast)),
    (
        "baseline → fast upstream",
        Scenario::Gateway(Build::Baseline, Upstream::Fast),
    ),
    (
        "current → fast upstream",
        Scenario::Gateway(Build::Current, Upstream::Fast),
    ),
    ("direct gRPC → Python", Scenario::Direct(Upstream::Python)),
    (
        "baseline → Python",
        Scenario::Gateway(Build::Baseline, Upstream::Python),
    ),
    (
        "current → Python",
        Scenario::Gateway(Build::Current, Upstream::Python),
    ),
    ("direct gRPC → fast upstream, fixed rate", Scenario::DirectAtRate),
    (
        "baseline → fast upstream, fixed rate",
        Scenario::GatewayAtRate(Build::Baseline),
    ),
    (
        "current → fast upstream, fixed rate",
        Scenario::GatewayAtRate(Build::Current),
    ),
];

/// The request of the closed-loop gateway rows, per build (`--path`, `--current-path`).
#[derive(Debug, Clone, Serialize)]
pub struct Paths {
    pub baseline: String,
    pub current: String,
}

#[derive(Debug, Serialize)]
pub struct CompareReport {
    pub baseline: PathBuf,
    pub current: PathBuf,
    pub paths: Paths,
    pub rows: Vec<Row>,
}

/// Runs every scenario `repeats` times, interleaved.
pub fn run(rig: &Rig, baseline: &Path, paths: &Paths) -> anyhow::Result<CompareReport> {
    anyhow::ensure!(
        baseline.is_file(),
        "--baseline {} is not a file",
        baseline.display()
    );
    let rows = interleaved(rig.opts.repeats, &SCENARIOS, |scenario| {
        one(rig, baseline, paths, scenario)
    })?;
    Ok(CompareReport {
        baseline: baseline.to_path_buf(),
        current: rig.bins.gateway.clone(),
        paths: paths.clone(),
        rows,
    })
}

fn one(rig: &Rig, baseline: &Path, paths: &Paths, scenario: Scenario) -> anyhow::Result<Sample> {
    let c = rig.opts.connections;
    let bin = |build| match build {
        Build::Baseline => baseline,
        Build::Current => rig.bins.gateway.as_path(),
    };
    let path = |build| match build {
        Build::Baseline => paths.baseline.as_str(),
        Build::Current => paths.current.as_str(),
    };
    match scenario {
        Scenario::Direct(u) => rig.direct(rig.upstream(u)?, c, "1,2"),
        Scenario::Gateway(build, u) => rig.through_from(
            bin(build),
            rig.upstream(u)?,
            Logging::Quiet,
            path(build),
            c,
            HttpLoad::Closed,
        ),
        Scenario::DirectAtRate => rig.direct_at_rate(),
        Scenario::GatewayAtRate(build) => rig.through_at_rate(bin(build)),
    }
}

/// The markdown body: the table, then current against baseline.
pub fn markdown(report: &CompareReport, rig: &Rig) -> String {
    let rows = &report.rows;
    let mut md = format!(
        "\nbaseline: `{}`  \ncurrent: `{}`\n\n\
         ## Closed loop, {} connections (baseline `GET {}`, current `GET {}`, quiet log)\n\n\
         | scenario | ok req/s | ok req/s range | p50 ms | p99 ms | errors | gateway CPU µs/req | CPU µs/req range | idle RSS MiB | peak RSS MiB | first 200 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        report.baseline.display(),
        report.current.display(),
        rig.opts.connections,
        report.paths.baseline,
        report.paths.current
    );
    for row in &rows[..6] {
        let m = &row.median;
        let cpu: Vec<f64> = row
            .samples
            .iter()
            .filter_map(|s| s.gateway.as_ref().map(|g| g.cpu_us_per_request))
            .collect();
        let range = if cpu.is_empty() {
            "—".to_string()
        } else {
            let (lo, hi) = cpu
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            format!("{lo:.1}–{hi:.1}")
        };
        md += &format!(
            "| {} | {:.0} | {:.0}–{:.0} | {} | {} | {} | {} | {range} | {} | {} | {} |\n",
            row.scenario,
            m.rps,
            m.rps_min,
            m.rps_max,
            ms(m.p50_us),
            ms(m.p99_us),
            errors(m),
            opt(m.cpu_us_per_request, |v| format!("{v:.1}")),
            opt(m.idle_rss_kib, mib),
            opt(m.peak_rss_kib, mib),
            opt(m.first_ok_ms, |v| format!("{v:.1}")),
        );
    }
    md += &format!(
        "\n## Fixed rate, {:.0} req/s over {} connections (latency from the scheduled send time)\n\n{FIXED_RATE_HEAD}",
        rig.opts.rate, rig.opts.connections
    );
    for row in &rows[6..] {
        md += &fixed_rate_row(row);
    }
    let m = |i: usize| &rows[i].median;
    let cpu = |i: usize| m(i).cpu_us_per_request.unwrap_or(f64::NAN);
    md += &format!(
        "\n## Current against baseline (medians of this run)\n\n\
         - gateway CPU per request, fast upstream: {:.1} → {:.1} µs ({:+.1}%)\n\
         - gateway CPU per request, Python service: {:.1} → {:.1} µs ({:+.1}%)\n\
         - throughput through the gateway, fast upstream: {:.1}% → {:.1}% of direct gRPC\n\
         - throughput through the gateway, Python service: {:.1}% → {:.1}% of direct gRPC\n\
         - added p99 at the fixed rate: {} → {} ms over direct gRPC\n",
        cpu(1),
        cpu(2),
        100.0 * (cpu(2) / cpu(1) - 1.0),
        cpu(4),
        cpu(5),
        100.0 * (cpu(5) / cpu(4) - 1.0),
        100.0 * m(1).rps / m(0).rps,
        100.0 * m(2).rps / m(0).rps,
        100.0 * m(4).rps / m(3).rps,
        100.0 * m(5).rps / m(3).rps,
        ms(m(7).p99_us - m(6).p99_us),
        ms(m(8).p99_us - m(6).p99_us),
    );
    md
}
