//! The reload loop of a runtime schema source: reads the source again every
//! `schema.refresh_interval` (reflection each time, files when their modification time
//! changed), on SIGHUP, and soon after an upstream answered UNIMPLEMENTED. While no first
//! schema has come (reflection with the upstream still down) it tries after 1 s, doubling
//! up to 5 s (never beyond the interval). Each outcome is one log line and one
//! `protogate_schema_reloads_total` count; a refused schema leaves the last good one serving,
//! and while there is none yet the line says so ("no schema yet").
//!
//! [`announce`] writes the line that says what the gateway serves: at startup, whatever the
//! source, and at every schema change (`schema loaded`, with the source, the upstream, the
//! services, and the numbers of methods and routes). `spawn` also starts the check of
//! whether the upstream serves those services (`served.rs`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Gateway, served};
use crate::config::SchemaSource;
use crate::schema::Schema;
use crate::schema::live::{LiveSchema, Reloaded};

/// The longest pause between tries while no first schema has come: an upstream that is
/// starting is noticed within seconds, whatever the refresh interval.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// What made the loop read the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Interval,
    Signal,
    Unimplemented,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Interval => "interval",
            Trigger::Signal => "sighup",
            Trigger::Unimplemented => "unimplemented",
        }
    }
}

/// The SIGHUP listener, installed before the gateway says it is listening: from then on a
/// SIGHUP never takes the signal's default action (ending the process).
#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn listen_for_hangup() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn listen_for_hangup() -> Hangup {}

/// The next SIGHUP (never, where there is no listener).
#[cfg(unix)]
async fn hangup(listener: &mut Hangup) {
    if let Some(signal) = listener.as_mut()
        && signal.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}
#[cfg(not(unix))]
async fn hangup(_listener: &mut Hangup) {
    std::future::pending().await
}

/// Starts the loop for `gateway`'s schema source; it ends when the gateway is dropped. The
/// compiled schema has nothing to reload: a SIGHUP (sent by habit, or by a tool that sends
/// it to every process it manages) is logged and otherwise ignored, never fatal.
pub fn spawn(gateway: &Arc<Gateway>) {
    let hangups = listen_for_hangup();
    let weak = Arc::downgrade(gateway);
    // A reflection source announced its first schema when it read it (`first_schema`).
    if *gateway.schema.source() != SchemaSource::Reflection
        && let Some(schema) = gateway.schema()
    {
        announce(gateway, &schema, "startup");
    }
    tokio::spawn(served::watch(weak.clone()));
    if *gateway.schema.source() == SchemaSource::Compiled {
        tokio::spawn(ignore_hangups(weak, hangups));
        return;
    }
    let live = gateway.schema.clone();
    let interval = gateway.config.schema.refresh_interval;
    tokio::spawn(run(weak, live, interval, hangups));
}

async fn ignore_hangups(gateway: Weak<Gateway>, mut hangups: Hangup) {
    loop {
        hangup(&mut hangups).await;
        if gateway.strong_count() == 0 {
            return;
        }
        tracing::info!(
            source = "compiled",
            trigger = Trigger::Signal.as_str(),
            why = "the compiled schema is built into the binary; a runtime source \
                   (reflection, descriptors:PATH or protos:DIR) reloads",
            "schema not reloaded"
        );
    }
}

async fn run(gateway: Weak<Gateway>, live: Arc<LiveSchema>, interval: Duration, mut hangups: Hangup) {
    let mut retry = Duration::from_secs(1);
    loop {
        let waiting = live.get().is_none();
        let pause = if waiting { retry.min(interval) } else { interval };
        let trigger = tokio::select! {
            _ = tokio::time::sleep(pause) => Trigger::Interval,
            () = hangup(&mut hangups) => Trigger::Signal,
            () = live.nudged() => Trigger::Unimplemented,
        };
        if trigger == Trigger::Interval && !waiting && is_file_source(live.source()) && !live.files_changed()
        {
            continue;
        }
        let Some(gateway) = gateway.upgrade() else {
            return;
        };
        let loaded = reload(&gateway, trigger.as_str()).await;
        retry = if loaded || !waiting {
            Duration::from_secs(1)
        } else {
            (retry * 2).min(MAX_RETRY)
        };
    }
}

fn is_file_source(source: &SchemaSource) -> bool {
    matches!(source, SchemaSource::Descriptors(_) | SchemaSource::Protos(_))
}

/// Reads the source once and swaps in what it gives; true when a schema is in use after.
pub async fn reload(gateway: &Gateway, trigger: &str) -> bool {
    let live = &gateway.schema;
    let source = live.source().to_string();
    match live.fetch(&gateway.config, &gateway.upstream).await {
        Ok(None) => {
            gateway.metrics.schema_reloaded("unchanged");
            tracing::debug!(source, trigger, "schema unchanged");
            true
        }
        Ok(Some(schema)) => {
            let hash = schema.hash().to_string();
            match live.install(schema) {
                Reloaded::Changed => {
                    gateway.metrics.schema_reloaded("changed");
                    if let Some(schema) = live.get() {
                        announce(gateway, &schema, trigger);
                    }
                }
                // Another reload installed these descriptors meanwhile.
                Reloaded::Unchanged => {
                    gateway.metrics.schema_reloaded("unchanged");
                    tracing::debug!(source, hash, trigger, "schema unchanged");
                }
            }
            true
        }
        Err(err) => {
            gateway.metrics.schema_reloaded("error");
            live.still_waiting(&err);
            let upstream = gateway.config.upstream.url.to_string();
            match live.get() {
                Some(serving) => tracing::warn!(
                    source,
                    trigger,
                    error = %err,
                    serving = serving.hash(),
                    "schema refused; the last good one keeps serving"
                ),
                None => tracing::warn!(
                    source,
                    upstream,
                    trigger,
                    error = %err,
                    "no schema yet: answering 503 until the source gives one"
                ),
            }
            live.get().is_some()
        }
    }
}

/// The line that says what the gateway serves from now on: `schema loaded`, with the source,
/// the upstream, the services, the numbers of methods and routes, and the methods of the
/// schema that are not served (a compiled schema's methods without a codec), if any.
pub fn announce(gateway: &Gateway, schema: &Schema, trigger: &str) {
    let services = served::services(schema).join(", ");
    let unserved = served::not_served(schema);
    let source = gateway.schema.source().to_string();
    let upstream = gateway.config.upstream.url.to_string();
    let methods = schema.methods().iter().count();
    let routes = schema.routes().routes().len();
    let hash = schema.hash();
    if unserved.is_empty() {
        tracing::info!(
            source,
            upstream,
            services,
            methods,
            routes,
            hash,
            trigger,
            "schema loaded"
        );
    } else {
        // Say which methods a route will never reach, rather than leave them to be found by 404s.
        let not_served = unserved.join(", ");
        tracing::info!(
            source,
            upstream,
            services,
            methods,
            routes,
            hash,
            trigger,
            not_served,
            "schema loaded"
        );
    }
}
