//! The call deadline, in one place: the `grpc-timeout` header's grammar both ways (gRPC's
//! PROTOCOL-HTTP2.md, `1*8DIGIT unit`), `X-Request-Timeout` for clients that do not speak
//! it, and the rule that picks the deadline of a call: the tighter of what the client asked
//! for, else the configured default, never more than the configured cap.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tonic::Code;

use crate::error::GatewayError;

static X_REQUEST_TIMEOUT: HeaderName = HeaderName::from_static("x-request-timeout");

/// The call deadline: the client's `grpc-timeout` if it sent one, else `default`, never more
/// than `max`.
pub fn deadline(headers: &HeaderMap, default: Duration, max: Duration) -> Result<Duration, GatewayError> {
    let grpc = match headers.get(&super::GRPC_TIMEOUT) {
        None => None,
        Some(value) => {
            let text = value.to_str().unwrap_or_default();
            Some(parse_grpc_timeout(text).ok_or_else(|| {
                GatewayError::bad_field(
                    "grpc-timeout",
                    format!(
                        "invalid grpc-timeout {text:?}: expected up to 8 digits and a unit H, M, S, m, u or n"
                    ),
                )
            })?)
        }
    };
    let plain = match headers.get(&X_REQUEST_TIMEOUT) {
        None => None,
        Some(value) => {
            let text = value.to_str().unwrap_or_default();
            Some(parse_request_timeout(text).ok_or_else(|| {
                GatewayError::bad_field(
                    "x-request-timeout",
                    format!("invalid x-request-timeout {text:?}: expected seconds (1.5) or a duration (250ms, 2s, 1m)"),
                )
            })?)
        }
    };
    // Both may come (a gRPC-aware proxy adds one); the tighter wins, and neither beats max.
    let asked = match (grpc, plain) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => default,
    };
    Ok(asked.min(max))
}

/// `X-Request-Timeout`, for clients that do not speak gRPC's timeout syntax: seconds, whole
/// or decimal (`2`, `1.5`), or a duration with a unit (`250ms`, `2s`, `1m`). Zero, negative
/// and non-finite values are refused.
pub fn parse_request_timeout(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(duration) = crate::config::parse_duration(text) {
        return (!duration.is_zero()).then_some(duration);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let seconds: f64 = text.parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok().filter(|d| !d.is_zero())
}

/// `TimeoutValue TimeoutUnit` per gRPC's PROTOCOL-HTTP2.md.
pub fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `grpc-timeout` (at most 8 digits): microseconds while they fit, else milliseconds, else
/// seconds.
pub fn grpc_timeout(timeout: Duration) -> HeaderValue {
    const MAX: u64 = 99_999_999;
    let micros = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
    let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let (value, unit) = if micros <= MAX {
        (micros, b'u')
    } else if millis <= MAX {
        (millis, b'm')
    } else {
        (timeout.as_secs().min(MAX), b'S')
    };
    // At most 8 digits and the unit, written here rather than by `format!` (every call
    // sends one).
    let mut text = [0u8; 9];
    text[8] = unit;
    let (mut start, mut rest) = (8, value);
    loop {
        start -= 1;
        text[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    HeaderValue::from_bytes(&text[start..]).unwrap_or(HeaderValue::from_static("99999999S"))
}

/// How close to the deadline an upstream's own expiry still counts as the gateway's.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

/// Whether an upstream status with `code`, `elapsed` into a call given `timeout`, is that
/// call's deadline passing. The upstream got the same deadline as `grpc-timeout` and ends the
/// call itself as it passes: grpcio and grpc-go with DEADLINE_EXCEEDED ("Deadline
/// Exceeded"), tonic with CANCELLED ("Timeout expired"). Its status and the gateway's own
/// timer are then ready together, and whichever is polled first would otherwise decide what
/// the client reads; grpc-go's client also turns a CANCEL at a passed deadline into
/// DEADLINE_EXCEEDED. Callers answer `GatewayError::deadline_exceeded` when this holds.
pub fn is_the_deadline(code: Code, elapsed: Duration, timeout: Duration) -> bool {
    matches!(code, Code::Cancelled | Code::DeadlineExceeded) && elapsed + DEADLINE_SLACK >= timeout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::headers;

    #[test]
    fn grpc_timeout_fits_eight_digits() {
        assert_eq!(grpc_timeout(Duration::from_secs(5)), "5000000u");
        assert_eq!(grpc_timeout(Duration::from_millis(1)), "1000u");
        assert_eq!(grpc_timeout(Duration::from_secs(30 * 60)), "1800000m");
        assert_eq!(grpc_timeout(Duration::from_secs(10_000_000)), "10000000S");
        assert_eq!(grpc_timeout(Duration::from_secs(u64::MAX)), "99999999S");
        assert_eq!(grpc_timeout(Duration::ZERO), "0u");
        assert_eq!(grpc_timeout(Duration::from_micros(99_999_999)), "99999999u");
        assert_eq!(grpc_timeout(Duration::from_micros(100_000_000)), "100000m");
        for value in [1, 999, 100_000, 99_999_999, 100_000_000, u64::MAX] {
            let text = grpc_timeout(Duration::from_micros(value));
            let text = text.to_str().expect("ascii");
            assert!(text.len() <= 9, "{text}");
            assert!(parse_grpc_timeout(text).is_some(), "{text}");
        }
    }

    #[test]
    fn grpc_timeout_grammar() {
        assert_eq!(parse_grpc_timeout("1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "1", "1s", "123456789S", "-1S", "1.5S", " 1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn deadline_is_capped_and_bad_values_are_400() {
        let (def, max) = (Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(deadline(&HeaderMap::new(), def, max).expect("default"), def);
        assert_eq!(
            deadline(&headers(&[("grpc-timeout", "2S")]), def, max).expect("ok"),
            Duration::from_secs(2)
        );
        assert_eq!(
            deadline(&headers(&[("grpc-timeout", "5H")]), def, max).expect("capped"),
            max
        );
        let err = deadline(&headers(&[("grpc-timeout", "soon")]), def, max).expect_err("malformed");
        assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
        assert!(err.message().contains("grpc-timeout"));
    }

    #[test]
    fn x_request_timeout_is_seconds_or_a_duration_and_the_tighter_deadline_wins() {
        let (def, max) = (Duration::from_secs(10), Duration::from_secs(60));
        for (text, want) in [
            ("2", Duration::from_secs(2)),
            ("1.5", Duration::from_millis(1500)),
            ("250ms", Duration::from_millis(250)),
            ("2s", Duration::from_secs(2)),
            ("1m", Duration::from_secs(60)),
            ("90m", max),
        ] {
            let got = deadline(&headers(&[("x-request-timeout", text)]), def, max).expect(text);
            assert_eq!(got, want, "{text:?}");
        }
        for bad in ["", "0", "0.0", "-1", "soon", "1e3", "NaN", "inf", "2 s", "1.2.3"] {
            let err = deadline(&headers(&[("x-request-timeout", bad)]), def, max).expect_err(bad);
            assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST, "{bad:?}");
            assert!(err.message().contains("x-request-timeout"), "{bad:?}");
        }
        let both = headers(&[("grpc-timeout", "3S"), ("x-request-timeout", "2")]);
        assert_eq!(deadline(&both, def, max).expect("both"), Duration::from_secs(2));
        let both = headers(&[("grpc-timeout", "1S"), ("x-request-timeout", "2")]);
        assert_eq!(deadline(&both, def, max).expect("both"), Duration::from_secs(1));
    }
}
