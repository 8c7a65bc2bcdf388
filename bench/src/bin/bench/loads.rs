//! The loads and one measured sample of each kind: direct gRPC (`grpc_load`), closed-loop
//! HTTP (`wrk -t1`, which prints its summary as JSON through `WRK_LUA`) and fixed-rate HTTP
//! (`http_load`). Every load generator runs pinned to the load CPU, and every result is a
//! `load::Summary`, whichever tool produced it.
//!
//! A gateway sample (`Rig::through`) is: a fresh gateway (spawn → first 200, idle RSS), one
//! probe of the scenario's path (status and reply size), an unmeasured warmup load, then the
//! measured load between two CPU readings, then the RSS high-water mark.

use std::time::Duration;

use anyhow::Context as _;
use protogate_bench::load::Summary;
use serde::{Deserialize, Serialize};

use crate::measure;
use crate::procs::{self, Running, Server, Spec};
use crate::rig::{Gateway, Logging, Rig, USERS_PATH};

/// wrk's `done` hook: the summary as one JSON line (latencies in µs, duration in µs).
pub const WRK_LUA: &str = r#"-- written by bench/src/bin/bench/loads.rs; prints wrk's summary as JSON
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"mean_us":%.1f,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,' ..
    '"p999_us":%.1f,"max_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"#;

/// What `WRK_LUA` prints.
#[derive(Debug, Deserialize)]
struct WrkJson {
    requests: u64,
    duration_us: u64,
    connect: u64,
    read: u64,
    write: u64,
    status: u64,
    timeout: u64,
    mean_us: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
}

/// Which HTTP load a gateway sample runs.
#[derive(Clone, Copy, Debug)]
pub enum HttpLoad {
    /// wrk, closed-loop.
    Closed,
    /// http_load at this many requests per second.
    Rate(f64),
}

/// One measured run. `gateway` is absent for direct gRPC runs.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub load: Summary,
    pub gateway: Option<Cost>,
}

/// What the gateway cost during one run.
#[derive(Clone, Debug, Serialize)]
pub struct Cost {
    pub cpu_seconds: f64,
    pub cpu_us_per_request: f64,
    pub idle_rss_kib: u64,
    pub peak_rss_kib: u64,
    pub first_ok_ms: f64,
    /// Body size of one answer to the scenario's path.
    pub reply_bytes: usize,
}

/// The wait bound of a load run: its own length plus a generous margin.
fn bound(seconds: u64) -> Duration {
    Duration::from_secs(seconds + 60)
}

impl Rig {
    /// `wrk -t1 -cN -dSs` on `url`, started (the soak samples memory while it runs).
    pub fn start_wrk(&self, url: &str, connections: usize, seconds: u64) -> anyhow::Result<Running> {
        self.start_wrk_with(&self.lua, url, connections, seconds)
    }

    /// `start_wrk` with the wrk script `lua` (one that also shapes the request, such as
    /// `protocols.rs`'s Connect POST; it must print the summary as `WRK_LUA` does).
    pub fn start_wrk_with(
        &self,
        lua: &std::path::Path,
        url: &str,
        connections: usize,
        seconds: u64,
    ) -> anyhow::Result<Running> {
        let c = format!("-c{connections}");
        let d = format!("-d{seconds}s");
        let lua = lua.to_string_lossy();
        let args = ["-t1", &c, &d, "--latency", "--timeout", "10s", "-s", &lua, url];
        let spec = Spec::new("wrk", "wrk", &args).pinned(self.client_cpu());
        Running::start(&spec, &self.logs)
    }

    /// Reads a finished wrk run.
    pub fn finish_wrk(&self, run: Running, connections: usize, seconds: u64) -> anyhow::Result<Summary> {
        parse_wrk(&run.finish(bound(seconds))?, connections)
    }

    /// A closed-loop wrk run, to completion.
    pub fn wrk(&self, url: &str, connections: usize, seconds: u64) -> anyhow::Result<Summary> {
        let run = self.start_wrk(url, connections, seconds)?;
        self.finish_wrk(run, connections, seconds)
    }

