//! Turning samples into what is printed and kept: the per-scenario median (`Row`), the
//! machine and the versions under test, number formatting for the markdown tables, and the
//! files under `bench/results/` (`NAME-TIMESTAMP.{md,json}` plus `NAME-latest.{md,json}`).
//!
//! The median is taken per column over the repeats (so one row's p99 and req/s may come
//! from different runs); errors are summed, never medianed, so a single failure shows.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::Serialize;

use crate::loads::{Cost, Sample};
use crate::procs::{self, Spec};
use crate::rig::Rig;

/// One scenario: its repeats and their medians.
#[derive(Debug, Serialize)]
pub struct Row {
    pub scenario: String,
    pub median: Median,
    pub samples: Vec<Sample>,
}

/// Per-column medians over the repeats; gateway columns are `None` on direct rows.
#[derive(Debug, Serialize)]
pub struct Median {
    /// Successful requests per second: a gateway that fails fast must not look fast.
    pub rps: f64,
    pub rps_min: f64,
    pub rps_max: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Summed over the repeats (with fixed-rate `dropped`).
    pub errors: u64,
    /// Of the errors, those that were answers (non-2xx, gRPC error statuses).
    pub rejected: u64,
    pub cpu_us_per_request: Option<f64>,
    pub idle_rss_kib: Option<f64>,
    pub peak_rss_kib: Option<f64>,
    pub first_ok_ms: Option<f64>,
    pub reply_bytes: Option<f64>,
}

impl Row {
    pub fn new(scenario: impl Into<String>, samples: Vec<Sample>) -> Row {
        let load = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        let cost = |f: fn(&Cost) -> f64| {
            let values: Option<Vec<f64>> = samples.iter().map(|s| s.gateway.as_ref().map(f)).collect();
            values.filter(|v| !v.is_empty()).map(median)
        };
        let rps: Vec<f64> = samples.iter().map(ok_rps).collect();
        let median = Median {
            rps: load(ok_rps),
            rps_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
            rps_max: rps.iter().copied().fold(0.0, f64::max),
            p50_us: load(|s| s.load.p50_us),
            p99_us: load(|s| s.load.p99_us),
            p999_us: load(|s| s.load.p999_us),
            errors: samples.iter().map(|s| s.load.errors + s.load.dropped).sum(),
            rejected: samples.iter().map(|s| s.load.rejected).sum(),
            cpu_us_per_request: cost(|c| c.cpu_us_per_request),
            idle_rss_kib: cost(|c| c.idle_rss_kib as f64),
            peak_rss_kib: cost(|c| c.peak_rss_kib as f64),
            first_ok_ms: cost(|c| c.first_ok_ms),
            reply_bytes: cost(|c| c.reply_bytes as f64),
        };
        Row {
            scenario: scenario.into(),
            median,
            samples,
        }
    }
}

/// Successful requests per second of one run.
fn ok_rps(sample: &Sample) -> f64 {
    let load = &sample.load;
    if load.seconds > 0.0 {
        load.requests.saturating_sub(load.errors) as f64 / load.seconds
    } else {
        0.0
    }
}

/// The errors cell: the count, and how many were answers such as a 503 from load shedding.
/// Runs every scenario `repeats` times, interleaved (run 1 of each, then run 2, …) so that
/// slow drift on a busy machine spreads over all of them, and makes one row per scenario.
pub fn interleaved<S: Copy>(
    repeats: usize,
    scenarios: &[(&str, S)],
    mut one: impl FnMut(S) -> anyhow::Result<Sample>,
) -> anyhow::Result<Vec<Row>> {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); scenarios.len()];
    for repeat in 1..=repeats {
        for (i, (name, scenario)) in scenarios.iter().enumerate() {
            eprintln!("bench: run {repeat}/{repeats}: {name}");
            samples[i].push(one(*scenario)?);
        }
    }
    Ok(scenarios
        .iter()
        .zip(samples)
        .map(|((name, _), samples)| Row::new(*name, samples))
        .collect())
}

/// The head of a fixed-rate table.
pub const FIXED_RATE_HEAD: &str = "| scenario | ok req/s | p50 ms | p99 ms | p99.9 ms | errors | gateway CPU µs/req | peak RSS MiB |\n\
     |---|---:|---:|---:|---:|---:|---:|---:|\n";

/// One row of a fixed-rate table.
pub fn fixed_rate_row(row: &Row) -> String {
    let m = &row.median;
    format!(
        "| {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
        row.scenario,
        m.rps,
        ms(m.p50_us),
        ms(m.p99_us),
        ms(m.p999_us),
        errors(m),
        opt(m.cpu_us_per_request, |v| format!("{v:.1}")),
        opt(m.peak_rss_kib, mib),
    )
}

pub fn errors(m: &Median) -> String {
    if m.rejected > 0 {
        format!("{} ({} non-2xx)", m.errors, m.rejected)
    } else {
        m.errors.to_string()
    }
}

/// The median (mean of the middle two for an even count); NaN for no values.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Microseconds as milliseconds, two decimals.
pub fn ms(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

/// KiB as MiB, one decimal.
pub fn mib(kib: f64) -> String {
    format!("{:.1}", kib / 1024.0)
}

/// An optional value through `f`, or a dash.
pub fn opt(value: Option<f64>, f: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "—".to_owned(), f)
}

