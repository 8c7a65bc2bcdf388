//! How a broken call becomes a status, as gRPC's PROTOCOL-HTTP2.md ("Errors") says and as
//! grpc-go and tonic do, and what it proves for the retry rule. The codes then go through
//! grpc-gateway's HTTP table like any upstream status.
//!
//! - `RST_STREAM` from the upstream: `CANCEL` → CANCELLED, `ENHANCE_YOUR_CALM` →
//!   RESOURCE_EXHAUSTED, `INADEQUATE_SECURITY` → PERMISSION_DENIED, `REFUSED_STREAM` →
//!   UNAVAILABLE, every other reason → INTERNAL.
//! - The connection lost (EOF, reset socket) while a call was open → UNAVAILABLE, as every
//!   gRPC client reports a transport failure.
//! - A reply that ends without `grpc-status` → UNKNOWN (tonic 0.14, and grpc-go for
//!   trailers that lack it): the final status is indeterminate, and statuscodes.md gives
//!   UNKNOWN to "errors raised by APIs that do not return enough error information".
//!
//! Only two failures prove that the upstream did not process a call, so that even a POST
//! may go again: `REFUSED_STREAM` (RFC 9113 §8.7) and a GOAWAY whose last stream id is
//! below ours (§6.8). A call whose connection broke in any other way may have been acted on.

use tonic::Code;

use super::wire::not_grpc;
use crate::error::GatewayError;
use crate::upstream::{Connection, Live};

/// The gRPC code for an `RST_STREAM` reason from the upstream (PROTOCOL-HTTP2.md, "Errors").
pub(super) fn reset_code(reason: h2::Reason) -> Code {
    match reason {
        h2::Reason::REFUSED_STREAM => Code::Unavailable,
        h2::Reason::CANCEL => Code::Cancelled,
        h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
        // NO_ERROR (a reset without a status), PROTOCOL_ERROR, INTERNAL_ERROR,
        // FLOW_CONTROL_ERROR (grpc-go says RESOURCE_EXHAUSTED; the spec and tonic say
        // INTERNAL), SETTINGS_TIMEOUT, FRAME_SIZE_ERROR, COMPRESSION_ERROR, CONNECT_ERROR and
        // anything newer.
        _ => Code::Internal,
    }
}

/// The upstream ended the reply without a `grpc-status`.
pub(super) fn missing_status(why: &str) -> GatewayError {
    tracing::warn!(why, "upstream ended the call without a grpc-status");
    status(
        Code::Unknown,
        format!("upstream ended the call without a grpc-status ({why})"),
    )
}

fn status(code: Code, message: String) -> GatewayError {
    GatewayError::upstream_status(&tonic::Status::new(code, message))
}

/// The stream could not be opened: the connection is gone and nothing was sent.
pub(super) fn unsent(connection: &Connection, live: &Live, err: h2::Error) -> GatewayError {
    if err.is_go_away() || err.is_io() || err.is_remote() {
        connection.forget(live.generation, &err);
        GatewayError::connect_failed(format!("upstream connection closed: {err}"))
    } else {
        GatewayError::internal(format!("upstream request rejected by HTTP/2: {err}"))
    }
}

/// A failure after the stream was sent: the connection is dropped when it is the
/// connection's fault, and the call is classified by `reply_error`.
pub(super) fn sent(connection: &Connection, live: &Live, err: h2::Error) -> GatewayError {
    if err.is_io() || err.is_go_away() {
        connection.forget(live.generation, &err);
    }
    reply_error(err)
}

/// A failure while waiting for the reply's head: the two that prove the call was not
/// processed may go again; the rest are sorted by `reply_error`.
pub(super) fn head_error(connection: &Connection, live: &Live, err: h2::Error) -> GatewayError {
    if err.is_remote() && err.is_go_away() {
        // h2 fails exactly the streams above the GOAWAY's last stream id this way.
        connection.forget(live.generation, &err);
        return GatewayError::refused_by_upstream(&err);
    }
    if err.is_remote() && err.is_reset() && err.reason() == Some(h2::Reason::REFUSED_STREAM) {
        return GatewayError::refused_by_upstream(&err);
    }
    sent(connection, live, err)
}

/// Sorts an HTTP/2 failure of a call the upstream may have acted on.
pub(super) fn reply_error(err: h2::Error) -> GatewayError {
    if let (Some(reason), true) = (err.reason(), err.is_remote()) {
        let frame = if err.is_go_away() { "GOAWAY" } else { "RST_STREAM" };
        tracing::warn!(error = %err, frame, "upstream ended the call");
        return status(
            reset_code(reason),
            format!("upstream reset the call ({reason:?})"),
        );
    }
    if err.is_io() {
        tracing::warn!(error = %crate::error::chain(&err), "upstream connection lost during a call");
        return status(
            Code::Unavailable,
            "upstream connection lost during the call".to_string(),
        );
    }
    // The gateway reset the stream itself (a request stream that failed on the client's
    // side, grpc/streams.rs): no fault of the upstream's, and the front-end reports the
    // client's failure in its place.
    if err.is_reset() && !err.is_remote() && err.reason() == Some(h2::Reason::CANCEL) {
        tracing::debug!(error = %err, "call cancelled by the gateway");
        return GatewayError::upstream_status(&tonic::Status::cancelled("the call was cancelled"));
    }
    // A local protocol error: the upstream broke HTTP/2 (or is no HTTP/2 server at all).
    not_grpc(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_reasons_map_as_the_spec_says() {
        let table = [
            (h2::Reason::NO_ERROR, Code::Internal),
            (h2::Reason::PROTOCOL_ERROR, Code::Internal),
            (h2::Reason::INTERNAL_ERROR, Code::Internal),
            (h2::Reason::FLOW_CONTROL_ERROR, Code::Internal),
            (h2::Reason::SETTINGS_TIMEOUT, Code::Internal),
            (h2::Reason::STREAM_CLOSED, Code::Internal),
            (h2::Reason::FRAME_SIZE_ERROR, Code::Internal),
            (h2::Reason::REFUSED_STREAM, Code::Unavailable),
            (h2::Reason::CANCEL, Code::Cancelled),
            (h2::Reason::COMPRESSION_ERROR, Code::Internal),
            (h2::Reason::CONNECT_ERROR, Code::Internal),
            (h2::Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
            (h2::Reason::INADEQUATE_SECURITY, Code::PermissionDenied),
            (h2::Reason::HTTP_1_1_REQUIRED, Code::Internal),
            (h2::Reason::from(0x77), Code::Internal),
        ];
        for (reason, code) in table {
            assert_eq!(reset_code(reason), code, "{reason:?}");
        }
    }

    #[test]
    fn remote_resets_go_through_the_http_table() {
        let err = reply_error(h2::Error::from(h2::Reason::CANCEL));
        // A locally made h2 error is not remote: it is a protocol error of ours to report.
        assert_eq!(err.http_status(), http::StatusCode::BAD_GATEWAY);
        let missing = missing_status("no trailers");
        assert_eq!(missing.code(), Code::Unknown);
        assert_eq!(missing.http_status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            missing.message(),
            "upstream ended the call without a grpc-status (no trailers)"
        );
    }
}
