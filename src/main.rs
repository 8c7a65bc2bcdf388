//! The `protogate` binary: CLI and env parsing, logging setup, config loading, binding the
//! listener, and signal handling. Everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use protogate::{Config, Overrides, StartupError};

/// A gRPC → HTTP/JSON gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Path of the TOML config file; without one, built-in defaults apply.
    #[arg(long, env = "PROTOGATE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on, overriding the config file (e.g. 0.0.0.0:8080).
    #[arg(long, env = "PROTOGATE_LISTEN")]
    listen: Option<String>,
    /// Upstream gRPC URL, overriding the config file (e.g. http://users:50051).
    #[arg(long, env = "PROTOGATE_UPSTREAM")]
    upstream: Option<String>,
    /// Where the schema comes from, overriding the config file: compiled (the protos built
    /// in), descriptors:PATH (a FileDescriptorSet) or protos:DIR (.proto files).
    #[arg(long, env = "PROTOGATE_SCHEMA", global = true)]
    schema: Option<String>,
    /// Log format: json (default when stdout is not a terminal) or text.
    #[arg(long, env = "PROTOGATE_LOG_FORMAT")]
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
    /// Validate the config and the routes, print the route table, and exit.
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
    let cli = Cli::parse();
    // Held to the end of main: dropping it flushes the log lines still queued.
    let _log = protogate::logging::init(cli.log_format.as_deref());
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
                "schema {}: no schema: the upstream did not answer",
                gateway.config().schema.source
            ));
            return fail(&why);
        };
        println!(
            "# schema {}: {} methods, {} routes",
            gateway.config().schema.source,
            schema.methods().iter().count(),
            schema.routes().routes().len()
        );
        for route in schema.routes().routes() {
            println!(
                "{} {} -> {} ({})",
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

/// One line on stderr, exit code 2: what an operator sees when startup fails.
fn fail(err: &StartupError) -> ExitCode {
    let message = err.to_string();
    tracing::error!(error = message, "protogate cannot start");
    eprintln!("protogate: {message}");
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
