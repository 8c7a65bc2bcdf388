//! Turning rules into routes. Rules come from three sources, merged at startup: the
//! `google.api.http` annotations compiled into the descriptors, the `[[rules]]` of the config
//! file, and (unless disabled) one `POST /{Service}/{Method}` rule per method. Every rule is
//! checked against the method table and the field types; the first bad one stops startup
//! with one line naming it.

use std::collections::HashMap;

use http::Method;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, Value};

use super::field_path::FieldPath;
use super::{BodyRule, Route, RouteTable, Template};
use crate::codec::http_body::RawTarget;
use crate::codec::{ReplyForm, enum_prefix};
use crate::config::{OutputConfig, RuleSpec};
use crate::method::MethodTable;

/// Builds the route table from annotations in `pool`, `config_rules` and, when `unbound` is
/// set, the unbound-method routes.
pub fn build_table(
    pool: &DescriptorPool,
    methods: &MethodTable,
    config_rules: &[RuleSpec],
    unbound: bool,
) -> Result<RouteTable, String> {
    build_table_with(pool, methods, config_rules, unbound, &OutputConfig::default())
}

/// [`build_table`], each route printing its replies by the output options that `output`
/// and its rule resolve to (once, here, so that a request pays nothing for them).
pub fn build_table_with(
    pool: &DescriptorPool,
    methods: &MethodTable,
    config_rules: &[RuleSpec],
    unbound: bool,
    output: &OutputConfig,
) -> Result<RouteTable, String> {
    let mut specs = annotation_rules(pool, methods)?;
    specs.extend_from_slice(config_rules);
    if unbound {
        for entry in methods.iter() {
            specs.push(RuleSpec {
                selector: entry.full_name.clone(),
                http_method: Method::POST,
                template: entry.grpc_path.to_string(),
                body: "*".to_string(),
                origin: format!("unbound method {}", entry.full_name),
                ..RuleSpec::default()
            });
        }
    }
    let mut routes: Vec<Route> = Vec::with_capacity(specs.len());
    let mut seen: HashMap<(Method, String), String> = HashMap::new();
    for spec in &specs {
        let route = build_route(pool, methods, spec, output).map_err(|why| {
            format!(
                "{} ({} {} {}): {why}",
                spec.origin, spec.selector, spec.http_method, spec.template
            )
        })?;
        let key = (route.http_method.clone(), route.template.as_str().to_string());
        if let Some(first) = seen.get(&key) {
            if spec.origin.starts_with("unbound method") {
                continue; // an explicit rule already serves this path
            }
            return Err(format!(
                "{}: {} {} is already routed by {first}",
                spec.origin, key.0, key.1
            ));
        }
        seen.insert(key, spec.origin.clone());
        routes.push(route);
    }
    Ok(RouteTable::new(routes))
}

