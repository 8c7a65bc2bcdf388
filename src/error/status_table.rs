//! The status table: gRPC code → HTTP status (grpc-gateway's `HTTPStatusFromCode`), and
//! each code's name and title, as the access log and the problem+json body print them.

use http::StatusCode;
use tonic::Code;

/// grpc-gateway's `HTTPStatusFromCode`, copied (runtime/errors.go), not invented.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // 499 "Client Closed Request", as nginx and grpc-gateway use it.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // Not 412: grpc-gateway notes that FailedPrecondition means "fix the system state",
        // which HTTP expresses as a plain 400.
        Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Aborted => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The access log's reason for an upstream's own status: its code, never its message.
pub(super) fn upstream_reason(code: Code) -> &'static str {
    match code {
        Code::Ok => "the upstream answered OK",
        Code::Cancelled => "the upstream answered CANCELLED",
        Code::Unknown => "the upstream answered UNKNOWN",
        Code::InvalidArgument => "the upstream answered INVALID_ARGUMENT",
        Code::DeadlineExceeded => "the upstream answered DEADLINE_EXCEEDED",
        Code::NotFound => "the upstream answered NOT_FOUND",
        Code::AlreadyExists => "the upstream answered ALREADY_EXISTS",
        Code::PermissionDenied => "the upstream answered PERMISSION_DENIED",
        Code::ResourceExhausted => "the upstream answered RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "the upstream answered FAILED_PRECONDITION",
        Code::Aborted => "the upstream answered ABORTED",
        Code::OutOfRange => "the upstream answered OUT_OF_RANGE",
        Code::Unimplemented => "the upstream answered UNIMPLEMENTED",
        Code::Internal => "the upstream answered INTERNAL",
        Code::Unavailable => "the upstream answered UNAVAILABLE",
        Code::DataLoss => "the upstream answered DATA_LOSS",
        Code::Unauthenticated => "the upstream answered UNAUTHENTICATED",
    }
}

/// The code's name as `google.rpc.Code` spells it (`INVALID_ARGUMENT`).
pub(super) fn code_name(code: Code) -> &'static str {
    upstream_reason(code).trim_start_matches("the upstream answered ")
}

/// A short title for the code, for problem+json's `title` ("Invalid argument").
pub(super) fn title(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown error",
        Code::InvalidArgument => "Invalid argument",
        Code::DeadlineExceeded => "Deadline exceeded",
        Code::NotFound => "Not found",
        Code::AlreadyExists => "Already exists",
        Code::PermissionDenied => "Permission denied",
        Code::ResourceExhausted => "Resource exhausted",
        Code::FailedPrecondition => "Failed precondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "Out of range",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal error",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "Data loss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_covers_every_code() {
        let table = [
            (0, 200),
            (1, 499),
            (2, 500),
            (3, 400),
            (4, 504),
            (5, 404),
            (6, 409),
            (7, 403),
            (8, 429),
            (9, 400),
            (10, 409),
            (11, 400),
            (12, 501),
            (13, 500),
            (14, 503),
            (15, 500),
            (16, 401),
        ];
        for (code, http) in table {
            assert_eq!(http_status(Code::from_i32(code)).as_u16(), http, "code {code}");
        }
        // Any number outside the enum is UNKNOWN on the wire, so it must map like UNKNOWN.
        assert_eq!(http_status(Code::from_i32(99)), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn every_code_has_its_name() {
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::Unauthenticated), "UNAUTHENTICATED");
        assert_eq!(title(Code::NotFound), "Not found");
    }
}
