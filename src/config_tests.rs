//! Config validation from strings: defaults, overrides, and one clear line per mistake.

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, &Overrides::default())
}

#[test]
fn shipped_config_parses() {
    let config = parse(include_str!("../config/protogate.toml")).expect("shipped config is valid");
    assert_eq!(config.rules.len(), 2);
    assert_eq!(config.rules[0].selector, "MyService.User");
    assert_eq!(
        config.rules[0].query_aliases,
        vec![("ids".to_string(), "userIDs".to_string())]
    );
    assert_eq!(config.upstream.connect_timeout, Duration::from_secs(1));
}

#[test]
fn empty_config_gives_defaults() {
    let config = parse("").expect("empty is fine");
    assert_eq!(config.listen, "0.0.0.0:8080".parse().expect("addr"));
    assert_eq!(config.upstream.url, "http://127.0.0.1:50051");
    assert_eq!(config.upstream.readiness, Readiness::GrpcHealth(String::new()));
    assert!(config.transcoding.unbound_methods);
    assert_eq!(config.transcoding.unknown_query_parameters, UnknownParams::Reject);
    assert_eq!(config.server.max_body_bytes, 1024 * 1024);
}

#[test]
fn overrides_beat_the_file() {
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some("http://users:50051".into()),
    };
    let config = Config::from_toml(
        "listen = \"0.0.0.0:9\"\n[upstream]\nurl = \"http://a:1\"\n",
        &overrides,
    )
    .expect("valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:0");
    assert_eq!(config.upstream.url, "http://users:50051/");
}

#[test]
fn mistakes_are_one_line_each() {
    let cases = [
        ("lisen = \"x\"", "config line 1: unknown field `lisen`"),
        (
            "[upstream]\nurl = \"ftp://x\"",
            "upstream.url: \"ftp://x\" must start with http://",
        ),
        (
            "[upstream]\nurl = \"not a url\"",
            "upstream.url: \"not a url\" is not a URL",
        ),
        ("[upstream]\nurl = \"http://x:1/path\"", "must not have a path"),
        (
            "[upstream]\ntimeout = \"10\"",
            "upstream.timeout: \"10\" is not a positive duration",
        ),
        (
            "[upstream]\ntimeout = \"90s\"",
            "upstream.timeout must not exceed upstream.max_timeout",
        ),
        (
            "listen = \"localhost\"",
            "listen: \"localhost\" is not an address",
        ),
        (
            "[cors]\nallowed_origins = [\"*\"]\nallow_credentials = true",
            "cannot go with allowed_origins",
        ),
        (
            "[cors]\nallowed_origins = [\"https://a.test/path\"]",
            "is not an origin such as",
        ),
        (
            "[cors]\nallowed_origins = [\"*\", \"https://a.test\"]",
            "cannot be listed with other origins",
        ),
        (
            "[transcoding]\nunknown_query_parameters = \"drop\"",
            "neither \"reject\" nor \"ignore\"",
        ),
        (
            "[[rules]]\nselector = \"A.B\"",
            "config rule 1 (A.B): needs exactly one of get",
        ),
        (
            "[[rules]]\nselector = \"A.B\"\nget = \"/a\"\npost = \"/a\"",
            "found 2",
        ),
        (
            "[[rules]]\nselector = \"A.B\"\nget = \"/a\"\nbogus = 1",
            "config line 4: unknown field `bogus`",
        ),
    ];
    for (text, want) in cases {
        let err = parse(text).expect_err(text).to_string();
        assert!(
            err.contains(want),
            "{text:?}: got {err:?}, want it to contain {want:?}"
        );
        assert!(!err.contains('\n'), "{text:?}: error spans lines: {err:?}");
    }
}

#[test]
fn readiness_forms() {
    let method = parse("[upstream]\nreadiness = \"MyService.Health\"").expect("valid");
    assert_eq!(
        method.upstream.readiness,
        Readiness::Method("MyService.Health".into())
    );
    let service = parse("[upstream]\nreadiness = \"grpc.health.v1:MyService\"").expect("valid");
    assert_eq!(
        service.upstream.readiness,
        Readiness::GrpcHealth("MyService".into())
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
    assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    for bad in ["", "s", "10", "1.5s", "-1s", "10 parsecs"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}
