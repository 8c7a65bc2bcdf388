//! The rig: the options every subcommand shares, the binaries, the two upstreams (the fast
//! tonic one and the real Python service, each started once per run, pinned to the load CPU)
//! and gateway launches (a fresh process per measurement, pinned to the gateway CPU).
//!
//! Everything starts on port 0 and is found through its readiness line; nothing waits by
//! sleeping. A gateway launch also measures what only a fresh process can show: the time
//! from spawn to the first `200` on `GET /users?ids=1,2`, and the idle RSS right after it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Serialize;

use crate::measure;
use crate::procs::{self, Server, Spec};

/// Options shared by every subcommand (each also reads a `BENCH_*` variable).
#[derive(Args, Clone, Debug, Serialize)]
pub struct Opts {
    /// Seconds of each measured run.
    #[arg(long, env = "BENCH_DURATION", default_value_t = 10, global = true)]
    pub duration: u64,
    /// Seconds of unmeasured load before each measured run.
    #[arg(long, env = "BENCH_WARMUP", default_value_t = 1, global = true)]
    pub warmup: u64,
    /// Runs of each scenario; the table shows the median.
    #[arg(long, env = "BENCH_REPEATS", default_value_t = 3, global = true)]
    pub repeats: usize,
    /// Connections (HTTP) or concurrent callers on one connection (gRPC).
    #[arg(long, env = "BENCH_CONNECTIONS", default_value_t = 32, global = true)]
    pub connections: usize,
    /// Requests per second of the fixed-rate latency check.
    #[arg(long, env = "BENCH_RATE", default_value_t = 2000.0, global = true)]
    pub rate: f64,
    /// The CPU the gateway is pinned to.
    #[arg(long, default_value_t = 0, global = true)]
    pub gateway_cpu: usize,
    /// The CPU the upstreams, the load generators and the runner are pinned to.
    #[arg(long, default_value_t = 1, global = true)]
    pub load_cpu: usize,
    /// The repository root.
    #[arg(long, env = "BENCH_ROOT", default_value = ".", global = true)]
    pub root: PathBuf,
    /// The gateway binary; default ROOT/target/release/protogate (to compare two builds).
    #[arg(long, env = "BENCH_GATEWAY", global = true)]
    pub gateway: Option<PathBuf>,
    /// The gateway's config file; default ROOT/config/protogate.toml.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Run every gateway with `[server] max_concurrent_requests` set to this (a copy of the
    /// config under the results folder); the shipped 256 sheds load at 1024 connections.
    #[arg(long, env = "BENCH_MAX_CONCURRENT", global = true)]
    pub max_concurrent: Option<usize>,
    /// Where results go; default ROOT/bench/results.
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
}

/// Which upstream a scenario calls.
#[derive(Clone, Copy, Debug)]
pub enum Upstream {
    /// The fast tonic server of `bench/`.
    Fast,
    /// The real Python service.
    Python,
}

/// How the gateway logs during a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Logging {
    /// `RUST_LOG=warn,protogate::server=info`: startup lines only, no access log.
    Quiet,
    /// No `RUST_LOG`: the default `info`, one access-log line per request.
    Default,
}

/// The programs the runner starts.
#[derive(Debug, Serialize)]
pub struct Bins {
    pub gateway: PathBuf,
    pub upstream: PathBuf,
    pub grpc_load: PathBuf,
    pub http_load: PathBuf,
    pub python: PathBuf,
}

pub struct Rig {
    pub opts: Opts,
    pub bins: Bins,
    pub config: PathBuf,
    /// The config as the report names it (with the override, if any).
    pub config_note: String,
    pub logs: PathBuf,
    pub out: PathBuf,
    /// The wrk script that prints the summary as JSON.
    pub lua: PathBuf,
    pub clock_ticks: u64,
    pub fast: Server,
    pub python: Option<Server>,
    /// Where the load generators go when not on `--load-cpu`: `peers` puts them on the
    /// gateway CPU for its Python rows, so the Python service has a CPU of its own whether
    /// the client is grpc_load or wrk + a gateway. The runner is single-threaded, hence a
    /// `Cell`.
    pub client_cpu_override: std::cell::Cell<Option<usize>>,
}

/// The request of the main table.
pub const USERS_PATH: &str = "/users?ids=1,2";

/// Generous bounds: a wait that hits one means something is broken, not slow.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_OK_TIMEOUT: Duration = Duration::from_secs(10);

/// A gateway process that has answered its first request.
pub struct Gateway {
    pub server: Server,
    /// From spawn to the first 200 on `GET /users?ids=1,2`.
    pub first_ok: Duration,
    /// VmRSS right after that first answer.
    pub idle_rss_kib: u64,
}

