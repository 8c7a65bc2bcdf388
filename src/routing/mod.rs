//! The route table: every (HTTP method, path template) the gateway serves, each bound to one
//! method-table entry, built once at startup and immutable afterwards. `lookup` answers a
//! request path with a route and its variable values, a 405 with the methods that would
//! match, or a 404. Where routes come from (annotations, config rules, unbound methods) and
//! how they are validated lives in `rules.rs`; the template grammar in `template.rs`; dotted
//! field paths on the descriptors in `field_path.rs`. It also names the reserved paths that
//! the gateway answers itself, ahead of any route.

pub mod field_path;
mod rules;
pub mod template;

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;
use prost_reflect::MessageDescriptor;

use crate::codec::ReplyForm;
use crate::codec::http_body::RawTarget;
pub use crate::config::RuleSpec;
use crate::method::Method as Rpc;
use field_path::FieldPath;
pub use rules::{build_table, build_table_with};
pub use template::Template;

/// The paths the gateway answers itself (probes, metrics, the OpenAPI document and its
/// page, in `ops`); they shadow any route with the same path.
pub const RESERVED_PATHS: [&str; 5] = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"];

/// The reserved path `path` is, if it is one (as a `'static` label for logs and metrics).
pub fn reserved(path: &str) -> Option<&'static str> {
    RESERVED_PATHS.iter().copied().find(|p| *p == path)
}

/// Where the request body goes.
#[derive(Debug, Clone)]
pub enum BodyRule {
    /// No body is accepted; every field not bound by the path comes from the query.
    None,
    /// `body: "*"`: the body is the whole request message (minus path fields).
    Whole,
    /// `body: "field"`: the body is that one field.
    Field(FieldPath),
}

/// One servable route.
#[derive(Debug)]
pub struct Route {
    pub http_method: Method,
    pub template: Template,
    pub method: Arc<Rpc>,
    pub input: MessageDescriptor,
    /// The reply type, for rendering what pbjson cannot.
    pub output: MessageDescriptor,
    /// One field path per template variable, in template order.
    pub path_fields: Vec<FieldPath>,
    pub body: BodyRule,
    /// Where the raw request body goes when the body is a `google.api.HttpBody` (the whole
    /// request, or the body field): its bytes and `Content-Type`, whatever the type, in
    /// place of JSON (`codec/http_body.rs`).
    pub raw_body: Option<RawTarget>,
    /// Extra query parameter names (`ids` → `userIDs`).
    pub query_aliases: HashMap<String, FieldPath>,
    /// Answer with only this reply field (its key as printed: json or proto name), as
    /// google.api.http `response_body`.
    pub response_body: Option<String>,
    /// 200, or what a config rule set (201; 204 answers with no body).
    pub success_status: http::StatusCode,
    /// How replies are printed and enum names read: the output options resolved for this
    /// route when the table was built (a request may add `$alt`'s enum numbers).
    pub reply_form: ReplyForm,
    /// How this route's errors are answered (`[errors] format` and its overrides).
    pub error_format: crate::config::ErrorFormat,
    /// Where the route was declared, for errors and logs.
    pub origin: String,
}

/// The result of looking a request up.
#[derive(Debug)]
pub enum Lookup<'a> {
    Found { route: &'a Route, vars: Vec<String> },
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

/// All routes, most specific first, indexed by their first path segment: a lookup tries only
/// the routes that can match, so its cost does not grow with the size of the API (with 1000
/// services, trying every route took about a third of the gateway's time per request).
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// Per literal that some template starts with: the routes that start with it and the
    /// `open` ones, as indices in lookup order.
    by_first: HashMap<String, Vec<usize>>,
    /// The routes whose template starts with a variable (or has no segment), in lookup
    /// order: all that a path can match whose first segment is no route's literal.
    open: Vec<usize>,
}

impl RouteTable {
    /// Orders routes so that the first match is the most specific one.
    pub fn new(mut routes: Vec<Route>) -> RouteTable {
        routes.sort_by_key(|r| std::cmp::Reverse(r.template.specificity()));
        let first_literal = |route: &Route| match route.template.segments.first() {
            Some(template::Segment::Literal(literal)) => Some(literal.clone()),
            _ => None,
        };
        let open: Vec<usize> = (0..routes.len())
            .filter(|&i| first_literal(&routes[i]).is_none())
            .collect();
        let mut by_first: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, route) in routes.iter().enumerate() {
            if let Some(literal) = first_literal(route) {
                by_first.entry(literal).or_default().push(i);
            }
        }
        for indices in by_first.values_mut() {
            indices.extend_from_slice(&open);
            indices.sort_unstable();
        }
        RouteTable {
            routes,
            by_first,
            open,
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for `method` and raw `path` (no query string).
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        match self.candidates(path) {
            Some(indices) => Self::scan(indices.iter().map(|&i| &self.routes[i]), method, path),
            None => Self::scan(self.routes.iter(), method, path),
        }
    }

    /// The routes that can match `path`, from its first segment; `None` (try them all) when
    /// that segment is percent-encoded or holds a `:`, where a literal could match it once
    /// decoded or with a custom verb stripped.
    fn candidates(&self, path: &str) -> Option<&[usize]> {
        let first = path.strip_prefix('/')?.split('/').next().unwrap_or_default();
        if first.contains(['%', ':']) {
            return None;
        }
        Some(self.by_first.get(first).unwrap_or(&self.open))
    }

    fn scan<'a>(routes: impl Iterator<Item = &'a Route>, method: &Method, path: &str) -> Lookup<'a> {
        let mut allowed: Vec<Method> = Vec::new();
        for route in routes {
            if let Some(vars) = route.template.matches(path) {
                if route.http_method == *method {
                    return Lookup::Found { route, vars };
                }
                if !allowed.contains(&route.http_method) {
                    allowed.push(route.http_method.clone());
                }
            }
        }
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            Lookup::MethodNotAllowed(allowed)
        }
    }
}
