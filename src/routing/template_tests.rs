//! Table-driven tests for template parsing and matching.

use super::*;

#[test]
fn parses_every_construct() {
    let t = Template::parse("/v1/{name=shelves/*/books/*}:publish").expect("parses");
    assert_eq!(
        t.segments,
        vec![
            Segment::Literal("v1".into()),
            Segment::Literal("shelves".into()),
            Segment::Single,
            Segment::Literal("books".into()),
            Segment::Single
        ]
    );
    assert_eq!(
        t.variables,
        vec![Variable {
            field_path: vec!["name".into()],
            start: 1,
            end: 5
        }]
    );
    assert_eq!(t.verb.as_deref(), Some("publish"));

    let t = Template::parse("/users/{user.id}/files/**").expect("parses");
    assert_eq!(
        t.variables[0].field_path,
        vec!["user".to_string(), "id".to_string()]
    );
    assert_eq!(t.segments.last(), Some(&Segment::Multi));

    let t = Template::parse("/a/{rest=**}").expect("parses");
    assert_eq!(t.segments, vec![Segment::Literal("a".into()), Segment::Multi]);
}

#[test]
fn rejects_bad_templates() {
    for bad in [
        "users",
        "/users/",
        "/a//b",
        "/a/{id",
        "/a/{id}}",
        "/a/{1id}",
        "/a/{x={y}}",
        "/a/**/b",
        "/a/{id}/{id}",
        "/a:",
        "/a/b*c",
        "/a/{x=**}/c",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad} should not parse");
    }
}

#[test]
fn error_names_the_template() {
    let err = Template::parse("/a/**/b").expect_err("fails");
    assert_eq!(
        err.to_string(),
        "invalid path template \"/a/**/b\": '**' must be the last segment"
    );
}

#[test]
fn matching_table() {
    // template, path, expected variable values (None = no match)
    let cases: &[(&str, &str, Option<&[&str]>)] = &[
        ("/users", "/users", Some(&[])),
        ("/users", "/users/", None),
        ("/users", "/user", None),
        ("/users/{id}", "/users/42", Some(&["42"])),
        ("/users/{id}", "/users/", None),
        ("/users/{id}", "/users/4/2", None),
        ("/users/{id}", "/users/a%2Fb", Some(&["a/b"])),
        ("/users/{id}", "/users/caf%C3%A9", Some(&["café"])),
        ("/users/{id}", "/users/%FF", None),
        (
            "/v1/{name=shelves/*/books/*}",
            "/v1/shelves/1/books/2",
            Some(&["shelves/1/books/2"]),
        ),
        ("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books", None),
        (
            "/v1/{name=shelves/*}/x",
            "/v1/shelves/a%2Fb/x",
            Some(&["shelves/a%2Fb"]),
        ),
        ("/files/**", "/files", Some(&[])),
        ("/files/**", "/files/", Some(&[])),
        ("/files/{path=**}", "/files/a/b/c", Some(&["a/b/c"])),
        ("/files/{path=**}", "/files/", Some(&[""])),
        ("/v1/{name}:cancel", "/v1/op1:cancel", Some(&["op1"])),
        ("/v1/{name}:cancel", "/v1/op1", None),
        ("/v1/{name}:cancel", "/v1/op1:undo", None),
        ("/v1/{name}", "/v1/op1:cancel", Some(&["op1:cancel"])),
        ("/a/*/c", "/a/b/c", Some(&[])),
        ("/a/{x}/{y.z}", "/a/1/2", Some(&["1", "2"])),
    ];
    for (template, path, want) in cases {
        let t = Template::parse(template).expect("test template parses");
        let got = t.matches(path);
        let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, want, "{template} against {path}");
    }
}

#[test]
fn literal_beats_wildcard_beats_deep_wildcard() {
    let lit = Template::parse("/a/b").expect("parses").specificity();
    let single = Template::parse("/a/*").expect("parses").specificity();
    let multi = Template::parse("/a/**").expect("parses").specificity();
    assert!(lit > single && single > multi);
}

/// Found by the template fuzz target: a literal with a percent escape never matched its own
/// path, because paths are matched decoded and the literal was kept encoded.
#[test]
fn literal_with_percent_escape_matches_its_own_path() {
    let t = Template::parse("/caf%C3%A9/x").expect("parses");
    assert_eq!(t.matches("/caf%C3%A9/x"), Some(vec![]));
    assert_eq!(t.matches("/café/x"), Some(vec![]));
    assert_eq!(t.matches("/caf%25C3%25A9/x"), None);
    assert_eq!(
        t.as_str(),
        "/caf%C3%A9/x",
        "logs and metrics keep the template as written"
    );
    let err = Template::parse("/%cD").expect_err("invalid UTF-8");
    assert!(
        err.to_string().contains("not valid percent-encoded UTF-8"),
        "{err}"
    );
}
