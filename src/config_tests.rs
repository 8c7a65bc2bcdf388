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
fn raw_body_keys_reach_the_transcoding_config() {
    let text = "[transcoding]\nupload_chunk_bytes = 65536\nmax_upload_bytes = 1000\n\
                response_headers = [\"Content-Disposition\", \"etag\"]\n";
    let raw = parse(text).expect("valid").transcoding.raw_bodies;
    assert_eq!((raw.upload_chunk_bytes, raw.max_upload_bytes), (65536, 1000));
    let names: Vec<&str> = raw.response_headers.iter().map(HeaderName::as_str).collect();
    assert_eq!(names, ["content-disposition", "etag"]);
    let err = parse("[transcoding]\nresponse_headers = [\"content-length\"]\n").expect_err("refused");
    assert!(
        err.0
            .starts_with("transcoding.response_headers: \"content-length\""),
        "{}",
        err.0
    );
}

#[test]
fn empty_config_gives_defaults() {
    let config = parse("").expect("empty is fine");
    assert_eq!(config.listen, "0.0.0.0:8080".parse().expect("addr"));
    assert_eq!(config.upstream.url, "http://127.0.0.1:50051");
    assert_eq!(config.upstream.readiness, Readiness::Auto);
    assert!(config.transcoding.unbound_methods);
    assert_eq!(config.transcoding.unknown_query_parameters, UnknownParams::Reject);
    assert_eq!(config.server.max_body_bytes, 1024 * 1024);
}

#[test]
fn overrides_beat_the_file() {
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some("http://users:50051".into()),
        ..Default::default()
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
    let strict = parse("[upstream]\nreadiness = \"grpc.health.v1\"").expect("valid");
    assert_eq!(strict.upstream.readiness, Readiness::GrpcHealth(String::new()));
    let auto = parse("[upstream]\nreadiness = \"auto\"").expect("valid");
    assert_eq!(auto.upstream.readiness, Readiness::Auto);
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

/// The defaults that ship, in the binary and in `config/protogate.toml` alike (issue 5):
/// an operator who deletes a line gets the same behaviour as one who keeps it.
#[test]
fn binary_and_shipped_defaults_agree_on_every_limit() {
    let shipped = parse(include_str!("../config/protogate.toml")).expect("shipped config is valid");
    let built_in = parse("").expect("empty is fine");
    for config in [shipped, built_in] {
        let (s, u) = (&config.server, &config.upstream);
        assert_eq!(s.max_body_bytes, 1024 * 1024);
        assert_eq!(s.max_header_bytes, 32 * 1024);
        assert_eq!(s.max_headers, 100);
        assert_eq!(s.header_read_timeout, Duration::from_secs(10));
        assert_eq!(s.body_timeout, Duration::from_secs(10));
        assert_eq!(s.max_concurrent_requests, 256);
        assert_eq!(s.max_concurrent_body_reads, 256);
        assert_eq!(s.max_inflight_body_bytes, 32 * 1024 * 1024);
        assert_eq!(s.max_connections, 4096);
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.http2_keepalive_interval, Duration::from_secs(30));
        assert_eq!(s.http2_keepalive_timeout, Duration::from_secs(20));
        assert_eq!(config.transcoding.client_metadata, super::ClientMetadata::All);
        assert_eq!(config.transcoding.raw_bodies, RawBodyConfig::default());
        assert_eq!(s.drain_timeout, Duration::from_secs(20));
        assert_eq!(u.connect_timeout, Duration::from_secs(1));
        assert_eq!(u.timeout, Duration::from_secs(5));
        assert_eq!(u.max_timeout, Duration::from_secs(30));
        // grpc-core servers GOAWAY a client that pings more often than every 5 minutes
        // while no data flows (GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS).
        assert!(u.keepalive_interval >= Duration::from_secs(300));
        // tonic's and grpc-go's default decode limit, counted after decompression.
        assert_eq!(u.max_reply_bytes, 4 * 1024 * 1024);
        assert_eq!(u.compress_requests, None);
        assert_eq!(u.readiness, Readiness::Auto);
    }
}

