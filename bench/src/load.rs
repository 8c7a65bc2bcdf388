//! The load driver shared by `grpc_load` and `http_load`: N concurrent callers, each with its
//! own connection state, driven either closed-loop (each caller sends its next request when
//! the previous one is answered) or at a fixed rate (an open schedule, wrk2-style).
//!
//! Fixed-rate latency is coordinated-omission correct: it is measured from the time a request
//! was *scheduled*, not from when a free caller got round to sending it, so a stalled server
//! shows up as latency instead of as fewer samples. The schedule is kept by a plain OS thread
//! (`std::thread::sleep` is a high-resolution timer; tokio's timer wheel ticks in whole
//! milliseconds, which would add up to 1 ms of noise to every sample at 2k req/s).
//!
//! It owns the histogram (hdrhistogram, nanoseconds, 3 significant digits) and the one JSON
//! line a load generator prints; it knows nothing about HTTP or gRPC.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Answered, but not with success (an HTTP status other than 200, a gRPC error status,
    /// a reply with the wrong number of users): load shedding shows up here.
    Rejected,
    /// No answer: a connection error or a timeout.
    Failed,
}

/// One caller: owns its connection (or a clone of a shared channel) and sends one request
/// per `call`.
pub trait Caller: Send + 'static {
    /// Sends one request and waits for the whole answer.
    fn call(&mut self) -> impl Future<Output = Outcome> + Send;
}

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Unrecorded time before the measured window (connections, caches, branch predictors).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Requests per second of the fixed-rate schedule; `None` runs closed-loop.
    pub rate: Option<f64>,
    /// How long requests still queued when a fixed-rate schedule ends may be sent; the rest
    /// are counted as `dropped` so an overloaded target cannot keep the run going.
    pub grace: Duration,
}

impl Plan {
    /// The plan from the load generators' common flags (seconds, optional rate).
    pub fn from_flags(warmup: f64, duration: f64, rate: Option<f64>) -> anyhow::Result<Plan> {
        Ok(Plan {
            warmup: seconds(warmup, "--warmup")?,
            duration: seconds(duration, "--duration")?,
            rate,
            grace: Duration::from_secs(5),
        })
    }
}

/// The result line a load generator prints (one JSON object). Latencies are microseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// `closed` or `fixed-rate`.
    pub mode: String,
    pub concurrency: usize,
    /// The requested rate of a fixed-rate run.
    pub target_rate: Option<f64>,
    /// Length of the measured window.
    pub seconds: f64,
    /// Requests answered in the window, successes and errors.
    pub requests: u64,
    /// Requests that did not succeed, `rejected` included.
    pub errors: u64,
    /// Errors that were answers (non-2xx, error statuses) rather than failures.
    #[serde(default)]
    pub rejected: u64,
    /// Scheduled requests never sent because the grace period ran out.
    pub dropped: u64,
    pub rps: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// What one caller measured.
struct Tally {
    hist: Histogram<u64>,
    errors: u64,
    rejected: u64,
    dropped: u64,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        // 1 ns to 2 minutes; a slower answer saturates at the top bucket.
        let hist = Histogram::new_with_bounds(1, 120_000_000_000, 3)
            .context("cannot create the latency histogram")?;
        Ok(Tally {
            hist,
            errors: 0,
            rejected: 0,
            dropped: 0,
        })
    }

    fn record(&mut self, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Ok => {
                let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                self.hist.saturating_record(ns.max(1));
            }
            Outcome::Rejected => {
                self.errors += 1;
                self.rejected += 1;
            }
            Outcome::Failed => self.errors += 1,
        }
    }
}

/// Runs `plan` with one task per caller (the concurrency is `callers.len()`).
pub async fn run<C: Caller>(plan: Plan, callers: Vec<C>) -> anyhow::Result<Summary> {
    anyhow::ensure!(!callers.is_empty(), "at least one caller is needed");
    if let Some(rate) = plan.rate {
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "the rate must be positive");
    }
    let concurrency = callers.len();
    let start = Instant::now();
    let window = (start + plan.warmup, start + plan.warmup + plan.duration);
    let mut tasks = Vec::with_capacity(concurrency);
    let pacer = match plan.rate {
        None => {
            for caller in callers {
                tasks.push(tokio::spawn(closed_loop(caller, window)));
            }
            None
        }
        Some(rate) => {
            let (tx, rx) = mpsc::unbounded_channel();
            let pacer = std::thread::spawn(move || pace(tx, start, window.1, rate));
            let rx = Arc::new(Mutex::new(rx));
            let give_up = window.1 + plan.grace;
            for caller in callers {
                tasks.push(tokio::spawn(fixed_rate(caller, rx.clone(), window.0, give_up)));
            }
            Some(pacer)
        }
    };
    let mut total = Tally::new()?;
    for task in tasks {
        let tally = task.await.context("a caller task failed")??;
        total.hist.add(&tally.hist).context("cannot merge histograms")?;
        total.errors += tally.errors;
        total.rejected += tally.rejected;
        total.dropped += tally.dropped;
    }
    if let Some(pacer) = pacer {
        // It has finished: the callers only stop once it has dropped its sender.
        pacer
            .join()
            .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    }
    Ok(summarise(&total, &plan, concurrency))
}

