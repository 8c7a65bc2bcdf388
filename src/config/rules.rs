//! The rule and parameter settings of the config file as plain data: `[[rules]]` become
//! `RuleSpec`s (also the shape every other rule source is turned into), and
//! `unknown_query_parameters` an `UnknownParams`. Checking a rule against the descriptors
//! is routing's work (`routing::rules`); this module only knows what the file says.

use std::collections::BTreeMap;

use http::Method;
use serde::Deserialize;

use super::ConfigError;
use super::output::OutputOverrides;

/// One rule before validation, whatever its source.
#[derive(Debug, Clone, Default)]
pub struct RuleSpec {
    /// The method's full name, `MyService.User`.
    pub selector: String,
    pub http_method: Method,
    pub template: String,
    /// `""` for no body, `"*"` for the whole message, or a top-level field name.
    pub body: String,
    /// Query parameter alias → dotted field path.
    pub query_aliases: Vec<(String, String)>,
    /// `""` for the whole reply, or a top-level reply field to answer with instead.
    pub response_body: String,
    /// The HTTP status of a successful call (200 unless a config rule says otherwise).
    pub success_status: Option<u16>,
    /// The output options this rule sets over its method's (`output.rs`).
    pub output: OutputOverrides,
    /// Human-readable origin, such as `config rule 2` or `annotation on MyService.User`.
    pub origin: String,
}

/// What to do with a query parameter that names no field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownParams {
    Reject,
    Ignore,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    selector: String,
    get: Option<String>,
    put: Option<String>,
    post: Option<String>,
    delete: Option<String>,
    patch: Option<String>,
    custom: Option<RawCustom>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    query_aliases: BTreeMap<String, String>,
    #[serde(default)]
    response_body: String,
    success_status: Option<u16>,
    emit_unpopulated: Option<bool>,
    use_proto_names: Option<bool>,
    enums_as_numbers: Option<bool>,
    strip_enum_prefix: Option<bool>,
    error_format: Option<super::ErrorFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustom {
    kind: String,
    path: String,
}

impl RawRule {
    pub(super) fn into_spec(self, number: usize) -> Result<RuleSpec, ConfigError> {
        let origin = format!("config rule {number}");
        let mut patterns: Vec<(Method, String)> = [
            (Method::GET, self.get),
            (Method::PUT, self.put),
            (Method::POST, self.post),
            (Method::DELETE, self.delete),
            (Method::PATCH, self.patch),
        ]
        .into_iter()
        .filter_map(|(m, p)| p.map(|p| (m, p)))
        .collect();
        if let Some(custom) = self.custom {
            let method = Method::from_bytes(custom.kind.as_bytes()).map_err(|_| {
                ConfigError(format!(
                    "{origin} ({}): bad custom method {:?}",
                    self.selector, custom.kind
                ))
            })?;
            patterns.push((method, custom.path));
        }
        let (http_method, template) = match patterns.len() {
            1 => patterns.remove(0),
            n => {
                return Err(ConfigError(format!(
                    "{origin} ({}): needs exactly one of get, put, post, delete, patch, custom; found {n}",
                    self.selector
                )));
            }
        };
        Ok(RuleSpec {
            selector: self.selector.trim_start_matches('.').to_string(),
            http_method,
            template,
            body: self.body,
            query_aliases: self.query_aliases.into_iter().collect(),
            response_body: self.response_body,
            success_status: self.success_status,
            output: OutputOverrides {
                emit_unpopulated: self.emit_unpopulated,
                use_proto_names: self.use_proto_names,
                enums_as_numbers: self.enums_as_numbers,
                strip_enum_prefix: self.strip_enum_prefix,
                error_format: self.error_format,
            },
            origin,
        })
    }
}
