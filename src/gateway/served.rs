//! Whether the upstream serves what the schema describes. A gateway started without
//! `--schema` fronts the demo's `MyService`; put in front of another service it would look
//! healthy and answer 404 to every route the user expects. So, off the request path, the
//! schema's services are compared with the ones the upstream lists over gRPC server
//! reflection: at startup, after every schema change and after an UNIMPLEMENTED answer.
//! When the upstream serves none of them, a warning names the mismatch and the cure, and
//! `/readyz` answers 503 with the same words until a check finds them again.
//!
//! An upstream without reflection cannot be asked: then the first UNIMPLEMENTED answer
//! (at most one warning per `NUDGE_INTERVAL` of `schema/live.rs`) says that the upstream
//! may not serve the schema, and `/readyz` is left to its health check. A `reflection`
//! schema is the upstream's own list, so it is not checked; `[schema] check_upstream = false`
//! turns the reflection check off (for an upstream that must see no other calls than the
//! API's).

use std::sync::Weak;
use std::time::Duration;

use futures_util::FutureExt as _;

use super::Gateway;
use crate::config::SchemaSource;
use crate::schema::Schema;
use crate::schema::reflection::{self, ReflectionError};

/// A reflection listing gets this long.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest pause between checks while the upstream does not answer.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// How often an idle watch wakes to notice that its gateway is gone.
const IDLE_WAKE: Duration = Duration::from_secs(60);

/// The services of `schema`'s methods, in table order, each once.
pub fn services(schema: &Schema) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for method in schema.methods().iter() {
        let service = method
            .full_name
            .rsplit_once('.')
            .map_or(method.full_name.as_str(), |(service, _)| service);
        if !names.iter().any(|n| n == service) {
            names.push(service.to_string());
        }
    }
    names
}

/// The methods of `schema`'s services that the method table leaves out (those without a
/// codec in this build; every shape has one otherwise), by full name.
pub fn not_served(schema: &Schema) -> Vec<String> {
    schema
        .pool()
        .services()
        .flat_map(|service| service.methods().collect::<Vec<_>>())
        .filter(|method| schema.methods().find(method.full_name()).is_none())
        .map(|method| method.full_name().to_string())
        .collect()
}

/// The routes of `schema` in the reader's order: those of rules and annotations first,
/// grouped by service, then the unbound `POST /Service/Method` ones (as `/docs` shows them).
pub fn routes_in_reading_order(schema: &Schema) -> Vec<&crate::routing::Route> {
    let mut routes: Vec<&crate::routing::Route> = schema.routes().routes().iter().collect();
    routes.sort_by_key(|route| {
        let unbound = route.origin.starts_with("unbound method");
        let service = route
            .method
            .full_name
            .rsplit_once('.')
            .map_or(String::new(), |(service, _)| service.to_string());
        (unbound, service)
    });
    routes
}

/// The warning for an upstream that lists `listed` while the schema has `wanted`, or `None`
/// when they share a service (or the schema has none to compare).
pub fn mismatch(
    upstream: &str,
    source: &SchemaSource,
    listed: &[String],
    wanted: &[String],
) -> Option<String> {
    if wanted.is_empty() || wanted.iter().any(|w| listed.contains(w)) {
        return None;
    }
    let serves = if listed.is_empty() {
        "no service".to_string()
    } else {
        listed.join(", ")
    };
    let cure = if *source == SchemaSource::Reflection {
        "check --upstream".to_string()
    } else {
        "did you mean --schema reflection?".to_string()
    };
    Some(format!(
        "the upstream at {upstream} serves {serves}, not {}: {cure}",
        wanted.join(", ")
    ))
}

