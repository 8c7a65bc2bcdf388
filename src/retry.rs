//! The retry rule: at most one retry, after a jittered pause, inside the original deadline,
//! and only when it cannot duplicate work: the call provably never left the gateway (no
//! connection could be made), or the route is a GET or HEAD and the upstream said
//! UNAVAILABLE. A POST that reached the upstream is never retried, as nginx's
//! `proxy_next_upstream` treats non-idempotent requests.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use http::Method;
use tonic::Code;

use crate::error::{Fault, GatewayError};

/// The shortest remaining budget worth a second attempt.
const MIN_BUDGET: Duration = Duration::from_millis(20);

/// Whether `err` from a first attempt on a `method` route may be retried.
pub fn retryable(err: &GatewayError, method: &Method) -> bool {
    err.never_sent()
        || (matches!(*method, Method::GET | Method::HEAD)
            && err.code() == Code::Unavailable
            && err.fault() == Fault::Upstream)
}

/// The pause before the retry and the deadline left for it, or `None` when the remaining
/// budget is too small.
pub fn plan(deadline: Duration, elapsed: Duration) -> Option<(Duration, Duration)> {
    let pause = jitter();
    let left = deadline.checked_sub(elapsed + pause)?;
    (left >= MIN_BUDGET).then_some((pause, left))
}

/// Runs `attempt` with the whole deadline, and once more with what is left of it after a
/// jittered pause when `may_retry` allows it for the first error and the budget is enough.
/// The one retry path for unary calls and streams alike.
pub async fn once<T, Fut>(
    deadline: Duration,
    started: Instant,
    may_retry: impl Fn(&GatewayError) -> bool,
    mut attempt: impl FnMut(Duration) -> Fut,
) -> Result<T, GatewayError>
where
    Fut: Future<Output = Result<T, GatewayError>>,
{
    match attempt(deadline).await {
        Err(err) if may_retry(&err) => match plan(deadline, started.elapsed()) {
            Some((pause, left)) => {
                tracing::debug!(error = %err, pause_ms = pause.as_millis() as u64, "retrying once");
                tokio::time::sleep(pause).await;
                attempt(left).await
            }
            None => Err(err),
        },
        result => result,
    }
}

/// 25–250 ms, so that many clients failing at once do not retry in lockstep.
fn jitter() -> Duration {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis(25 + random % 226)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unsent_calls_or_safe_methods_retry() {
        let unsent = GatewayError::connect_failed("refused");
        assert!(retryable(&unsent, &Method::POST));
        let unavailable = GatewayError::upstream_status(&tonic::Status::unavailable("busy"));
        assert!(retryable(&unavailable, &Method::GET));
        assert!(
            !retryable(&unavailable, &Method::POST),
            "a POST that was sent is never retried"
        );
        let internal = GatewayError::upstream_status(&tonic::Status::internal("boom"));
        assert!(!retryable(&internal, &Method::GET));
        assert!(!retryable(&GatewayError::bad_request("x"), &Method::GET));
    }

    #[test]
    fn retry_fits_inside_the_deadline() {
        for _ in 0..100 {
            let (pause, left) = plan(Duration::from_secs(1), Duration::from_millis(100)).expect("budget");
            assert!((Duration::from_millis(25)..=Duration::from_millis(250)).contains(&pause));
            assert_eq!(pause + left, Duration::from_millis(900));
        }
        assert_eq!(plan(Duration::from_millis(100), Duration::from_millis(99)), None);
    }
}
