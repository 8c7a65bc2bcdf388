//! `bench`: the benchmark runner of issue 6 (run it through `scripts/bench`). It starts the
//! fast upstream, the Python service, fresh gateways and the load generators, measures, and
//! prints and saves the tables (bench/README.md explains every column).
//!
//! Subcommands: `run` (the default: the main table, the fixed-rate check and the targets),
//! `sizes`, `connections` and `soak` (the scaling checks), `compare` (two builds side by
//! side), `hostile` (memory under the worst inputs, `hostile.rs`), `streams` (CPU per
//! message of server and bidirectional streams, `streams.rs`), `files` (raw-body download
//! and upload throughput beside direct gRPC, and peak RSS, `files.rs`) and `protocols` (the seed
//! call's gateway CPU per protocol: REST, gRPC pass-through, Connect, `protocols.rs`). It
//! owns the command line, its own
//! CPU pinning and the signal handler; the modules own the rest:
//! `rig` (options, upstreams, gateways), `loads` (load generators, one sample),
//! `measure` (/proc, HTTP probes), `procs` (children), `table` (the main table),
//! `scaling` (the checks), `compare` (two builds), `report` (medians, machine, versions,
//! files).

mod compare;
mod files;
mod hostile;
mod loads;
mod measure;
mod peers;
mod procs;
mod protocols;
mod report;
mod rig;
mod scaling;
mod streams;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::procs::Spec;
use crate::rig::{Opts, Rig};

/// protogate's benchmark runner: direct gRPC against protogate, side by side.
#[derive(Debug, Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Clone, Debug, Subcommand)]
enum Command {
    /// The main table, the fixed-rate check and the targets (the default).
    Run,
    /// Cost against the reply size.
    Sizes {
        /// Users per reply.
        #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
        users: Vec<usize>,
    },
    /// Cost against the number of connections.
    Connections {
        /// Connection counts.
        #[arg(long, value_delimiter = ',', default_value = "1,32,256,1024")]
        counts: Vec<usize>,
    },
    /// Two gateway builds side by side in one run: `--baseline` against `--gateway` (or the
    /// release build), each in front of the fast upstream and the Python service.
    Compare {
        /// The build to compare against, e.g. a copy of target/release/protogate made
        /// before the change.
        #[arg(long, env = "BENCH_BASELINE")]
        baseline: std::path::PathBuf,
        /// The request of the closed-loop gateway rows (default `/users?ids=1,2`).
        #[arg(long)]
        path: Option<String>,
        /// The current build's request, when it differs from the baseline's (the same
        /// build with and without `?fields=`, for instance).
        #[arg(long)]
        current_path: Option<String>,
    },
    /// protogate against grpc-gateway v1.6.4 in one run: the seed call and large replies in
    /// front of the grpc-go (or fast) upstream, and the seed call in front of Python.
    Peers {
        /// A second protogate build to measure beside the current one.
        #[arg(long, env = "BENCH_BASELINE")]
        baseline: Option<std::path::PathBuf>,
        /// The upstream of the seed call and the large replies.
        #[arg(long, value_enum, default_value = "go")]
        upstream: peers::PeerUpstream,
        /// Users per reply of the large-reply call.
        #[arg(long, default_value_t = 100)]
        users: usize,
        /// The Python rows: the service alone on the load CPU (own) or beside its client.
        #[arg(long, value_enum, default_value = "own")]
        python_placement: peers::PythonPlacement,
        /// The grpc-gateway binary; default ROOT/bench/target/peers/bin/grpc-gateway.
        #[arg(long)]
        grpc_gateway: Option<std::path::PathBuf>,
        /// The grpc-go MyService server; default ROOT/bench/target/go/bin/users-server.
        #[arg(long)]
        go_server: Option<std::path::PathBuf>,
    },
    /// Peak RSS under the worst inputs: max-size bodies of small integers, deep nesting and
    /// long strings, and 8 KiB GETs that make large replies.
    Hostile {
        /// Concurrent clients (the shipped max_concurrent_requests).
        #[arg(long, default_value_t = 256)]
        clients: usize,
        /// The request kinds each client takes turns at: ints, nested, string, big-reply.
        #[arg(long, value_delimiter = ',', default_value = "ints,nested,string,big-reply")]
        kinds: Vec<String>,
    },
    /// Gateway CPU per message of a server stream and of a bidirectional stream.
    Streams {
        /// Keep-alive connections calling at once.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Messages per call (reply messages; the bidirectional call sends as many).
        #[arg(long, default_value_t = 1000)]
        messages: usize,
    },
    /// google.api.HttpBody download and upload throughput through the gateway beside direct
    /// gRPC, and the gateway's peak RSS, in front of the fast upstream's file service.
    Files {
        /// MiB to move each way per transfer.
        #[arg(long, env = "BENCH_FILES_MIB", default_value_t = 1024)]
        mib: u64,
    },
    /// The seed call's gateway CPU per protocol in one run: REST, gRPC pass-through and
    /// Connect unary JSON, beside direct gRPC, in front of the fast upstream.
    Protocols,
    /// One long run at many connections: errors and RSS over time.
    Soak {
        #[arg(long, env = "BENCH_SOAK_SECONDS", default_value_t = 300)]
        soak_seconds: u64,
        #[arg(long, default_value_t = 1024)]
        soak_connections: usize,
        /// Seconds between RSS samples.
        #[arg(long, default_value_t = 5)]
        sample_every: u64,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Sizes { .. } => "sizes",
            Command::Connections { .. } => "connections",
            Command::Soak { .. } => "soak",
            Command::Compare { .. } => "compare",
            Command::Hostile { .. } => "hostile",
            Command::Peers { .. } => "peers",
            Command::Streams { .. } => "streams",
            Command::Protocols => "protocols",
            Command::Files { .. } => "files",
        }
    }
}