/// The machine the numbers come from.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub memory: String,
    /// /proc/loadavg when the run started: a busy machine shows here.
    pub load_average: String,
}

pub fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
    let meminfo = read("/proc/meminfo");
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map_or_else(|| "unknown".to_owned(), |m| m.trim().to_owned());
    Machine {
        cpu_model,
        cpus: cpuinfo.lines().filter(|l| l.starts_with("processor")).count(),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        memory,
        load_average: read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// What was measured, and with what.
#[derive(Debug, Serialize)]
pub struct Versions {
    pub protogate: String,
    pub protogate_git: String,
    pub rustc: String,
    pub python: String,
    pub grpcio: String,
    pub wrk: String,
}

pub fn versions(rig: &Rig) -> Versions {
    let root = rig.opts.root.as_path();
    let ask = |name: &str, program: &Path, args: &[&str]| {
        let spec = Spec::new(name, program, args).cwd(root);
        match procs::run(&spec, &rig.logs, Duration::from_secs(20)) {
            Ok(out) => out.lines().next().unwrap_or("").trim().to_owned(),
            Err(err) => format!("unknown ({})", err.to_string().lines().next().unwrap_or("")),
        }
    };
    let rev = ask("git", Path::new("git"), &["rev-parse", "--short=12", "HEAD"]);
    let paths = [
        "status",
        "--porcelain",
        "--",
        "src",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "proto",
    ];
    let spec = Spec::new("git", "git", &paths).cwd(root);
    let dirty = procs::run(&spec, &rig.logs, Duration::from_secs(20)).map(|o| !o.trim().is_empty());
    let protogate_git = match dirty {
        Ok(true) => format!("{rev}, work tree with uncommitted changes"),
        _ => rev,
    };
    let python = &rig.bins.python;
    Versions {
        protogate: ask("protogate", &rig.bins.gateway, &["--version"]),
        protogate_git,
        rustc: ask("rustc", Path::new("rustc"), &["-V"]),
        python: ask(
            "python",
            python,
            &["-c", "import sys; print(sys.version.split()[0])"],
        ),
        grpcio: ask("grpcio", python, &["-c", "import grpc; print(grpc.__version__)"]),
        // `wrk -v` prints its version and then the usage, and exits 1.
        wrk: wrk_version(rig),
    }
}

fn wrk_version(rig: &Rig) -> String {
    let spec = Spec::new("wrk-version", "wrk", &["-v"]);
    let out = procs::Running::start(&spec, &rig.logs).and_then(|r| r.finish_any(Duration::from_secs(10)));
    match out {
        Ok((_, text)) => text
            .lines()
            .find(|l| l.starts_with("wrk"))
            .unwrap_or("wrk (unknown)")
            .trim()
            .to_owned(),
        Err(err) => format!("wrk (unknown: {err})"),
    }
}

/// The header of every report: when, where, with what, how.
pub fn header(
    title: &str,
    started: &str,
    machine: &Machine,
    versions: &Versions,
    rig: &Rig,
    runs: &str,
) -> String {
    let o = &rig.opts;
    format!(
        "# {title}\n\n\
         - when: {started} UTC\n\
         - machine: {} ({} CPUs), Linux {}, {} RAM; load average at start: {}\n\
         - versions: {} (git {}; binary {}), {}, Python {} with grpcio {}, {}\n\
         - gateway config: {}\n\
         - method: gateway pinned to CPU {}, upstreams + load generators + runner on CPU {}; {runs}\n",
        machine.cpu_model,
        machine.cpus,
        machine.kernel,
        machine.memory,
        machine.load_average,
        versions.protogate,
        versions.protogate_git,
        rig.bins.gateway.display(),
        versions.rustc,
        versions.python,
        versions.grpcio,
        versions.wrk,
        rig.config_note,
        o.gateway_cpu,
        o.load_cpu,
    )
}

/// The usual `runs` text of `header`: warmup, duration, repeats.
pub fn repeated_runs(rig: &Rig) -> String {
    let o = &rig.opts;
    format!(
        "{} s warmup + {} s measured per run, {} runs per scenario (interleaved), median shown",
        o.warmup, o.duration, o.repeats
    )
}

/// Writes `NAME-STAMP.md/.json` and `NAME-latest.md/.json` under `out`; returns the .md path.
pub fn write(
    out: &Path,
    name: &str,
    stamp: &str,
    markdown: &str,
    json: &impl Serialize,
) -> anyhow::Result<PathBuf> {
    let text = serde_json::to_string_pretty(json).context("cannot encode the results")?;
    let mut first = None;
    for tag in [stamp, "latest"] {
        let md = out.join(format!("{name}-{tag}.md"));
        std::fs::write(&md, markdown).with_context(|| format!("cannot write {}", md.display()))?;
        let js = out.join(format!("{name}-{tag}.json"));
        std::fs::write(&js, &text).with_context(|| format!("cannot write {}", js.display()))?;
        first.get_or_insert(md);
    }
    first.context("nothing written")
}

/// Now as `YYYY-MM-DDTHH:MM:SS` (UTC), without a date crate.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
