//! The `protogate` binary: CLI and env parsing, logging setup, config loading, binding the
//! listener, and signal handling. Everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use protogate::gateway::served;
use protogate::{Config, Overrides, StartupError};

/// A gRPC → HTTP/JSON gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Path of the TOML config file; without one, built-in defaults apply.
    #[arg(long, env = "PROTOGATE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on, overriding the config file (e.g. 0.0.0.0:8080).
    #[arg(long, env = "PROTOGATE_LISTEN", global = true)]
    listen: Option<String>,
    /// Upstream gRPC URL, overriding the config file (e.g. http://users:50051).
    #[arg(long, env = "PROTOGATE_UPSTREAM", global = true)]
    upstream: Option<String>,
    /// Where the schema comes from, overriding the config file: compiled (the protos built
    /// in; the default), reflection (the upstream's gRPC server reflection),
    /// descriptors:PATH (a FileDescriptorSet) or protos:DIR (.proto files).
    #[arg(long, env = "PROTOGATE_SCHEMA", global = true)]
    schema: Option<String>,
    /// Log format: json (default when stdout is not a terminal) or text.
    #[arg(long, env = "PROTOGATE_LOG_FORMAT", global = true)]
    log_format: Option<String>,
    /// Threads that serve requests; default: one per CPU this process may use (its affinity
    /// and cgroup CPU limit). With one, the runtime is single-threaded.
    #[arg(long, env = "PROTOGATE_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the config and the routes, print the route table, and exit. With
    /// `--schema reflection` it asks the upstream (`--upstream`) for its schema.
    CheckConfig,
    /// Probe a URL and exit 0 on HTTP 200 (for container healthchecks, where no curl exists).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    protogate::config::parse_duration(text).ok_or_else(|| format!("{text:?} is not a duration such as 2s"))
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    // Held to the end of main: dropping it flushes the log lines still queued.
    // check-config prints its answer on stdout and its failure on stderr: log lines
    // (connect attempts, "no schema yet") would only repeat them, so it logs errors only.
    let quiet = matches!(cli.command, Some(Command::CheckConfig));
    let _log = protogate::logging::init(cli.log_format.as_deref(), if quiet { "error" } else { "info" });
    let runtime = match runtime(cli.worker_threads) {
        Ok(rt) => rt,
        Err(err) => return fail(&StartupError::Runtime(err)),
    };
    if let Some(Command::Healthcheck { url, timeout }) = &cli.command {
        return runtime.block_on(protogate::ops::healthcheck::probe(url, *timeout));
    }
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    if let Some(Command::CheckConfig) = cli.command {
        // Building the gateway creates the (lazy) channel, which needs a runtime context.
        let _runtime = runtime.enter();
        let gateway = match protogate::gateway::Gateway::new(config) {
            Ok(gateway) => gateway,
            Err(err) => return fail(&err),
        };
        if let Err(err) = runtime.block_on(gateway.first_schema()) {
            return fail(&err);
        }
        let Some(schema) = gateway.schema() else {
            let why = protogate::StartupError::Schema(format!(
                "no schema: {}; start it, or point --upstream at it",
                gateway.schema_waiting()
            ));
            return fail(&why);
        };
        println!(
            "# schema {}: {} methods, {} routes",
            gateway.config().schema.source,
            schema.methods().iter().count(),
            schema.routes().routes().len()
        );
        let not_served = served::not_served(&schema);
        if !not_served.is_empty() {
            println!("# not served (no codec in this build): {}", not_served.join(", "));
        }
        for route in served::routes_in_reading_order(&schema) {
            // A streaming method says its shape, so the reader knows which forms it takes.
            let shape = match route.method.kind {
                protogate::method::MethodKind::Unary => String::new(),
                kind => format!(" [{}]", kind.as_str()),
            };
            println!(
                "{} {} -> {}{shape} ({})",
                route.http_method,
                route.template.as_str(),
                route.method.full_name,
                route.origin
            );
        }
        return ExitCode::SUCCESS;
    }
    #[cfg(feature = "otlp")]
    let telemetry = match protogate::telemetry::init(runtime.handle()) {
        Ok(telemetry) => telemetry,
        Err(err) => return fail(&StartupError::Telemetry(err)),
    };
    let code = runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(source) => {
                return fail(&StartupError::Listen {
                    addr: Some(config.listen),
                    source,
                });
            }
        };
        match protogate::serve(listener, config, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err),
        }
    });
    // After the drain every span has ended; export what is still queued. The flush blocks,
    // and the exporter needs the runtime running meanwhile (a single-threaded one runs only
    // inside block_on), so it waits on a blocking thread.
    #[cfg(feature = "otlp")]
    runtime.block_on(async move {
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    });
    code
}

/// glibc's allocator, told to give large blocks back. By default glibc raises its mmap
/// threshold to the size of each large block freed (up to 32 MiB), and the trim threshold
/// to twice that: after one large request, blocks of that size come from the heap of the
/// thread that asked and stay there when freed, one heap per worker thread. A burst of
/// large bodies (a 1 MiB JSON array decoded by the dynamic codec takes tens of MiB for a
/// moment) then leaves each worker's heap holding its own share, and the peak RSS is their
/// sum: 135-153 MiB in `tests/memory.rs`'s runtime-schema case, against 85-98 MiB with the
/// thresholds fixed here. Blocks of 256 KiB or more are mapped and unmapped on their own,
/// and free memory over 1 MiB at a heap's top goes back. Small requests never allocate
/// that much at once; their path is unchanged. An operator's own thresholds
/// (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, or either in `GLIBC_TUNABLES`) win:
/// then nothing is set here.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
        let tunables = tunables.to_string_lossy();
        let operator = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
            .iter()
            .any(|name| std::env::var_os(name).is_some())
            || ["glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold"]
                .iter()
                .any(|name| tunables.contains(name));
        if operator {
            return;
        }
        const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
        const TRIM_THRESHOLD: libc::c_int = 1024 * 1024;
        // SAFETY: mallopt only changes the allocator's parameters, under its own lock; it is
        // called first thing in main, before any other thread exists. A value it refuses
        // leaves glibc's default, which is correct, only hungrier.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

/// The async runtime: single-threaded when the gateway has one CPU (a sidecar's usual
/// share), which spares the work-stealing scheduler's cross-thread wake-ups and a thread's
/// memory; multi-threaded, one worker per CPU, otherwise.
fn runtime(threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        usize::from,
    );
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().build()
}

fn load_config(cli: &Cli) -> Result<Config, StartupError> {
    let overrides = Overrides {
        listen: cli.listen.clone(),
        upstream: cli.upstream.clone(),
        schema: cli.schema.clone(),
    };
    match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| StartupError::ReadConfig {
                path: path.clone(),
                source,
            })?;
            Config::from_toml(&text, &overrides).map_err(|source| StartupError::Config {
                path: Some(path.clone()),
                source,
            })
        }
        None => Config::defaults(&overrides).map_err(|source| StartupError::Config { path: None, source }),
    }
}

/// One line on stderr, exit code 2: what an operator sees when startup fails. Only there:
/// the same words as a log line on stdout would show the one problem twice in a terminal or
/// a container's log.
fn fail(err: &StartupError) -> ExitCode {
    eprintln!("protogate: {err}");
    ExitCode::from(2)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
