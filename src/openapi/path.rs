//! google.api.http path templates → OpenAPI path templates and path parameters. `{var}` and
//! `{a.b}` become one parameter each, named by the field path; a variable that spans several
//! segments (`{name=shelves/*/books/*}`) is still one parameter, whose value carries its
//! slashes, described with a pattern; `*` and `**` outside variables become parameters that
//! bind no field; a `:verb` suffix stays literal. Which field a parameter binds, and its
//! type, is the caller's business.

use crate::routing::template::{Segment, Template};

/// One `{…}` in an OpenAPI path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PathParam {
    pub name: String,
    pub kind: ParamKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ParamKind {
    /// Template variable number `index`. `pattern` is set when the variable is more than one
    /// plain `*`: it then spans segments (or pins literals), and this regex says how.
    Field { index: usize, pattern: Option<String> },
    /// A `*` (`multi: false`) or `**` outside any variable: matched, bound to nothing.
    Wildcard { multi: bool },
}

/// An OpenAPI path with its parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PathShape {
    pub path: String,
    pub params: Vec<PathParam>,
}

/// Converts `template`; `names[i]` names variable `i` (the caller passes json paths).
pub(super) fn openapi_path(template: &Template, names: &[String]) -> PathShape {
    let mut path = String::new();
    let mut params = Vec::new();
    let mut wildcards = 0;
    let mut i = 0;
    while i < template.segments.len() {
        path.push('/');
        let variable = template.variables.iter().enumerate().find(|(_, v)| v.start == i);
        if let Some((index, variable)) = variable {
            let name = names
                .get(index)
                .cloned()
                .unwrap_or_else(|| variable.field_path.join("."));
            let spanned = &template.segments[variable.start..variable.end];
            let pattern = (spanned != [Segment::Single]).then(|| segments_regex(spanned));
            path.push_str(&format!("{{{name}}}"));
            params.push(PathParam {
                name,
                kind: ParamKind::Field { index, pattern },
            });
            i = variable.end.max(i + 1);
            continue;
        }
        match &template.segments[i] {
            Segment::Literal(literal) => path.push_str(literal),
            Segment::Single | Segment::Multi => {
                let multi = template.segments[i] == Segment::Multi;
                let name = loop {
                    wildcards += 1;
                    let candidate = format!("wildcard_{wildcards}");
                    if !names.contains(&candidate) {
                        break candidate;
                    }
                };
                path.push_str(&format!("{{{name}}}"));
                params.push(PathParam {
                    name,
                    kind: ParamKind::Wildcard { multi },
                });
            }
        }
        i += 1;
    }
    if path.is_empty() {
        path.push('/');
    }
    if let Some(verb) = &template.verb {
        path.push(':');
        path.push_str(verb);
    }
    PathShape { path, params }
}

/// An anchored regex for the value of a variable spanning `segments`: `*` is one segment,
/// `**` zero or more, literals match themselves.
fn segments_regex(segments: &[Segment]) -> String {
    let mut regex = String::from("^");
    for (i, segment) in segments.iter().enumerate() {
        let slash = if i == 0 { "" } else { "/" };
        match segment {
            Segment::Literal(literal) => {
                regex.push_str(slash);
                regex.push_str(&escape(literal));
            }
            Segment::Single => {
                regex.push_str(slash);
                regex.push_str("[^/]+");
            }
            Segment::Multi if i == 0 => regex.push_str(".*"),
            Segment::Multi => regex.push_str("(/.*)?"),
        }
    }
    regex.push('$');
    regex
}

fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