    /// `grpc_load` against an upstream: closed-loop, or at `rate`; warmup included.
    pub fn grpc(
        &self,
        upstream: &Server,
        callers: usize,
        ids: &str,
        rate: Option<f64>,
    ) -> anyhow::Result<Summary> {
        let (seconds, warmup) = (self.opts.duration, self.opts.warmup);
        self.grpc_for(upstream, callers, ids, rate, seconds, warmup)
    }

    /// `grpc` for `seconds` after `warmup` seconds of its own (the gRPC pass-through rows
    /// run the warmup as a run of its own, outside the CPU readings).
    pub fn grpc_for(
        &self,
        upstream: &Server,
        callers: usize,
        ids: &str,
        rate: Option<f64>,
        seconds: u64,
        warmup: u64,
    ) -> anyhow::Result<Summary> {
        let addr = format!("http://{}", upstream.addr);
        let (c, d, w) = (callers.to_string(), seconds.to_string(), warmup.to_string());
        let mut args = vec!["--addr", &addr, "-c", &c, "-d", &d, "-w", &w, "--ids", ids];
        let rate_text = rate.map(|r| r.to_string());
        if let Some(rate) = &rate_text {
            args.extend(["--rate", rate]);
        }
        let spec = Spec::new("grpc_load", &self.bins.grpc_load, &args).pinned(self.client_cpu());
        let out = procs::run(&spec, &self.logs, bound(seconds + warmup))?;
        summary_line(&out)
    }

    /// `http_load --rate` on `url` for `seconds`, without its own warmup.
    fn http_rate(&self, url: &str, connections: usize, rate: f64, seconds: u64) -> anyhow::Result<Summary> {
        let (c, d, r) = (connections.to_string(), seconds.to_string(), rate.to_string());
        let args = [url, "-c", &c, "-d", &d, "-w", "0", "--rate", &r];
        let spec = Spec::new("http_load", &self.bins.http_load, &args).pinned(self.client_cpu());
        summary_line(&procs::run(&spec, &self.logs, bound(seconds))?)
    }

    fn http(&self, url: &str, connections: usize, load: HttpLoad, seconds: u64) -> anyhow::Result<Summary> {
        match load {
            HttpLoad::Closed => self.wrk(url, connections, seconds),
            HttpLoad::Rate(rate) => self.http_rate(url, connections, rate, seconds),
        }
    }

    /// One direct gRPC sample: the ceiling.
    pub fn direct(&self, upstream: &Server, callers: usize, ids: &str) -> anyhow::Result<Sample> {
        Ok(Sample {
            load: self.grpc(upstream, callers, ids, None)?,
            gateway: None,
        })
    }

    /// One gateway sample (see the module comment).
    pub fn through(
        &self,
        upstream: &Server,
        logging: Logging,
        path: &str,
        connections: usize,
        load: HttpLoad,
    ) -> anyhow::Result<Sample> {
        self.through_from(&self.bins.gateway, upstream, logging, path, connections, load)
    }

    /// Direct gRPC to the fast upstream at `--rate` (the fixed-rate check's reference).
    pub fn direct_at_rate(&self) -> anyhow::Result<Sample> {
        let load = self.grpc(&self.fast, self.opts.connections, "1,2", Some(self.opts.rate))?;
        Ok(Sample { load, gateway: None })
    }

    /// The gateway `bin` in front of the fast upstream at `--rate`, quiet log.
    pub fn through_at_rate(&self, bin: &std::path::Path) -> anyhow::Result<Sample> {
        let rate = HttpLoad::Rate(self.opts.rate);
        self.through_from(
            bin,
            &self.fast,
            Logging::Quiet,
            USERS_PATH,
            self.opts.connections,
            rate,
        )
    }

    /// `through`, with the gateway binary `bin`.
    pub fn through_from(
        &self,
        bin: &std::path::Path,
        upstream: &Server,
        logging: Logging,
        path: &str,
        connections: usize,
        load: HttpLoad,
    ) -> anyhow::Result<Sample> {
        let gateway = self.gateway_from(bin, upstream, logging)?;
        self.through_gateway(&gateway, path, connections, load)
    }