impl Gateway {
    pub fn pid(&self) -> u32 {
        self.server.proc.pid
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }
}

impl Rig {
    /// Checks the tools, then starts the fast upstream and (if asked) the Python service.
    pub fn start(opts: Opts, with_python: bool) -> anyhow::Result<Rig> {
        let root = opts.root.canonicalize().context("cannot resolve --root")?;
        let here = std::env::current_exe().context("cannot find the runner's own path")?;
        let dir = here.parent().context("the runner has no directory")?;
        let bins = Bins {
            gateway: opts
                .gateway
                .clone()
                .unwrap_or_else(|| root.join("target/release/protogate")),
            upstream: dir.join("upstream"),
            grpc_load: dir.join("grpc_load"),
            http_load: dir.join("http_load"),
            python: root.join("services/users/.venv/bin/python"),
        };
        preflight(&bins, with_python)?;
        let out = opts.out.clone().unwrap_or_else(|| root.join("bench/results"));
        let logs = out.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
        let (config, config_note) = gateway_config(&opts, &root, &out)?;
        let lua = out.join("wrk-report.lua");
        std::fs::write(&lua, crate::loads::WRK_LUA).context("cannot write the wrk script")?;
        let clock_ticks = clock_ticks(&logs)?;
        let cpu = opts.load_cpu;
        let spec = Spec::new("upstream", &bins.upstream, &[]).pinned(cpu);
        let fast = procs::start_server(&spec, &logs, START_TIMEOUT, |line| {
            line.strip_prefix("upstream listening on ").map(str::to_owned)
        })?;
        let python = if with_python {
            let args = [
                "-m",
                "users_service",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--log-level",
                "WARNING",
            ];
            let spec = Spec::new("users_service", &bins.python, &args).pinned(cpu);
            Some(procs::start_server(&spec, &logs, START_TIMEOUT, |line| {
                line.strip_prefix("users_service listening on ")
                    .map(str::to_owned)
            })?)
        } else {
            None
        };
        let opts = Opts { root, ..opts };
        Ok(Rig {
            opts,
            bins,
            config,
            config_note,
            logs,
            out,
            lua,
            clock_ticks,
            fast,
            python,
            client_cpu_override: std::cell::Cell::new(None),
        })
    }

    /// The CPU the load generators are pinned to: `--load-cpu` unless overridden.
    pub fn client_cpu(&self) -> usize {
        self.client_cpu_override.get().unwrap_or(self.opts.load_cpu)
    }

    pub fn python(&self) -> anyhow::Result<&Server> {
        self.python.as_ref().context("the Python service was not started")
    }

    /// The running server for `upstream`.
    pub fn upstream(&self, upstream: Upstream) -> anyhow::Result<&Server> {
        match upstream {
            Upstream::Fast => Ok(&self.fast),
            Upstream::Python => self.python(),
        }
    }

    /// Starts a fresh gateway in front of `upstream` and waits for its first 200.
    pub fn gateway(&self, upstream: &Server, logging: Logging) -> anyhow::Result<Gateway> {
        self.gateway_from(&self.bins.gateway, upstream, logging)
    }

    /// `gateway`, from the binary `bin` (`compare` runs two builds side by side).
    pub fn gateway_from(&self, bin: &Path, upstream: &Server, logging: Logging) -> anyhow::Result<Gateway> {
        let upstream_url = format!("http://{}", upstream.addr);
        let config = self.config.to_string_lossy();
        let args = [
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream_url,
        ];
        let rust_log = match logging {
            Logging::Quiet => Some("warn,protogate::server=info"),
            Logging::Default => None,
        };
        let spec = Spec::new("gateway", bin, &args)
            .pinned(self.opts.gateway_cpu)
            .env("PROTOGATE_LOG_FORMAT", Some("json"))
            .env("RUST_LOG", rust_log);
        self.launch(&spec, listening_addr, USERS_PATH)
    }

    /// Starts any gateway (protogate, or a peer such as grpc-gateway) from `spec`, waits for
    /// the readiness line that `ready` accepts, then for the first 200 on `first_path`, and
    /// reads the idle RSS right after it.
    pub fn launch(
        &self,
        spec: &Spec,
        ready: impl Fn(&str) -> Option<String>,
        first_path: &str,
    ) -> anyhow::Result<Gateway> {
        let server = procs::start_server(spec, &self.logs, START_TIMEOUT, ready)?;
        let first_ok = measure::first_ok(&server.addr, first_path, server.spawned, FIRST_OK_TIMEOUT)?;
        let idle_rss_kib = measure::status_kib(server.proc.pid, "VmRSS")?;
        Ok(Gateway {
            server,
            first_ok,
            idle_rss_kib,
        })
    }