/// Sends the next request as soon as the previous one is answered, until the window ends.
async fn closed_loop<C: Caller>(mut caller: C, window: (Instant, Instant)) -> anyhow::Result<Tally> {
    let mut tally = Tally::new()?;
    loop {
        let sent = Instant::now();
        if sent >= window.1 {
            return Ok(tally);
        }
        let outcome = caller.call().await;
        if sent >= window.0 {
            tally.record(outcome, sent.elapsed());
        }
    }
}

/// Takes scheduled send times off the shared queue; latency counts from the scheduled time.
async fn fixed_rate<C: Caller>(
    mut caller: C,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Instant>>>,
    measure_from: Instant,
    give_up: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::new()?;
    loop {
        let next = queue.lock().await.recv().await;
        let Some(scheduled) = next else {
            return Ok(tally);
        };
        if Instant::now() >= give_up {
            tally.dropped += 1;
            continue;
        }
        let outcome = caller.call().await;
        if scheduled >= measure_from {
            tally.record(outcome, scheduled.elapsed());
        }
    }
}

/// The schedule: request i is due at `start + i / rate`, until `end`. Runs on its own thread.
fn pace(tx: mpsc::UnboundedSender<Instant>, start: Instant, end: Instant, rate: f64) {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut due = start;
    while due < end {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if tx.send(due).is_err() {
            return;
        }
        due += interval;
    }
}

/// A `--duration`-style flag in seconds as a `Duration`.
pub fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{flag} must be seconds >= 0"))
}

/// The load generators' runtime: `threads` workers, or one per CPU this process may run on
/// (tokio counts the CPUs of the affinity mask, so `taskset -c 1` gives one).
pub fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    builder.enable_all().build().context("cannot start the runtime")
}

fn summarise(total: &Tally, plan: &Plan, concurrency: usize) -> Summary {
    let seconds = plan.duration.as_secs_f64();
    let requests = total.hist.len() + total.errors;
    let us = |ns: u64| ns as f64 / 1000.0;
    Summary {
        mode: if plan.rate.is_some() {
            "fixed-rate"
        } else {
            "closed"
        }
        .to_owned(),
        concurrency,
        target_rate: plan.rate,
        seconds,
        requests,
        errors: total.errors,
        rejected: total.rejected,
        dropped: total.dropped,
        rps: if seconds > 0.0 {
            requests as f64 / seconds
        } else {
            0.0
        },
        mean_us: total.hist.mean() / 1000.0,
        p50_us: us(total.hist.value_at_quantile(0.50)),
        p90_us: us(total.hist.value_at_quantile(0.90)),
        p99_us: us(total.hist.value_at_quantile(0.99)),
        p999_us: us(total.hist.value_at_quantile(0.999)),
        max_us: us(total.hist.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers after a fixed delay; fails every `fail_every`-th call.
    struct Fake {
        delay: Duration,
        calls: u64,
        fail_every: u64,
    }

    impl Caller for Fake {
        async fn call(&mut self) -> Outcome {
            self.calls += 1;
            tokio::time::sleep(self.delay).await;
            if self.fail_every != 0 && self.calls.is_multiple_of(self.fail_every) {
                Outcome::Rejected
            } else {
                Outcome::Ok
            }
        }
    }

    fn fakes(n: usize, delay_ms: u64, fail_every: u64) -> Vec<Fake> {
        (0..n)
            .map(|_| Fake {
                delay: Duration::from_millis(delay_ms),
                calls: 0,
                fail_every,
            })
            .collect()
    }

    #[tokio::test]
    async fn fixed_rate_sends_the_scheduled_count() {
        let plan = Plan {
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(500),
            rate: Some(200.0),
            grace: Duration::from_secs(1),
        };
        let s = run(plan, fakes(4, 1, 0)).await.unwrap();
        assert_eq!(s.mode, "fixed-rate");
        assert!((95..=105).contains(&s.requests), "{s:?}");
        assert_eq!((s.errors, s.dropped), (0, 0));
    }

    #[tokio::test]
    async fn fixed_rate_counts_queueing_as_latency() {
        // One caller, 20 ms per call, but a request is due every 5 ms: the queue grows, and
        // the latency measured from the schedule must grow far past the 20 ms service time.
        let plan = Plan {
            warmup: Duration::ZERO,
            duration: Duration::from_millis(200),
            rate: Some(200.0),
            grace: Duration::from_secs(5),
        };
        let s = run(plan, fakes(1, 20, 0)).await.unwrap();
        assert!(s.max_us > 100_000.0, "{s:?}");
    }

    #[tokio::test]
    async fn closed_loop_counts_errors_apart_from_latency() {
        let plan = Plan {
            warmup: Duration::ZERO,
            duration: Duration::from_millis(300),
            rate: None,
            grace: Duration::ZERO,
        };
        let s = run(plan, fakes(2, 5, 2)).await.unwrap();
        assert_eq!(s.mode, "closed");
        assert!(s.errors > 0 && s.requests > s.errors, "{s:?}");
        assert_eq!(s.rejected, s.errors);
        assert!(s.p50_us >= 5000.0, "{s:?}");
    }
}
