//! Parsers for single config values: the upstream URL and durations (`250ms`, `10s`, `5m`,
//! `1h`), each failing with a message that names the key.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Uri;

use super::ConfigError;

pub(super) fn parse_upstream_url(text: &str) -> Result<Uri, ConfigError> {
    let bad = |why: &str| ConfigError(format!("upstream.url: {text:?} {why}"));
    let uri: Uri = text.parse().map_err(|_| bad("is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err(bad("must not have a path"));
    }
    Ok(uri)
}

/// Parses `250ms`, `10s`, `5m` or `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

pub(super) fn positive(key: &str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError(format!("{key} must be at least 1")));
    }
    Ok(value)
}

pub(super) fn duration(key: &str, value: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_string());
    match parse_duration(&text) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(ConfigError(format!(
            "{key}: {text:?} is not a positive duration such as 250ms, 10s or 5m"
        ))),
    }
}

/// The first key of a `[<section>.services]` or `[<section>.methods]` table that names
/// nothing in the schema, as an error line; `None` when every key names something.
pub(super) fn unknown_selector<S, M>(
    section: &str,
    services: &BTreeMap<String, S>,
    methods: &BTreeMap<String, M>,
    is_service: impl Fn(&str) -> bool,
    is_method: impl Fn(&str) -> bool,
) -> Option<String> {
    if let Some(name) = services.keys().find(|s| !is_service(s)) {
        return Some(format!(
            "{section}.services.{name:?}: the schema has no such service"
        ));
    }
    let name = methods.keys().find(|m| !is_method(m))?;
    Some(format!(
        "{section}.methods.{name:?}: the schema has no such method"
    ))
}