    /// CPU seconds between two `cpu_ticks` readings.
    pub fn cpu_seconds(&self, before: u64, after: u64) -> f64 {
        after.saturating_sub(before) as f64 / self.clock_ticks as f64
    }
}

/// The gateway's config file and how the report names it: `--config` (default the shipped
/// config/protogate.toml), or a copy of it with the `--max-concurrent` override.
fn gateway_config(opts: &Opts, root: &Path, out: &Path) -> anyhow::Result<(PathBuf, String)> {
    let config = opts
        .config
        .clone()
        .unwrap_or_else(|| root.join("config/protogate.toml"));
    let Some(limit) = opts.max_concurrent else {
        let note = config.display().to_string();
        return Ok((config, note));
    };
    let text =
        std::fs::read_to_string(&config).with_context(|| format!("cannot read {}", config.display()))?;
    let derived = out.join("protogate-bench.toml");
    std::fs::write(&derived, with_concurrency_limit(&text, limit))
        .with_context(|| format!("cannot write {}", derived.display()))?;
    Ok((
        derived,
        format!("{} with max_concurrent_requests = {limit}", config.display()),
    ))
}

/// The config text with `[server] max_concurrent_requests = limit`: the key's line is
/// replaced, or added at the top of `[server]`, or a `[server]` table is appended.
fn with_concurrency_limit(text: &str, limit: usize) -> String {
    let setting = format!("max_concurrent_requests = {limit}");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let is_key = |l: &str| l.trim_start().starts_with("max_concurrent_requests");
    if let Some(line) = lines.iter_mut().find(|l| is_key(l)) {
        *line = setting;
    } else if let Some(at) = lines.iter().position(|l| l.trim() == "[server]") {
        lines.insert(at + 1, setting);
    } else {
        lines.extend(["[server]".to_owned(), setting]);
    }
    lines.join("\n") + "\n"
}

/// The gateway's `listening` log line (JSON) → its `addr` field.
pub fn listening_addr(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("message")?.as_str()? != "listening" {
        return None;
    }
    Some(value.get("addr")?.as_str()?.to_owned())
}

fn preflight(bins: &Bins, with_python: bool) -> anyhow::Result<()> {
    let hint = |what: &Path, how: &str| format!("{} is missing: {how}", what.display());
    if !bins.gateway.is_file() {
        bail!(hint(
            &bins.gateway,
            "run cargo build --release --locked at the root (scripts/bench does)"
        ));
    }
    for bin in [&bins.upstream, &bins.grpc_load, &bins.http_load] {
        if !bin.is_file() {
            bail!(hint(bin, "build the bench crate in release (scripts/bench does)"));
        }
    }
    if with_python && !bins.python.is_file() {
        bail!(hint(
            &bins.python,
            "run scripts/setup-python (scripts/setup-bench does)"
        ));
    }
    for tool in ["wrk", "taskset", "setpriv", "getconf"] {
        if !on_path(tool) {
            bail!("{tool} is not on PATH: run scripts/setup-bench");
        }
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

fn clock_ticks(logs: &Path) -> anyhow::Result<u64> {
    let out = procs::run(
        &Spec::new("getconf", "getconf", &["CLK_TCK"]),
        logs,
        START_TIMEOUT,
    )?;
    out.trim().parse().context("getconf CLK_TCK printed no number")
}

/// The soft limit on open files of this process (children inherit it).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{listening_addr, with_concurrency_limit};

    #[test]
    fn the_concurrency_limit_is_replaced_or_added() {
        let shipped = "listen = \"x\"\n[server]\nmax_body_bytes = 1\nmax_concurrent_requests = 256\n";
        let raised = with_concurrency_limit(shipped, 2048);
        assert!(raised.contains("max_concurrent_requests = 2048\n") && !raised.contains("256"));
        let without = with_concurrency_limit("[server]\nmax_body_bytes = 1\n", 9);
        assert_eq!(
            without,
            "[server]\nmax_concurrent_requests = 9\nmax_body_bytes = 1\n"
        );
        assert_eq!(
            with_concurrency_limit("", 9),
            "[server]\nmax_concurrent_requests = 9\n"
        );
    }

    #[test]
    fn the_listening_line_gives_the_address() {
        let line =
            r#"{"timestamp":"t","level":"INFO","message":"listening","addr":"127.0.0.1:4321","routes":4}"#;
        assert_eq!(listening_addr(line).as_deref(), Some("127.0.0.1:4321"));
        assert_eq!(listening_addr(r#"{"message":"request","addr":"x"}"#), None);
        assert_eq!(listening_addr("not json"), None);
    }
}