fn build_route(
    pool: &DescriptorPool,
    methods: &MethodTable,
    spec: &RuleSpec,
    output: &OutputConfig,
) -> Result<Route, String> {
    let Some(entry) = methods.find(&spec.selector) else {
        let described = lookup_method(pool, &spec.selector).is_some();
        return Err(if described {
            format!("method {} has no codec in this build", spec.selector)
        } else {
            let known: Vec<&str> = methods.iter().map(|m| m.full_name.as_str()).collect();
            format!(
                "no method {:?}; known methods: {}",
                spec.selector,
                known.join(", ")
            )
        });
    };
    let method = lookup_method(pool, &spec.selector)
        .ok_or_else(|| format!("method {} missing from descriptors", spec.selector))?;
    let input = method.input();
    let template = Template::parse(&spec.template).map_err(|e| e.to_string())?;

    let mut path_fields = Vec::new();
    for var in &template.variables {
        let path = FieldPath::resolve(&input, &var.field_path)?;
        let leaf = path.leaf();
        if leaf.is_list() || leaf.is_map() || matches!(leaf.kind(), Kind::Message(_)) {
            return Err(format!(
                "path variable {} must be a singular scalar or enum field",
                path.json_path()
            ));
        }
        path_fields.push(path);
    }

    let body = match spec.body.as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        field => {
            let path = FieldPath::resolve(&input, &[field])?;
            // A path variable inside the body field (`{book.name}` with body "book") is the
            // canonical update form: the path value is merged into the body.
            BodyRule::Field(path)
        }
    };
    if spec.http_method == Method::GET && !matches!(body, BodyRule::None) {
        return Err("a GET rule cannot take a body".to_string());
    }
    let raw_body = match &body {
        BodyRule::None => None,
        BodyRule::Whole => RawTarget::whole(&input),
        BodyRule::Field(path) => RawTarget::field(&path.fields),
    };

    let mut query_aliases = HashMap::new();
    for (alias, target) in &spec.query_aliases {
        let names: Vec<&str> = target.split('.').collect();
        let path = FieldPath::resolve(&input, &names).map_err(|e| format!("query alias {alias:?}: {e}"))?;
        if matches!(body, BodyRule::Whole) {
            return Err(format!(
                "query alias {alias:?} can never apply: body \"*\" takes every field"
            ));
        }
        query_aliases.insert(alias.clone(), path);
    }

    let options = output.resolve(&spec.selector, &spec.output);
    let response_body = match spec.response_body.as_str() {
        "" => None,
        field => {
            let output = method.output();
            let found = output
                .get_field_by_json_name(field)
                .or_else(|| output.get_field_by_name(field));
            let field = found.ok_or_else(|| {
                format!(
                    "response_body: reply {} has no field {field:?}",
                    output.full_name()
                )
            })?;
            // The key the reply is printed with.
            let key = if options.use_proto_names {
                field.name()
            } else {
                field.json_name()
            };
            Some(key.to_string())
        }
    };
    let success_status = match spec.success_status {
        None => http::StatusCode::OK,
        Some(code @ 200..=299) => {
            http::StatusCode::from_u16(code).map_err(|_| format!("success_status {code} is not a status"))?
        }
        Some(code) => return Err(format!("success_status {code} is not a 2xx status")),
    };
    if entry.raw_reply && response_body.is_some() {
        return Err("response_body does not apply to a google.api.HttpBody reply".to_string());
    }
    if entry.is_streaming() && (response_body.is_some() || spec.success_status.is_some()) {
        return Err("response_body and success_status do not apply to a streaming method".to_string());
    }
    if success_status == http::StatusCode::NO_CONTENT && response_body.is_some() {
        return Err("success_status 204 sends no body, so response_body cannot apply".to_string());
    }

    if options.strip_enum_prefix
        && let Some(clash) =
            enum_prefix::collisions(&input).or_else(|| enum_prefix::collisions(&method.output()))
    {
        return Err(clash);
    }
    Ok(Route {
        reply_form: ReplyForm::of(options),
        error_format: options.error_format,
        output: method.output(),
        response_body,
        success_status,
        http_method: spec.http_method.clone(),
        template,
        method: entry.clone(),
        input,
        path_fields,
        body,
        raw_body,
        query_aliases,
        origin: spec.origin.clone(),
    })
}

fn lookup_method(pool: &DescriptorPool, full_name: &str) -> Option<prost_reflect::MethodDescriptor> {
    let (service, method) = full_name.rsplit_once('.')?;
    pool.get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

/// Reads `google.api.http` from every method that carries it, additional bindings included.
fn annotation_rules(pool: &DescriptorPool, methods: &MethodTable) -> Result<Vec<RuleSpec>, String> {
    let Some(http) = pool.get_extension_by_name("google.api.http") else {
        return Ok(Vec::new());
    };
    let mut specs = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(&http) {
                continue;
            }
            let selector = method.full_name().to_string();
            if methods.find(&selector).is_none() {
                tracing::warn!(method = %selector, "google.api.http on a method without a codec is not served");
                continue;
            }
            let origin = format!("annotation on {selector}");
            if let Value::Message(rule) = options.get_extension(&http).as_ref() {
                push_http_rule(&mut specs, &selector, &origin, rule)?;
                if let Some(Value::List(more)) = rule
                    .get_field_by_name("additional_bindings")
                    .map(|v| v.into_owned())
                {
                    for (i, extra) in more.iter().enumerate() {
                        if let Value::Message(extra) = extra {
                            push_http_rule(
                                &mut specs,
                                &selector,
                                &format!("{origin}, additional binding {}", i + 1),
                                extra,
                            )?;
                        }
                    }
                }
            }
        }
    }
    Ok(specs)
}

fn push_http_rule(
    specs: &mut Vec<RuleSpec>,
    selector: &str,
    origin: &str,
    rule: &DynamicMessage,
) -> Result<(), String> {
    let mut pattern = None;
    for (field, method) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if rule.has_field_by_name(field) {
            pattern = Some((method, string_field(rule, field)));
        }
    }
    if rule.has_field_by_name("custom")
        && let Some(Value::Message(custom)) = rule.get_field_by_name("custom").map(|v| v.into_owned())
    {
        let kind = string_field(&custom, "kind");
        let method = Method::from_bytes(kind.as_bytes())
            .map_err(|_| format!("{origin}: bad custom method {kind:?}"))?;
        pattern = Some((method, string_field(&custom, "path")));
    }
    let Some((http_method, template)) = pattern else {
        return Err(format!("{origin}: google.api.http rule has no pattern"));
    };
    specs.push(RuleSpec {
        selector: selector.to_string(),
        http_method,
        template,
        body: string_field(rule, "body"),
        response_body: string_field(rule, "response_body"),
        origin: origin.to_string(),
        ..RuleSpec::default()
    });
    Ok(())
}

/// A string field of a dynamic message, or `""` when unset.
fn string_field(message: &DynamicMessage, name: &str) -> String {
    match message.get_field_by_name(name).map(|v| v.into_owned()) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
