//! Request admission, before any routing: the limits on the request head (target length,
//! header count and size: 414 and 431 as JSON) and load shedding (a request over the
//! concurrency limit gets 503 with `Retry-After` at once instead of queueing). hyper's own
//! limits are set above these, so that the client normally gets our JSON answer rather than
//! hyper's bare one.

use std::sync::Arc;

use axum::extract::Request;
use http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerConfig;
use crate::error::GatewayError;

/// Checks the request head against the configured limits.
pub fn check_head(limits: &ServerConfig, request: &Request) -> Result<(), GatewayError> {
    let target = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > limits.max_uri_bytes {
        return Err(GatewayError::head_too_large(
            StatusCode::URI_TOO_LONG,
            format!(
                "request target is {target} bytes; the limit is {}",
                limits.max_uri_bytes
            ),
        ));
    }
    let headers = request.headers();
    if headers.len() > limits.max_headers {
        return Err(GatewayError::head_too_large(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "{} request headers; the limit is {}",
                headers.len(),
                limits.max_headers
            ),
        ));
    }
    let bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if bytes > limits.max_header_bytes {
        return Err(GatewayError::head_too_large(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "request headers are {bytes} bytes; the limit is {}",
                limits.max_header_bytes
            ),
        ));
    }
    Ok(())
}

/// The concurrency limit: a permit per request in flight.
#[derive(Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Admission {
    pub fn new(limit: usize) -> Admission {
        Admission {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// A permit, held for the life of the request, or the 503 to answer at once.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, GatewayError> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| GatewayError::overloaded(self.limit))
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }
}
