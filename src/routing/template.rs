//! google.api.http path templates: parsing and matching one template against one path.
//!
//! The grammar is the one in `google/api/http.proto`:
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//! `{var}` means `{var=*}`. `**` matches zero or more segments and must be the last segment.
//! Matching works on the raw path split at `/`, so `%2F` never splits a segment. A value bound
//! by a single-segment variable is fully percent-decoded; a multi-segment value keeps `%2F`
//! encoded, as the spec asks. Route precedence across templates lives in `mod.rs`.

use std::fmt;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `*`: exactly one path segment.
    Single,
    /// `**`: zero or more path segments; always last.
    Multi,
}

/// A variable and the template segments it spans (`start..end`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub field_path: Vec<String>,
    pub start: usize,
    pub end: usize,
}

/// A parsed template, immutable after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<Segment>,
    pub variables: Vec<Variable>,
    pub verb: Option<String>,
    source: String,
}

/// Why a template failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

fn fail<T>(template: &str, why: impl fmt::Display) -> Result<T, TemplateError> {
    Err(TemplateError(format!(
        "invalid path template {template:?}: {why}"
    )))
}

impl Template {
    /// Parses a template such as `/v1/{name=shelves/*/books/*}:publish`.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let Some(rest) = source.strip_prefix('/') else {
            return fail(source, "must start with '/'");
        };
        let (body, verb) = split_verb(rest);
        if let Some(verb) = &verb
            && (verb.is_empty() || verb.contains(['/', '{', '}', '*']))
        {
            return fail(source, format!("bad verb {verb:?}"));
        }
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        for part in split_top_level(body)
            .map_err(|why| TemplateError(format!("invalid path template {source:?}: {why}")))?
        {
            if let Some(inner) = part.strip_prefix('{') {
                let Some(inner) = inner.strip_suffix('}') else {
                    return fail(source, format!("unclosed variable in {part:?}"));
                };
                let (path, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                let field_path: Vec<String> = path.split('.').map(str::to_string).collect();
                if field_path.iter().any(|s| !is_ident(s)) {
                    return fail(source, format!("bad field path {path:?}"));
                }
                if variables.iter().any(|v: &Variable| v.field_path == field_path) {
                    return fail(source, format!("field {path} is bound twice"));
                }
                let start = segments.len();
                for seg in pattern.split('/') {
                    if seg.contains(['{', '}']) {
                        return fail(source, "variables cannot nest");
                    }
                    segments.push(parse_plain(source, seg)?);
                }
                variables.push(Variable {
                    field_path,
                    start,
                    end: segments.len(),
                });
            } else {
                segments.push(parse_plain(source, part)?);
            }
        }
        if let Some(pos) = segments.iter().position(|s| *s == Segment::Multi)
            && pos + 1 != segments.len()
        {
            return fail(source, "'**' must be the last segment");
        }
        Ok(Template {
            segments,
            variables,
            verb,
            source: source.to_string(),
        })
    }

    /// The template as written; used as the route label in logs and metrics.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Matches a raw request path (no query). On success returns, per variable, its value.
    pub fn matches(&self, path: &str) -> Option<Vec<String>> {
        let rest = path.strip_prefix('/')?;
        let rest = match &self.verb {
            Some(verb) => rest.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => rest,
        };
        // Most templates fail on their first literal: reject those before allocating.
        if let Some(Segment::Literal(lit)) = self.segments.first()
            && !literal_matches(rest.split('/').next().unwrap_or_default(), lit)
        {
            return None;
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let mut spans = Vec::with_capacity(self.segments.len());
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Literal(lit) => {
                    if parts.get(i).is_none_or(|p| !literal_matches(p, lit)) {
                        return None;
                    }
                    spans.push((i, i + 1));
                    i += 1;
                }
                Segment::Single => {
                    if parts.get(i).is_none_or(|p| p.is_empty()) {
                        return None;
                    }
                    spans.push((i, i + 1));
                    i += 1;
                }
                Segment::Multi => {
                    spans.push((i, parts.len()));
                    i = parts.len();
                }
            }
        }
        if i != parts.len() {
            return None;
        }
        self.variables
            .iter()
            .map(|v| {
                let from = spans[v.start].0;
                let to = spans[v.end - 1].1;
                let single = v.end - v.start == 1 && self.segments[v.start] == Segment::Single;
                let decoded: Option<Vec<String>> =
                    parts[from..to].iter().map(|p| decode(p, !single)).collect();
                decoded.map(|d| d.join("/"))
            })
            .collect()
    }

    /// Sort key: literal segments beat `*`, and `*` beats `**`, position by position; a
    /// template with a verb beats one without.
    pub fn specificity(&self) -> (Vec<u8>, bool) {
        let ranks = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 3,
                Segment::Single => 2,
                Segment::Multi => 1,
            })
            .collect();
        (ranks, self.verb.is_some())
    }
}

/// Splits `a/b:verb` into `a/b` and `verb`, ignoring colons inside `{…}` and before the last `/`.
fn split_verb(rest: &str) -> (&str, Option<String>) {
    let mut depth = 0usize;
    let mut last_slash = 0;
    let mut colon = None;
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                last_slash = i;
                colon = None;
            }
            ':' if depth == 0 && i >= last_slash => colon = Some(i),
            _ => {}
        }
    }
    match colon {
        Some(i) => (&rest[..i], Some(rest[i + 1..].to_string())),
        None => (rest, None),
    }
}

/// Splits at `/` outside braces.
fn split_top_level(body: &str) -> Result<Vec<&str>, &'static str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err("unbalanced braces");
        }
    }
    if depth != 0 {
        return Err("unbalanced braces");
    }
    parts.push(&body[start..]);
    Ok(parts)
}

fn parse_plain(source: &str, seg: &str) -> Result<Segment, TemplateError> {
    match seg {
        "*" => Ok(Segment::Single),
        "**" => Ok(Segment::Multi),
        "" => fail(source, "empty segment"),
        s if s.contains(['*', ':', '{', '}', '?', '#']) => fail(source, format!("bad literal {s:?}")),
        // Paths are matched percent-decoded, so literals are stored decoded too: a literal
        // written `caf%C3%A9` must match a request for `/caf%C3%A9` (found by fuzzing).
        s => match decode(s, false) {
            Some(literal) => Ok(Segment::Literal(literal)),
            None => fail(
                source,
                format!("literal {s:?} is not valid percent-encoded UTF-8"),
            ),
        },
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether the raw path segment `part` is the literal `lit` once percent-decoded; without a
/// `%` in it, no decoding (and no allocation) is needed.
fn literal_matches(part: &str, lit: &str) -> bool {
    if part.contains('%') {
        decode(part, false).as_deref() == Some(lit)
    } else {
        part == lit
    }
}

/// Percent-decodes one segment. With `keep_slash`, `%2F` stays encoded (reserved expansion
/// for multi-segment variables). Invalid UTF-8 fails the match.
fn decode(segment: &str, keep_slash: bool) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b'/') if keep_slash => out.extend_from_slice(&bytes[i..i + 3]),
                Some(b) => out.push(b),
                None => out.push(b'%'),
            }
            i += if hex.is_some() { 3 } else { 1 };
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
