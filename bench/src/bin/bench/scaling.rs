//! The scaling checks of issue 6 (deliverable 4), each its own subcommand:
//! - `sizes`: cost against the reply size (1, 10, 100, 1000 users per reply, asked for by
//!   repeating an id: `?ids=1,1,…`, so the request grows with the reply, 2 bytes per id);
//! - `connections`: cost against the number of connections (1, 32, 256, 1024);
//! - `soak`: protogate at 1024 connections for `--soak-seconds`, errors and RSS over time.
//!
//! Every point is direct gRPC and protogate to the fast upstream, repeated and medianed like
//! the main table; the soak is one long run.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::loads::{HttpLoad, Sample};
use crate::measure;
use crate::report::{Row, mib, ms, opt};
use crate::rig::{self, Logging, Rig};

/// A scaling point: its parameter, the direct row and the protogate row.
#[derive(Debug, Serialize)]
pub struct Point {
    pub value: usize,
    pub direct: Row,
    pub gateway: Row,
}

/// `sizes`: replies of `users` users each.
pub fn sizes(rig: &Rig, users: &[usize]) -> anyhow::Result<Vec<Point>> {
    points(rig, users, |rig, n| {
        let ids = vec!["1"; n.max(1)].join(",");
        let path = format!("/users?ids={ids}");
        let direct = rig.direct(&rig.fast, rig.opts.connections, &ids)?;
        let gateway = rig.through(
            &rig.fast,
            Logging::Quiet,
            &path,
            rig.opts.connections,
            HttpLoad::Closed,
        )?;
        Ok((direct, gateway))
    })
}

/// `connections`: `counts` connections (HTTP) or concurrent callers (gRPC).
pub fn connections(rig: &Rig, counts: &[usize]) -> anyhow::Result<Vec<Point>> {
    check_open_files(counts.iter().copied().max().unwrap_or(0))?;
    points(rig, counts, |rig, c| {
        let direct = rig.direct(&rig.fast, c, "1,2")?;
        let gateway = rig.through(&rig.fast, Logging::Quiet, rig::USERS_PATH, c, HttpLoad::Closed)?;
        Ok((direct, gateway))
    })
}

/// Runs every value `repeats` times, interleaved, and medians each.
fn points(
    rig: &Rig,
    values: &[usize],
    one: impl Fn(&Rig, usize) -> anyhow::Result<(Sample, Sample)>,
) -> anyhow::Result<Vec<Point>> {
    let mut runs: Vec<(Vec<Sample>, Vec<Sample>)> = vec![(Vec::new(), Vec::new()); values.len()];
    for repeat in 1..=rig.opts.repeats {
        for (i, &value) in values.iter().enumerate() {
            eprintln!("bench: run {repeat}/{}: {value}", rig.opts.repeats);
            let (direct, gateway) = one(rig, value)?;
            runs[i].0.push(direct);
            runs[i].1.push(gateway);
        }
    }
    Ok(values
        .iter()
        .zip(runs)
        .map(|(&value, (direct, gateway))| Point {
            value,
            direct: Row::new(format!("direct gRPC, {value}"), direct),
            gateway: Row::new(format!("protogate, {value}"), gateway),
        })
        .collect())
}

/// The table of a scaling check; `what` names the parameter column.
pub fn markdown(title: &str, what: &str, points: &[Point]) -> String {
    let mut md = format!(
        "\n## {title}\n\n\
         | {what} | reply bytes | direct ok req/s | direct p99 ms | protogate ok req/s | protogate/direct | p50 ms | p99 ms | errors (direct + protogate) | gateway CPU µs/req | peak RSS MiB |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for p in points {
        let (d, g) = (&p.direct.median, &p.gateway.median);
        md += &format!(
            "| {} | {} | {:.0} | {} | {:.0} | {:.1}% | {} | {} | {} + {} | {} | {} |\n",
            p.value,
            opt(g.reply_bytes, |v| format!("{v:.0}")),
            d.rps,
            ms(d.p99_us),
            g.rps,
            100.0 * g.rps / d.rps,
            ms(g.p50_us),
            ms(g.p99_us),
            crate::report::errors(d),
            crate::report::errors(g),
            opt(g.cpu_us_per_request, |v| format!("{v:.1}")),
            opt(g.peak_rss_kib, mib),
        );
    }
    md
}

/// The soak: one long protogate run with RSS sampled as it goes.
#[derive(Debug, Serialize)]
pub struct Soak {
    pub connections: usize,
    pub seconds: u64,
    pub load: protogate_bench::load::Summary,
    pub cpu_us_per_request: f64,
    pub idle_rss_kib: u64,
    pub peak_rss_kib: u64,
    /// (seconds since the load started, VmRSS KiB)
    pub rss_samples: Vec<(f64, u64)>,
    /// No error, and no RSS growth over 10% in the second half (see `stable`).
    pub stable: bool,
}

