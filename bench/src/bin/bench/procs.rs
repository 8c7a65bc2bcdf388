//! The runner's child processes: spawning them pinned to a CPU, reading their readiness line,
//! waiting for them with a timeout, and making sure none outlives the runner.
//!
//! Every child is registered in `LIVE` while it runs. A `Proc` handle kills and reaps its
//! child when dropped, which covers normal returns, `?` errors and panics (unwinding drops
//! it); the Ctrl-C/SIGTERM handler calls `kill_all_and_exit`. Each child is also started under
//! `setpriv --pdeathsig KILL`, so the kernel kills it even if the runner itself is killed
//! with SIGKILL. Pinning is `taskset -c CPU`, which execs the program, so the PID we hold is
//! the program's own (its /proc entries are what `measure` reads).
//!
//! Children are spawned from the main thread only: the parent-death signal fires when the
//! spawning *thread* exits, and the main thread lives as long as the runner.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Children that are running (or exited but not yet reaped), by PID.
static LIVE: Mutex<BTreeMap<u32, Child>> = Mutex::new(BTreeMap::new());

fn live() -> MutexGuard<'static, BTreeMap<u32, Child>> {
    // A panic while holding the lock must not stop the cleanup.
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Kills and reaps every child, then exits with `code`: the signal handler's act. The lock
/// is held to the end, so the main thread can neither start another child nor report the
/// children's deaths as errors meanwhile; `exit` then ends every thread.
pub fn kill_all_and_exit(code: i32) -> ! {
    let mut children = live();
    for child in children.values_mut() {
        let _ = child.kill();
    }
    for child in children.values_mut() {
        let _ = child.wait();
    }
    std::process::exit(code)
}

/// What to start.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Short name for logs and errors (`gateway`, `wrk`, …); also names the stderr log file.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Variables to set; a `None` value removes the variable from the child's environment.
    pub env: Vec<(String, Option<String>)>,
    /// The CPU to pin to with taskset; `None` inherits the runner's affinity.
    pub cpu: Option<usize>,
    /// Working directory; `None` inherits the runner's.
    pub cwd: Option<PathBuf>,
}

impl Spec {
    pub fn new(name: &str, program: impl Into<PathBuf>, args: &[&str]) -> Self {
        Spec {
            name: name.to_owned(),
            program: program.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
            cpu: None,
            cwd: None,
        }
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    pub fn pinned(mut self, cpu: usize) -> Self {
        self.cpu = Some(cpu);
        self
    }

    pub fn env(mut self, key: &str, value: Option<&str>) -> Self {
        self.env.push((key.to_owned(), value.map(str::to_owned)));
        self
    }
}

/// A running child; dropping it kills and reaps the child.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let child = live().remove(&self.pid);
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Proc {
    /// Starts `spec` with stdout piped and stderr written to `LOGS/NAME.stderr`.
    pub fn spawn(spec: &Spec, logs: &Path) -> anyhow::Result<(Proc, ChildStdout)> {
        let log = logs.join(format!("{}.stderr", spec.name));
        let stderr = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new("setpriv");
        command.args(["--pdeathsig", "KILL", "--"]);
        if let Some(cpu) = spec.cpu {
            command.args(["taskset", "-c", &cpu.to_string()]);
        }
        command.arg(&spec.program).args(&spec.args);
        for (key, value) in &spec.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &spec.cwd {
            command.current_dir(dir);
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {} ({})", spec.name, spec.program.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let pid = child.id();
        live().insert(pid, child);
        Ok((
            Proc {
                name: spec.name.clone(),
                pid,
                log,
            },
            stdout,
        ))
    }

    /// The exit status, if the child has exited.
    pub fn try_wait(&self) -> anyhow::Result<Option<ExitStatus>> {
        match live().get_mut(&self.pid) {
            Some(child) => child.try_wait().context("cannot poll a child"),
            None => bail!("{} is not running", self.name),
        }
    }

    /// The last lines of its stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        last_lines(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

/// A server that printed its readiness line.
#[derive(Debug)]
pub struct Server {
    pub proc: Proc,
    /// The address it reported, as `HOST:PORT`.
    pub addr: String,
    /// When it was spawned.
    pub spawned: Instant,
}

/// Starts a server and waits (at most `timeout`) for the stdout line that `ready` accepts,
/// returning the address it extracts. Later stdout is drained and discarded, so a chatty
/// server (the gateway's access log) never blocks on a full pipe.
pub fn start_server(
    spec: &Spec,
    logs: &Path,
    timeout: Duration,
    ready: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Server> {
    let spawned = Instant::now();
    let (proc, stdout) = Proc::spawn(spec, logs)?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if tx.send(std::mem::take(&mut line)).is_err() {
                break; // ready was seen; from here on only drain
            }
        }
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let deadline = spawned + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(addr) = ready(line.trim_end()) {
                    return Ok(Server { proc, addr, spawned });
                }
            }
            Err(RecvTimeoutError::Timeout) => bail!(
                "{} printed no readiness line within {timeout:?}; stderr ({}):\n{}",
                spec.name,
                proc.log.display(),
                proc.stderr_tail()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                // Its stdout closed: it exited (or closed stdout) before being ready.
                let status = wait_briefly(&proc);
                bail!(
                    "{} stopped before it was ready ({status}); stderr ({}):\n{}",
                    spec.name,
                    proc.log.display(),
                    proc.stderr_tail()
                )
            }
        }
    }
}

fn wait_briefly(proc: &Proc) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = proc.try_wait() {
            return status.to_string();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    "still running".to_owned()
}

/// A command whose whole stdout we want (a load generator, a version query).
pub struct Running {
    pub proc: Proc,
    stdout: JoinHandle<String>,
    started: Instant,
}

impl Running {
    pub fn start(spec: &Spec, logs: &Path) -> anyhow::Result<Running> {
        let started = Instant::now();
        let (proc, mut stdout) = Proc::spawn(spec, logs)?;
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        Ok(Running {
            proc,
            stdout,
            started,
        })
    }

    /// True once it has exited.
    pub fn finished(&self) -> bool {
        matches!(self.proc.try_wait(), Ok(Some(_)) | Err(_))
    }

    /// Waits until it exits, at most `timeout` after it started; kills it on timeout.
    /// Returns its stdout; a non-zero exit is an error carrying its stderr.
    pub fn finish(self, timeout: Duration) -> anyhow::Result<String> {
        let (name, log) = (self.proc.name.clone(), self.proc.log.clone());
        let (status, stdout) = self.finish_any(timeout)?;
        if !status.success() {
            let tail = last_lines(&std::fs::read_to_string(&log).unwrap_or_default());
            bail!("{name} failed ({status}); stderr ({}):\n{tail}", log.display());
        }
        Ok(stdout)
    }

    /// Like `finish`, but any exit status is fine: returns it with the stdout.
    pub fn finish_any(self, timeout: Duration) -> anyhow::Result<(ExitStatus, String)> {
        let deadline = self.started + timeout;
        let status = loop {
            if let Some(status) = self.proc.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                bail!("{} did not finish within {timeout:?}; killed", self.proc.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = self
            .stdout
            .join()
            .map_err(|_| anyhow::anyhow!("the stdout reader of {} panicked", self.proc.name))?;
        Ok((status, stdout))
    }
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Runs a command to completion within `timeout` and returns its stdout.
pub fn run(spec: &Spec, logs: &Path, timeout: Duration) -> anyhow::Result<String> {
    Running::start(spec, logs)?.finish(timeout)
}
