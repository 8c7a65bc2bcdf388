//! `[upstream.tls]`: the CA, client certificate and key, and server name for an `https://`
//! upstream. Files are read and their PEM parsed at startup, so a missing file, a file with no
//! certificate, or a certificate without its key stops startup with one line that names it,
//! instead of failing every call later.

use std::path::Path;

use http::Uri;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    server_name: Option<String>,
}

/// TLS to the upstream, validated. Present exactly when the upstream URL is `https://`.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// PEM certificates to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain and private key, for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the upstream's certificate must carry (and the SNI sent).
    pub server_name: String,
}

impl RawTls {
    /// Validates the section against the upstream URL: `https://` gets TLS (with the system
    /// roots when no CA is given), and a `[upstream.tls]` section on `http://` is a mistake.
    pub(super) fn validate(raw: Option<RawTls>, url: &Uri) -> Result<Option<UpstreamTls>, ConfigError> {
        if url.scheme_str() != Some("https") {
            return match raw {
                Some(_) => Err(ConfigError(format!(
                    "upstream.tls is set but upstream.url {url} is not https://"
                ))),
                None => Ok(None),
            };
        }
        let raw = raw.unwrap_or_default();
        let ca_pem = match raw.ca_file {
            Some(path) => {
                let pem = read("upstream.tls.ca_file", &path)?;
                certificates("upstream.tls.ca_file", &path, &pem)?;
                Some(pem)
            }
            None => None,
        };
        let identity = match (raw.cert_file, raw.key_file) {
            (Some(cert), Some(key)) => {
                let cert_pem = read("upstream.tls.cert_file", &cert)?;
                certificates("upstream.tls.cert_file", &cert, &cert_pem)?;
                let key_pem = read("upstream.tls.key_file", &key)?;
                PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    ConfigError(format!("upstream.tls.key_file: {key}: no private key ({e})"))
                })?;
                Some((cert_pem, key_pem))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError(
                    "upstream.tls: cert_file and key_file go together; set both or neither".to_string(),
                ));
            }
        };
        let host = url
            .host()
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']');
        let server_name = raw.server_name.unwrap_or_else(|| host.to_string());
        if rustls_pki_types::ServerName::try_from(server_name.as_str()).is_err() {
            return Err(ConfigError(format!(
                "upstream.tls.server_name: {server_name:?} is not a DNS name or IP address"
            )));
        }
        Ok(Some(UpstreamTls {
            ca_pem,
            identity,
            server_name,
        }))
    }
}

fn read(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(Path::new(path)).map_err(|e| ConfigError(format!("{key}: cannot read {path}: {e}")))
}

/// Checks that `pem` holds at least one well-formed certificate.
fn certificates(key: &str, path: &str, pem: &[u8]) -> Result<(), ConfigError> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| ConfigError(format!("{key}: {path}: bad PEM ({e})")))?;
        count += 1;
    }
    if count == 0 {
        return Err(ConfigError(format!(
            "{key}: {path}: no PEM certificate in the file"
        )));
    }
    Ok(())
}