/// What the JSON file holds.
#[derive(Serialize)]
struct Saved<'a, T: Serialize> {
    command: &'static str,
    started: &'a str,
    machine: &'a report::Machine,
    versions: &'a report::Versions,
    opts: &'a Opts,
    results: T,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match bench(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Run);
    // Pin ourselves (and so every later thread) to the load CPU before any thread exists.
    pin_self(cli.opts.load_cpu)?;
    ctrlc::set_handler(|| {
        eprintln!("bench: interrupted; stopping every child");
        procs::kill_all_and_exit(130);
    })?;
    anyhow::ensure!(cli.opts.repeats > 0, "--repeats must be at least 1");
    let started = report::utc_now();
    let machine = report::machine();
    let with_python = matches!(
        command,
        Command::Run | Command::Compare { .. } | Command::Peers { .. }
    );
    let rig = Rig::start(cli.opts, with_python)?;
    let versions = report::versions(&rig);
    let (title, body, json) = match &command {
        Command::Run => {
            let r = table::run(&rig)?;
            (
                "protogate bench",
                table::markdown(&r, &rig),
                serde_json::to_value(&r)?,
            )
        }
        Command::Sizes { users } => {
            let p = scaling::sizes(&rig, users)?;
            let md = scaling::markdown("Reply size (users per reply)", "users/reply", &p);
            ("protogate bench: reply size", md, serde_json::to_value(&p)?)
        }
        Command::Connections { counts } => {
            let p = scaling::connections(&rig, counts)?;
            let md = scaling::markdown("Connections", "connections", &p);
            ("protogate bench: connections", md, serde_json::to_value(&p)?)
        }
        Command::Compare {
            baseline,
            path,
            current_path,
        } => {
            let baseline_path = path.clone().unwrap_or_else(|| rig::USERS_PATH.to_string());
            let paths = compare::Paths {
                current: current_path.clone().unwrap_or_else(|| baseline_path.clone()),
                baseline: baseline_path,
            };
            let r = compare::run(&rig, baseline, &paths)?;
            (
                "protogate bench: two builds",
                compare::markdown(&r, &rig),
                serde_json::to_value(&r)?,
            )
        }
        Command::Peers {
            baseline,
            upstream,
            users,
            grpc_gateway,
            go_server,
            python_placement,
        } => {
            let bins = peers::PeerBins::new(
                &rig.opts.root,
                grpc_gateway.clone(),
                go_server.clone(),
                baseline.clone(),
            );
            let r = peers::run(&rig, bins, *upstream, *users, *python_placement)?;
            (
                "protogate bench: against grpc-gateway",
                peers::markdown(&r, &rig),
                serde_json::to_value(&r)?,
            )
        }
        Command::Protocols => {
            let r = protocols::run(&rig)?;
            (
                "protogate bench: protocols",
                protocols::markdown(&r, &rig),
                serde_json::to_value(&r)?,
            )
        }
        Command::Hostile { clients, kinds } => {
            let h = hostile::run(&rig, *clients, kinds)?;
            (
                "protogate bench: hostile inputs",
                hostile::markdown(&h),
                serde_json::to_value(&h)?,
            )
        }
        Command::Streams { clients, messages } => {
            let r = streams::run(&rig, *clients, *messages)?;
            (
                "protogate bench: streams",
                streams::markdown(&r),
                serde_json::to_value(&r)?,
            )
        }
        Command::Files { mib } => {
            let r = files::run(&rig, *mib)?;
            (
                "protogate bench: files",
                files::markdown(&r),
                serde_json::to_value(&r)?,
            )
        }
        Command::Soak {
            soak_seconds,
            soak_connections,
            sample_every,
        } => {
            let s = scaling::soak(&rig, *soak_connections, *soak_seconds, *sample_every)?;
            (
                "protogate bench: soak",
                scaling::soak_markdown(&s),
                serde_json::to_value(&s)?,
            )
        }
    };
    let runs = match &command {
        Command::Soak { soak_seconds, .. } => format!("one run of {soak_seconds} s, no warmup"),
        Command::Hostile { .. } => format!("one run of {} s, no warmup", rig.opts.duration),
        Command::Files { .. } => format!(
            "{} rounds, each one transfer per row and direction (interleaved), no warmup; \
             median shown, peak RSS the largest",
            rig.opts.repeats
        ),
        _ => report::repeated_runs(&rig),
    };
    let md = report::header(title, &started, &machine, &versions, &rig, &runs) + &body;
    let saved = Saved {
        command: command.name(),
        started: &started,
        machine: &machine,
        versions: &versions,
        opts: &rig.opts,
        results: json,
    };
    let stamp = started.replace(':', "");
    let path = report::write(&rig.out, command.name(), &stamp, &md, &saved)?;
    println!("{md}");
    eprintln!(
        "bench: saved {} (and .json, and {}-latest.*)",
        path.display(),
        command.name()
    );
    Ok(())
}

/// `taskset -p -c CPU <our pid>`: the runner's probes and log drains stay off the gateway's CPU.
fn pin_self(cpu: usize) -> anyhow::Result<()> {
    let pid = std::process::id().to_string();
    let cpu = cpu.to_string();
    let spec = Spec::new("taskset-self", "taskset", &["-p", "-c", &cpu, &pid]);
    procs::run(&spec, &std::env::temp_dir(), Duration::from_secs(10)).map(drop)
}