fn pem_file(name: &str, contents: &str) -> String {
    let dir = std::env::temp_dir().join(format!("protogate-config-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn https_upstream_gets_tls_with_the_url_host_as_server_name() {
    let config = parse("[upstream]\nurl = \"https://users.internal:8443\"").expect("valid");
    let tls = config.upstream.tls.expect("https means TLS");
    assert_eq!(tls.server_name, "users.internal");
    assert!(tls.ca_pem.is_none(), "no CA file: the system roots");
    assert!(tls.identity.is_none());
    assert!(
        parse("").expect("valid").upstream.tls.is_none(),
        "http means no TLS"
    );
}

#[test]
fn tls_mistakes_are_one_line_each() {
    const NOT_PEM: &str = "this is not a certificate\n";
    let garbage = pem_file("garbage.pem", NOT_PEM);
    let https = "[upstream]\nurl = \"https://users:443\"\n[upstream.tls]\n";
    let cases = [
        (
            "[upstream]\nurl = \"http://users:1\"\n[upstream.tls]\nserver_name = \"users\"".to_string(),
            "upstream.tls is set but upstream.url http://users:1/ is not https://".to_string(),
        ),
        (
            format!("{https}ca_file = \"/nonexistent/ca.pem\""),
            "upstream.tls.ca_file: cannot read /nonexistent/ca.pem".to_string(),
        ),
        (
            format!("{https}ca_file = {garbage:?}"),
            format!("upstream.tls.ca_file: {garbage}: no PEM certificate in the file"),
        ),
        (
            format!("{https}cert_file = {garbage:?}"),
            "cert_file and key_file go together".to_string(),
        ),
        (
            format!("{https}server_name = \"not a name\""),
            "upstream.tls.server_name: \"not a name\" is not a DNS name or IP address".to_string(),
        ),
        (
            format!("{https}sni = \"users\""),
            "unknown field `sni`".to_string(),
        ),
    ];
    for (text, want) in cases {
        let err = parse(&text).expect_err(&text).to_string();
        assert!(err.contains(&want), "{text:?}: got {err:?}, want {want:?}");
        assert!(!err.contains('\n'), "{text:?}: error spans lines: {err:?}");
    }
}

#[test]
fn client_metadata_is_all_none_or_a_list() {
    use super::ClientMetadata;
    let mode = |value: &str| {
        parse(&format!("[transcoding]\nclient_metadata = {value}")).map(|c| c.transcoding.client_metadata)
    };
    assert_eq!(
        parse("").expect("valid").transcoding.client_metadata,
        ClientMetadata::All
    );
    assert_eq!(mode("\"all\""), Ok(ClientMetadata::All));
    assert_eq!(mode("\"none\""), Ok(ClientMetadata::None));
    let only = mode("[\"Tenant\", \"grpc-metadata-x-user\"]").expect("a list");
    assert!(only.allows("tenant") && only.allows("x-user") && !only.allows("role"));
    assert_eq!(
        mode("\"some\"").map_err(|e| e.0),
        Err(
            "transcoding.client_metadata: \"some\" is neither \"all\", \"none\" nor a list of metadata names"
                .to_string()
        )
    );
    assert_eq!(
        mode("[\"bad name\"]").map_err(|e| e.0),
        Err("transcoding.client_metadata: \"bad name\" is not a metadata name".to_string())
    );
}

#[test]
fn output_options_and_error_format_parse_at_every_level() {
    let config = parse(
        r#"
[transcoding]
emit_unpopulated = true
[transcoding.services."a.S"]
use_proto_names = true
[transcoding.methods."a.S.M"]
error_format = "status"
[errors]
format = "problem"
[[rules]]
selector = "a.S.M"
get = "/m"
enums_as_numbers = true
"#,
    )
    .expect("valid");
    let output = &config.transcoding.output;
    let resolved = output.resolve("a.S.M", &config.rules[0].output);
    assert_eq!(
        resolved,
        OutputOptions {
            emit_unpopulated: true,
            use_proto_names: true,
            enums_as_numbers: true,
            strip_enum_prefix: false,
            error_format: ErrorFormat::Status,
        }
    );
    let other = output.resolve("a.S.N", &OutputOverrides::default());
    assert_eq!(other.error_format, ErrorFormat::Problem);
    assert!(other.use_proto_names && !other.enums_as_numbers);
    // Unknown keys in an override table are refused like any other.
    let err = parse("[transcoding.services.\"a.S\"]\nemit_unpopulted = true").expect_err("typo");
    assert!(err.0.contains("emit_unpopulted"), "{err}");
}
