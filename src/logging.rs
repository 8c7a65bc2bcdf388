//! Log output: one JSON object per line on stdout (text on a terminal), written off the
//! request path. Text lines carry ANSI colours only when stdout is a terminal: written to a
//! file or a pipe (`--log-format text > gateway.log`) they are plain. It owns the line format and the writer, not what is logged (the access log
//! line is `gateway/access.rs`'s).
//!
//! The JSON line is the shape operators already parse: `timestamp` (RFC 3339 UTC,
//! microseconds), `level`, then the event's fields in order, `message` first. It is written by
//! `JsonLines` rather than tracing-subscriber's JSON formatter, which builds each line through
//! serde's map machinery and formats the date from scratch per event: that was most of the
//! cost of the access log (callgrind: about 16k instructions per request, now about 3k). The
//! date part is formatted once per second per thread.
//!
//! Lines go through `log_writer.rs`: appended to one buffer that a thread of its own writes
//! to stdout in batches, so the request path never waits on, or wakes anything for, a write
//! syscall. If stdout stalls and the buffer fills, lines are dropped rather than requests
//! stalled, and counted: `protogate_log_lines_dropped_total` on `/metrics`.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::log_writer::{self, WriterGuard};

/// Keeps the log writer's thread alive; dropping it flushes what is queued. Hold it until
/// the end of `main`.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] Option<WriterGuard>);

/// Installs the global subscriber: `json` (the default when stdout is not a terminal) or
/// `text`, filtered by `RUST_LOG` (default `default_level`, `info` for the gateway).
pub fn init(format: Option<&str>, default_level: &str) -> LogGuard {
    let terminal = std::io::stdout().is_terminal();
    let json = match format {
        Some("text") => false,
        Some(_) => true,
        None => !terminal,
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(terminal);
    // Without a thread for the writer (never seen), lines go straight to stdout.
    let Ok((writer, guard)) = log_writer::start(std::io::stdout()) else {
        let builder = builder.with_writer(std::io::stdout);
        if json {
            builder.event_format(JsonLines).init();
        } else {
            builder.init();
        }
        return LogGuard(None);
    };
    let builder = builder.with_writer(writer);
    if json {
        builder.event_format(JsonLines).init();
    } else {
        builder.init();
    }
    LogGuard(Some(guard))
}

/// Log lines dropped so far because the output could not keep up (0 before `init`).
pub fn dropped_lines() -> usize {
    log_writer::dropped_lines()
}

/// The JSON line format (see the module docs).
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_line(
            writer,
            event.metadata().level().as_str(),
            SystemTime::now(),
            |visitor| {
                event.record(visitor);
            },
        )
    }
}

/// Writes one line: timestamp, level, then the fields `record` gives to the visitor.
fn write_line<W: fmt::Write>(
    mut writer: W,
    level: &str,
    now: SystemTime,
    record: impl FnOnce(&mut FieldWriter<&mut W>),
) -> fmt::Result {
    writer.write_str("{\"timestamp\":\"")?;
    write_timestamp(&mut writer, now)?;
    writer.write_str("\",\"level\":\"")?;
    writer.write_str(level)?;
    writer.write_char('"')?;
    let mut fields = FieldWriter {
        out: &mut writer,
        result: Ok(()),
    };
    record(&mut fields);
    fields.result?;
    writer.write_str("}\n")
}

/// Appends `,"name":value` per field; strings are JSON-escaped, numbers and booleans bare.
struct FieldWriter<W> {
    out: W,
    result: fmt::Result,
}

impl<W: fmt::Write> FieldWriter<W> {
    fn key(&mut self, field: &Field) {
        self.push(",\"");
        self.escaped(field.name());
        self.push("\":");
    }

    fn push(&mut self, text: &str) {
        if self.result.is_ok() {
            self.result = self.out.write_str(text);
        }
    }

    fn escaped(&mut self, text: &str) {
        if self.result.is_ok() {
            self.result = escape_into(&mut self.out, text);
        }
    }

    fn display(&mut self, value: impl fmt::Display) {
        if self.result.is_ok() {
            self.result = write!(self.out, "{value}");
        }
    }
}