    /// The measured part of a gateway sample, on a gateway that has just started (its
    /// first 200 and idle RSS are already taken): probe, warmup, the measured load.
    pub fn through_gateway(
        &self,
        gateway: &Gateway,
        path: &str,
        connections: usize,
        load: HttpLoad,
    ) -> anyhow::Result<Sample> {
        let probe = measure::http_get(&gateway.server.addr, path, Duration::from_secs(5))?;
        anyhow::ensure!(
            probe.status == 200,
            "GET {path} through the gateway answered {}",
            probe.status
        );
        let url = gateway.url(path);
        self.measured(gateway, probe.body_bytes, |seconds| {
            self.http(&url, connections, load, seconds)
        })
    }

    /// A load `run` for `--warmup` seconds (unmeasured, when not 0), then for `--duration`
    /// seconds between two readings of the gateway's CPU; `reply_bytes` is what one answer
    /// of the load measured.
    pub fn measured(
        &self,
        gateway: &Gateway,
        reply_bytes: usize,
        run: impl Fn(u64) -> anyhow::Result<Summary>,
    ) -> anyhow::Result<Sample> {
        if self.opts.warmup > 0 {
            run(self.opts.warmup)?;
        }
        let before = measure::cpu_ticks(gateway.pid())?;
        let summary = run(self.opts.duration)?;
        let after = measure::cpu_ticks(gateway.pid())?;
        let peak_rss_kib = measure::status_kib(gateway.pid(), "VmHWM")?;
        let cpu_seconds = self.cpu_seconds(before, after);
        let cost = Cost {
            cpu_seconds,
            cpu_us_per_request: cpu_seconds * 1e6 / summary.requests.max(1) as f64,
            idle_rss_kib: gateway.idle_rss_kib,
            peak_rss_kib,
            first_ok_ms: gateway.first_ok.as_secs_f64() * 1e3,
            reply_bytes,
        };
        Ok(Sample {
            load: summary,
            gateway: Some(cost),
        })
    }
}

/// The JSON line a bench load generator printed.
fn summary_line(out: &str) -> anyhow::Result<Summary> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no JSON summary line")?;
    serde_json::from_str(line).context("cannot parse the summary line")
}

fn parse_wrk(out: &str, connections: usize) -> anyhow::Result<Summary> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("wrk printed no JSON summary:\n{out}"))?;
    let w: WrkJson = serde_json::from_str(line).context("cannot parse wrk's summary")?;
    let seconds = w.duration_us as f64 / 1e6;
    Ok(Summary {
        mode: "closed".to_owned(),
        concurrency: connections,
        target_rate: None,
        seconds,
        requests: w.requests,
        errors: w.connect + w.read + w.write + w.status + w.timeout,
        rejected: w.status,
        dropped: 0,
        rps: if seconds > 0.0 {
            w.requests as f64 / seconds
        } else {
            0.0
        },
        mean_us: w.mean_us,
        p50_us: w.p50_us,
        p90_us: w.p90_us,
        p99_us: w.p99_us,
        p999_us: w.p999_us,
        max_us: w.max_us,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_wrk;

    #[test]
    fn wrk_summary_sums_every_kind_of_error() {
        let out = "Running 3s test\n  1 threads\n{\"requests\":3000,\"duration_us\":3000000,\
            \"connect\":1,\"read\":2,\"write\":0,\"status\":3,\"timeout\":4,\"mean_us\":900.5,\
            \"p50_us\":800.0,\"p90_us\":1000.0,\"p99_us\":2000.0,\"p999_us\":3000.0,\"max_us\":4000.0}\n";
        let s = parse_wrk(out, 32).unwrap();
        assert_eq!(
            (s.requests, s.errors, s.rejected, s.concurrency),
            (3000, 10, 3, 32)
        );
        assert!((s.rps - 1000.0).abs() < 1e-9 && (s.p99_us - 2000.0).abs() < 1e-9);
    }
}
