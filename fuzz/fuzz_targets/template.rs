//! Fuzz target `template`: the path-template parser and matcher (`routing::template`).
//! Input: UTF-8 text, `TEMPLATE` or `TEMPLATE\nPATH`. Checks that parsing never panics and
//! that a parsed template is well formed, matches the path built by filling in its own
//! wildcards (with the expected variable values), matches its own source when it holds only
//! literals, and matches PATH, when given, without panicking and with one value per
//! variable. Route precedence and binding are other targets' concern.

#![no_main]

use libfuzzer_sys::fuzz_target;
use protogate::routing::template::{Segment, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (source, path) = match text.split_once('\n') {
        Some((source, path)) => (source, Some(path)),
        None => (text, None),
    };
    let Ok(template) = Template::parse(source) else {
        return;
    };
    check_shape(&template, source);
    check_filled_in(&template);
    check_literal_only(&template, source);
    for path in [Some(source), path].into_iter().flatten() {
        check_variable_count(&template, path);
    }
});

/// What every parsed template promises to the matcher: variables span whole, ordered,
/// disjoint runs of segments, and `**` can only be last.
fn check_shape(template: &Template, source: &str) {
    assert_eq!(template.as_str(), source);
    assert!(source.starts_with('/'));
    let mut next_free = 0;
    for var in &template.variables {
        assert!(!var.field_path.is_empty());
        assert!(var.start < var.end, "{source:?}: empty variable span");
        assert!(var.start >= next_free, "{source:?}: variables overlap");
        assert!(
            var.end <= template.segments.len(),
            "{source:?}: span past the end"
        );
        next_free = var.end;
    }
    if let Some(pos) = template.segments.iter().position(|s| *s == Segment::Multi) {
        assert_eq!(pos + 1, template.segments.len(), "{source:?}: ** not last");
    }
    if let Some(verb) = &template.verb {
        assert!(
            !verb.is_empty() && !verb.contains('/'),
            "{source:?}: bad verb {verb:?}"
        );
    }
}

/// Fills `*` with `x` and `**` with `m/n`, and checks that the result matches with the
/// values the template's variables should take.
fn check_filled_in(template: &Template) {
    let filled: Vec<&str> = template
        .segments
        .iter()
        .map(|s| match s {
            Segment::Literal(lit) => lit.as_str(),
            Segment::Single => "x",
            Segment::Multi => "m/n",
        })
        .collect();
    let mut path = format!("/{}", filled.join("/"));
    if let Some(verb) = &template.verb {
        path = format!("{path}:{verb}");
    }
    // A literal is compared with the percent-decoded path segment, so a literal that holds
    // `%` (or `/`, should literals ever be stored decoded) cannot be written back into a
    // path as itself; such templates are checked for panics only.
    if template
        .segments
        .iter()
        .any(|s| matches!(s, Segment::Literal(l) if l.contains(['%', '/'])))
    {
        check_variable_count(template, &path);
        return;
    }
    let Some(values) = template.matches(&path) else {
        panic!(
            "template {:?} does not match its filled-in path {path:?}",
            template.as_str()
        );
    };
    let expected: Vec<String> = template
        .variables
        .iter()
        .map(|v| filled[v.start..v.end].join("/"))
        .collect();
    assert_eq!(
        values,
        expected,
        "template {:?} against {path:?}",
        template.as_str()
    );
}

/// A template without wildcards or variables is a plain path, and matches itself.
fn check_literal_only(template: &Template, source: &str) {
    let literal_only =
        template.variables.is_empty() && template.segments.iter().all(|s| matches!(s, Segment::Literal(_)));
    if literal_only {
        assert_eq!(
            template.matches(source),
            Some(Vec::new()),
            "literal-only template {source:?} does not match its own source"
        );
    }
}

/// Any path: no panic, and a match yields exactly one value per variable.
fn check_variable_count(template: &Template, path: &str) {
    if let Some(values) = template.matches(path) {
        assert_eq!(
            values.len(),
            template.variables.len(),
            "template {:?} against {path:?}",
            template.as_str()
        );
    }
}