pub fn soak(rig: &Rig, connections: usize, seconds: u64, every: u64) -> anyhow::Result<Soak> {
    check_open_files(connections)?;
    let gateway = rig.gateway(&rig.fast, Logging::Quiet)?;
    let url = gateway.url(rig::USERS_PATH);
    eprintln!("bench: soak, {connections} connections for {seconds} s");
    let before = measure::cpu_ticks(gateway.pid())?;
    let wrk = rig.start_wrk(&url, connections, seconds)?;
    let started = Instant::now();
    let every = Duration::from_secs(every.max(1));
    let mut next = started + every;
    let mut rss_samples = Vec::new();
    while !wrk.finished() {
        if Instant::now() >= next {
            let rss =
                measure::status_kib(gateway.pid(), "VmRSS").context("the gateway died during the soak")?;
            rss_samples.push((started.elapsed().as_secs_f64(), rss));
            next += every;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let load = rig.finish_wrk(wrk, connections, seconds)?;
    let after = measure::cpu_ticks(gateway.pid())?;
    let peak_rss_kib = measure::status_kib(gateway.pid(), "VmHWM")?;
    let cpu_us_per_request = rig.cpu_seconds(before, after) * 1e6 / load.requests.max(1) as f64;
    let stable = load.errors == 0 && stable(&rss_samples);
    Ok(Soak {
        connections,
        seconds,
        load,
        cpu_us_per_request,
        idle_rss_kib: gateway.idle_rss_kib,
        peak_rss_kib,
        rss_samples,
        stable,
    })
}

/// RSS is bounded when no sample of the second half exceeds the first half's maximum by
/// more than 10% (a leak grows steadily; a warm pool plateaus early).
fn stable(samples: &[(f64, u64)]) -> bool {
    let half = samples.len() / 2;
    let first = samples[..half].iter().map(|s| s.1).max().unwrap_or(0);
    let second = samples[half..].iter().map(|s| s.1).max().unwrap_or(0);
    half == 0 || second as f64 <= first as f64 * 1.10
}

pub fn soak_markdown(s: &Soak) -> String {
    let mut md = format!(
        "\n## Soak: protogate → fast upstream, {} connections, {} s\n\n\
         - requests: {} ({:.0} req/s, {:.0} ok req/s), errors: {} ({} of them non-2xx answers); \
         p50 {} ms, p99 {} ms, max {} ms (wrk's latencies include the error answers)\n\
         - gateway CPU: {:.1} µs/req; RSS idle {} MiB, peak (VmHWM) {} MiB\n\
         - verdict: **{}** (the rule: no error, and no RSS sample of the second half over 110% of \
         the first half's maximum)\n\n\
         | t s | RSS MiB |\n|---:|---:|\n",
        s.connections,
        s.seconds,
        s.load.requests,
        s.load.rps,
        s.load.requests.saturating_sub(s.load.errors) as f64 / s.load.seconds.max(1e-9),
        s.load.errors,
        s.load.rejected,
        ms(s.load.p50_us),
        ms(s.load.p99_us),
        ms(s.load.max_us),
        s.cpu_us_per_request,
        mib(s.idle_rss_kib as f64),
        mib(s.peak_rss_kib as f64),
        if s.stable { "STABLE" } else { "UNSTABLE" },
    );
    // At most ~30 lines: every k-th sample, and always the last.
    let k = s.rss_samples.len().div_ceil(30).max(1);
    for (i, (t, rss)) in s.rss_samples.iter().enumerate() {
        if i % k == 0 || i + 1 == s.rss_samples.len() {
            md += &format!("| {t:.0} | {} |\n", mib(*rss as f64));
        }
    }
    md
}

/// Each process (wrk, the gateway) holds one socket per connection, plus some.
fn check_open_files(connections: usize) -> anyhow::Result<()> {
    let need = connections as u64 + 256;
    match rig::open_files_limit() {
        Some(limit) if limit < need => anyhow::bail!(
            "the open-files limit is {limit}, {connections} connections need about {need}: \
             raise it with `ulimit -n {need}` (scripts/bench raises it)"
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::stable;

    #[test]
    fn rss_that_plateaus_is_stable_and_rss_that_climbs_is_not() {
        let flat = [(1.0, 9000), (2.0, 9500), (3.0, 9400), (4.0, 9600)];
        assert!(stable(&flat));
        let leak = [(1.0, 9000), (2.0, 10_000), (3.0, 12_000), (4.0, 14_000)];
        assert!(!stable(&leak));
        assert!(stable(&[]));
    }
}
