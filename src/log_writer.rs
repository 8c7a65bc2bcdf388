//! The log writer: the threads that log append their lines to one shared buffer, and a thread
//! of its own writes that buffer to the output in batches. It owns the buffer, the batching
//! and the count of dropped lines, not the line format (`logging.rs`).
//!
//! An access-log line (one per request) costs the logging thread one uncontended lock and a
//! copy: no syscall and no wake-up. The writer is woken only when a line lands in an empty
//! buffer; it then waits up to [`GATHER`] for the lines that follow, and writes them all in
//! one go. Every other line (startup, `listening`, warnings: rare, and read by people and
//! supervisors waiting for them) is urgent: it cuts the wait short and is written at once. tracing-appender's
//! non-blocking writer, used before, woke its thread for nearly every line at moderate load
//! (a futex wake, a context switch on the one core a sidecar has, `sched_yield`s while its
//! queue spun, and a `write`): about 3.4 syscalls per request with one client (issue 20,
//! `tests/counts.rs`), more than the request's own socket reads and writes.
//!
//! If the output stalls and [`LIMIT`] bytes are waiting, lines are dropped rather than
//! requests stalled, and counted (`protogate_log_lines_dropped_total` on `/metrics`).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer waits, once woken, for more lines to share the write.
pub const GATHER: Duration = Duration::from_millis(5);
/// The most bytes waiting to be written; lines past it are dropped.
pub const LIMIT: usize = 1024 * 1024;
/// A buffer grown beyond this by a burst is given back once written, so the idle resident
/// set does not keep the burst's peak.
const KEEP: usize = 64 * 1024;

/// Lines dropped so far because the output could not keep up.
static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    gather: Duration,
}

struct State {
    lines: Vec<u8>,
    /// A line that must not wait for [`GATHER`] is in `lines`.
    urgent: bool,
    stopping: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `MakeWriter` the subscriber writes its lines through.
#[derive(Clone)]
pub struct LineWriter(Arc<Shared>);

/// Keeps the writer's thread; dropping it writes what is waiting and ends the thread.
#[must_use = "dropping the guard stops the log writer"]
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `out`.
pub fn start(out: impl Write + Send + 'static) -> std::io::Result<(LineWriter, WriterGuard)> {
    start_with(out, GATHER)
}

/// [`start`] with another gathering time (tests).
fn start_with(
    out: impl Write + Send + 'static,
    gather: Duration,
) -> std::io::Result<(LineWriter, WriterGuard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            lines: Vec::new(),
            urgent: false,
            stopping: false,
        }),
        wake: Condvar::new(),
        gather,
    });
    let writer = shared.clone();
    let thread = std::thread::Builder::new()
        .name("protogate-log".into())
        .spawn(move || write_batches(&writer, out))?;
    let guard = WriterGuard {
        shared: shared.clone(),
        thread: Some(thread),
    };
    Ok((LineWriter(shared), guard))
}

/// Lines dropped so far because the output could not keep up.
pub fn dropped_lines() -> usize {
    DROPPED.load(Ordering::Relaxed)
}

fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut spare = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.lines.is_empty() && !state.stopping {
            state = shared.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        if state.lines.is_empty() {
            return;
        }
        if !state.stopping && !state.urgent {
            // Lines that follow within GATHER share this write; an urgent one ends the wait.
            state = shared
                .wake
                .wait_timeout_while(state, shared.gather, |s| !s.urgent && !s.stopping)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.urgent = false;
        let batch = std::mem::replace(&mut state.lines, spare);
        drop(state);
        // A failed write loses this batch; there is nowhere else to report it.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        spare = batch;
        spare.clear();
        if spare.capacity() > KEEP {
            spare = Vec::new();
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The module whose lines (one per request) are gathered; every other line is urgent.
const GATHERED: &str = "protogate::gateway::access";

/// One line (tracing-subscriber writes each event with one `write_all`).
pub struct Line<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl<'a> MakeWriter<'a> for LineWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.0,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line<'a> {
        Line {
            shared: &self.0,
            urgent: meta.target() != GATHERED,
        }
    }
}

impl Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        if state.lines.len() + line.len() > LIMIT {
            drop(state);
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return Ok(line.len());
        }
        let wake = state.lines.is_empty() || (self.urgent && !state.urgent);
        state.lines.extend_from_slice(line);
        state.urgent |= self.urgent;
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[path = "log_writer_tests.rs"]
mod tests;
