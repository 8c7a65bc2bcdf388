//! `[cors]` validation: origins must be bare origins, `"*"` stands alone, and credentials
//! never go with a wildcard (browsers refuse it, and tower-http would panic on the first
//! request), so every mistake stops startup with one line.

use http::Uri;

use super::values::duration;
use super::{ConfigError, CorsConfig, RawCors};

impl RawCors {
    pub(super) fn validate(self) -> Result<CorsConfig, ConfigError> {
        let any_origin = self.allowed_origins.iter().any(|o| o == "*");
        let allow_credentials = self.allow_credentials.unwrap_or(false);
        if any_origin && self.allowed_origins.len() > 1 {
            return Err(ConfigError(
                "cors.allowed_origins: \"*\" cannot be listed with other origins".to_string(),
            ));
        }
        // Browsers refuse credentials with a wildcard origin, and tower-http would panic on
        // the first request: refuse it here, at startup.
        if any_origin && allow_credentials {
            return Err(ConfigError(
                "cors: allow_credentials = true cannot go with allowed_origins = [\"*\"]; list the origins"
                    .to_string(),
            ));
        }
        let mut allowed_origins = Vec::new();
        for origin in self.allowed_origins.iter().filter(|o| *o != "*") {
            let uri: Uri = origin
                .parse()
                .map_err(|_| ConfigError(format!("cors.allowed_origins: {origin:?} is not an origin")))?;
            let bare = uri.scheme().is_some()
                && uri.host().is_some()
                && uri.path_and_query().is_none_or(|p| p.as_str() == "/");
            if !bare || origin.ends_with('/') {
                return Err(ConfigError(format!(
                    "cors.allowed_origins: {origin:?} is not an origin such as https://app.example.com (scheme, host, optional port, no path)"
                )));
            }
            let value = http::HeaderValue::from_str(origin).map_err(|_| {
                ConfigError(format!("cors.allowed_origins: {origin:?} is not a header value"))
            })?;
            allowed_origins.push(value);
        }
        Ok(CorsConfig {
            allowed_origins,
            any_origin,
            allow_credentials,
            max_age: duration("cors.max_age", self.max_age, "10m")?,
        })
    }
}
