//! Cross-site writes. CORS only decides whether a page may *read* an answer: a page on any
//! site can still *send* a POST without a preflight (a `no-cors` fetch, `sendBeacon`, a
//! form), and the gateway would call the upstream before the browser hides the answer. Two
//! checks stop that:
//! - a non-empty body needs a JSON `Content-Type` (`binding/body.rs`), which no request
//!   without a preflight can normally carry;
//! - an unsafe method that a browser marks as coming from another site
//!   (`Sec-Fetch-Site: cross-site` or `same-site`, Fetch Metadata) is refused with 403
//!   unless its `Origin` is one that `[cors]` allows. Same-site counts too: it is another
//!   origin (another port, another subdomain) all the same.
//!
//! Requests without `Sec-Fetch-Site` (curl, servers, older browsers) and those a browser
//! marks `same-origin` or `none` (typed by the user) pass; so do safe methods, which the
//! route table never maps to a write by default and which the body check covers anyway.

use http::{HeaderMap, Method};

use crate::config::CorsConfig;
use crate::error::GatewayError;

/// Refuses a browser's unsafe request from a site whose origin CORS does not allow.
pub fn check(cors: &CorsConfig, method: &Method, headers: &HeaderMap) -> Result<(), GatewayError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let Some(site) = headers.get("sec-fetch-site") else {
        return Ok(());
    };
    if site == "same-origin" || site == "none" {
        return Ok(());
    }
    let origin = headers.get(http::header::ORIGIN);
    let allowed = cors.any_origin || origin.is_some_and(|o| cors.allowed_origins.contains(o));
    if allowed {
        return Ok(());
    }
    let origin = origin.and_then(|o| o.to_str().ok()).unwrap_or("(none)");
    // Origins are client input: keep what goes into the message short.
    let origin = &origin[..origin.len().min(200)];
    Err(GatewayError::cross_site(format!(
        "a {method} from another site (origin {origin:?}) is not allowed; \
         the origin must be listed in cors.allowed_origins"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn only_unsafe_methods_from_other_sites_and_disallowed_origins_are_refused() {
        let cors = CorsConfig {
            allowed_origins: vec![HeaderValue::from_static("https://app.example")],
            ..CorsConfig::default()
        };
        let evil = headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ]);
        let err = check(&cors, &Method::POST, &evil).expect_err("refused");
        assert_eq!(err.http_status(), http::StatusCode::FORBIDDEN);
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(
            err.message().contains("\"https://evil.example\""),
            "{}",
            err.message()
        );
        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(check(&cors, &method, &evil).is_err(), "{method}");
        }
        let same_site = headers(&[("sec-fetch-site", "same-site"), ("origin", "https://x.example")]);
        assert!(check(&cors, &Method::POST, &same_site).is_err());
        let no_origin = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(check(&cors, &Method::POST, &no_origin).is_err());

        assert!(check(&cors, &Method::GET, &evil).is_ok(), "safe method");
        let allowed = headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example"),
        ]);
        assert!(check(&cors, &Method::POST, &allowed).is_ok());
        for site in ["same-origin", "none"] {
            let mut h = evil.clone();
            h.insert("sec-fetch-site", HeaderValue::from_static(site));
            assert!(check(&cors, &Method::POST, &h).is_ok(), "{site}");
        }
        assert!(
            check(
                &cors,
                &Method::POST,
                &headers(&[("origin", "https://evil.example")])
            )
            .is_ok()
        );
        let any = CorsConfig {
            any_origin: true,
            ..CorsConfig::default()
        };
        assert!(check(&any, &Method::POST, &evil).is_ok(), "cors *");
    }
}