/// Runs the check for as long as the gateway lives (spawned by `reload::spawn`).
pub async fn watch(gateway: Weak<Gateway>) {
    let mut retry = Duration::from_millis(500);
    let mut due = true;
    // The schema installed at startup left a wake-up; the first check covers it.
    if let Some(strong) = gateway.upgrade() {
        let _ = strong.schema.changed().now_or_never();
    }
    loop {
        let Some(strong) = gateway.upgrade() else {
            return;
        };
        let live = strong.schema.clone();
        // After a definite answer, the timer only notices a gateway that is gone.
        let mut pause = IDLE_WAKE;
        if due {
            due = false;
            match check(&strong).await {
                Checked::Done => retry = Duration::from_millis(500),
                Checked::Unreachable => {
                    retry = (retry * 2).min(MAX_RETRY);
                    pause = retry;
                    due = true;
                }
            }
        }
        drop(strong);
        let wake = tokio::select! {
            () = live.unimplemented() => Wake::Unimplemented,
            () = live.changed() => Wake::Changed,
            () = tokio::time::sleep(pause) => Wake::Timer,
        };
        drop(live);
        match wake {
            Wake::Changed => due = true,
            Wake::Unimplemented => {
                due = true;
                warn_unknowable(&gateway);
            }
            Wake::Timer => {}
        }
    }
}

/// What woke the watch.
enum Wake {
    Unimplemented,
    Changed,
    Timer,
}

/// After an UNIMPLEMENTED answer from an upstream that serves no reflection: the one hint
/// that can be given.
fn warn_unknowable(gateway: &Weak<Gateway>) {
    if let Some(strong) = gateway.upgrade()
        && strong.schema.no_reflection_to_check()
        && let Some(schema) = strong.schema()
    {
        tracing::warn!(
            upstream = %strong.config.upstream.url,
            services = services(&schema).join(", "),
            "an upstream call answered UNIMPLEMENTED and the upstream serves no reflection to \
             check against: it may not serve these services; check --upstream and --schema"
        );
    }
}

enum Checked {
    /// The upstream answered (or cannot be asked); wait for the next change.
    Done,
    /// Try again later.
    Unreachable,
}

/// One comparison; notes the outcome in the live schema and logs a change of verdict.
async fn check(gateway: &Gateway) -> Checked {
    let live = &gateway.schema;
    let Some(schema) = live.get() else {
        return Checked::Unreachable;
    };
    if *live.source() == SchemaSource::Reflection || !gateway.config.schema.check_upstream {
        return Checked::Done;
    }
    let upstream = gateway.config.upstream.url.to_string();
    match reflection::services(&gateway.upstream, LIST_TIMEOUT).await {
        Ok(listed) => {
            live.set_no_reflection(false);
            let verdict = mismatch(&upstream, live.source(), &listed, &services(&schema));
            // Said once per change of verdict, not at every check.
            match (&verdict, live.mismatch()) {
                (Some(warning), before) if before.as_ref() != Some(warning) => {
                    tracing::warn!(upstream, warning, "the upstream does not serve the schema");
                }
                (None, Some(_)) => tracing::info!(upstream, "the upstream serves the schema again"),
                _ => {}
            }
            live.set_mismatch(verdict);
            Checked::Done
        }
        Err(ReflectionError::NotServed(_)) => {
            live.set_no_reflection(true);
            live.set_mismatch(None);
            Checked::Done
        }
        Err(ReflectionError::Unreachable(_)) => Checked::Unreachable,
        Err(ReflectionError::Bad(why)) => {
            tracing::debug!(upstream, why, "reflection listing unusable; services not checked");
            Checked::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn demo_schema_in_front_of_routeguide_names_both_and_the_cure() {
        let warning = mismatch(
            "http://127.0.0.1:50051/",
            &SchemaSource::Compiled,
            &names(&["routeguide.RouteGuide"]),
            &names(&["MyService"]),
        );
        assert_eq!(
            warning.as_deref(),
            Some(
                "the upstream at http://127.0.0.1:50051/ serves routeguide.RouteGuide, not \
                 MyService: did you mean --schema reflection?"
            )
        );
    }

    #[test]
    fn one_shared_service_is_no_mismatch() {
        let listed = names(&["MyService", "other.Thing"]);
        let wanted = names(&["MyService", "protogate.test.Everything"]);
        assert_eq!(mismatch("u", &SchemaSource::Compiled, &listed, &wanted), None);
        assert_eq!(mismatch("u", &SchemaSource::Compiled, &listed, &[]), None);
    }

    #[test]
    fn an_upstream_listing_nothing_is_named_as_such() {
        let warning = mismatch("u", &SchemaSource::Compiled, &[], &names(&["MyService"]));
        assert_eq!(
            warning.as_deref(),
            Some("the upstream at u serves no service, not MyService: did you mean --schema reflection?")
        );
    }
}