thread_local! {
    /// Scratch space for `Debug` values, which must be escaped after formatting.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<W: fmt::Write> Visit for FieldWriter<W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        self.push("\"");
        self.escaped(value);
        self.push("\"");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.display(value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.display(value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // JSON has no NaN or infinity; serde_json writes null for them, and so do we.
        if value.is_finite() {
            self.display(value);
        } else {
            self.push("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.push(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.push("\"");
        // Taken, not borrowed, so that a Debug impl that logs cannot trip over it.
        let mut scratch = SCRATCH.with(RefCell::take);
        scratch.clear();
        if write!(scratch, "{value:?}").is_err() {
            self.result = Err(fmt::Error);
        }
        self.escaped(&scratch);
        SCRATCH.with(|cell| cell.replace(scratch));
        self.push("\"");
    }
}

fn needs_escape(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// JSON string escaping (RFC 8259 §7): quote, backslash and control characters.
fn escape_into(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.bytes().position(needs_escape) {
        out.write_str(&rest[..at])?;
        match rest.as_bytes()[at] {
            b'"' => out.write_str("\\\"")?,
            b'\\' => out.write_str("\\\\")?,
            b'\n' => out.write_str("\\n")?,
            b'\r' => out.write_str("\\r")?,
            b'\t' => out.write_str("\\t")?,
            other => write!(out, "\\u{other:04x}")?,
        }
        rest = &rest[at + 1..];
    }
    out.write_str(rest)
}

thread_local! {
    /// The second the cached prefix is for, and `YYYY-MM-DDTHH:MM:SS` of it.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `2026-12-01T08:25:25.018276Z`.
fn write_timestamp(writer: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != seconds {
            cached.1.clear();
            let date =
                chrono::DateTime::from_timestamp(i64::try_from(seconds).unwrap_or(0), 0).unwrap_or_default();
            write!(cached.1, "{}", date.format("%Y-%m-%dT%H:%M:%S"))?;
            cached.0 = seconds;
        }
        writer.write_str(&cached.1)
    })?;
    write!(writer, ".{:06}Z", since.subsec_micros())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn line(record: impl FnOnce(&mut FieldWriter<&mut &mut String>)) -> String {
        let mut out = String::new();
        let at = UNIX_EPOCH + Duration::new(1_796_113_525, 18_276_000);
        write_line(&mut out, "INFO", at, record).expect("formats");
        out
    }

    #[test]
    fn timestamp_is_rfc3339_utc_with_microseconds() {
        let mut out = String::new();
        write_timestamp(&mut out, UNIX_EPOCH + Duration::new(1_796_113_525, 18_276_999)).expect("formats");
        assert_eq!(out, "2026-12-01T08:25:25.018276Z");
        out.clear();
        write_timestamp(&mut out, UNIX_EPOCH).expect("formats");
        assert_eq!(out, "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn strings_are_escaped_and_the_line_is_valid_json() {
        let text = line(|fields| {
            fields.push(",\"message\":\"request\"");
            fields.push(",\"odd\":\"");
            fields.escaped("quote\" back\\ nl\n tab\t bell\u{7} é");
            fields.push("\"");
        });
        assert!(text.ends_with("}\n"));
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["timestamp"], "2026-12-01T08:25:25.018276Z");
        assert_eq!(value["level"], "INFO");
        assert_eq!(value["message"], "request");
        assert_eq!(value["odd"], "quote\" back\\ nl\n tab\t bell\u{7} é");
    }

    #[test]
    fn events_render_with_their_fields_in_order() {
        use tracing_subscriber::layer::SubscriberExt;

        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(move || Sink(sink.clone()))
            .finish()
            .with(tracing_subscriber::filter::LevelFilter::INFO);
        tracing::subscriber::with_default(subscriber, || {
            let method = http::Method::GET;
            tracing::info!(request_id = "r-1", %method, status = 200u16, grpc_code = 0, latency_ms = 1.5, ok = true, "request");
            tracing::warn!(latency_ms = f64::NAN, "odd \"one\"");
        });
        let text = String::from_utf8(lines.lock().expect("lock").clone()).expect("utf-8");
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(records.len(), 2, "{text}");
        let first = &records[0];
        let keys: Vec<&str> = first
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "message",
                "request_id",
                "method",
                "status",
                "grpc_code",
                "latency_ms",
                "ok"
            ]
        );
        assert_eq!(first["method"], "GET");
        assert_eq!(first["status"], 200);
        assert_eq!(first["latency_ms"], 1.5);
        assert_eq!(first["ok"], true);
        assert_eq!(records[1]["level"], "WARN");
        assert_eq!(records[1]["message"], "odd \"one\"");
        assert_eq!(records[1]["latency_ms"], serde_json::Value::Null);
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
