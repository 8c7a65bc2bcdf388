//! `transcoding.client_metadata`: which `Grpc-Metadata-*` request headers reach the upstream.
//! A client may set any metadata it likes through them (the prefix is stripped), which is
//! grpc-gateway's default and ours (`"all"`); a deployment whose upstream trusts some
//! metadata (a tenant, a user id set by an auth proxy) can turn them off (`"none"`) or allow
//! a list of names (the part after `Grpc-Metadata-`). The forbidden names (`metadata.rs`)
//! are never forwarded, whatever this says.

use http::HeaderName;
use serde::Deserialize;

use super::ConfigError;

/// Which client-set metadata is forwarded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClientMetadata {
    /// Every `Grpc-Metadata-*` header (the default, as in grpc-gateway).
    #[default]
    All,
    /// None: `Grpc-Metadata-*` request headers are dropped.
    None,
    /// Only these names (after the prefix, lowercase).
    Only(Vec<HeaderName>),
}

impl ClientMetadata {
    /// Whether `Grpc-Metadata-{name}` may be forwarded as `name`.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            ClientMetadata::All => true,
            ClientMetadata::None => false,
            ClientMetadata::Only(names) => names.iter().any(|n| n.as_str() == name),
        }
    }
}

/// The TOML form: `"all"`, `"none"` or a list of names.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawClientMetadata {
    Keyword(String),
    Names(Vec<String>),
}

impl RawClientMetadata {
    pub(super) fn validate(raw: Option<RawClientMetadata>) -> Result<ClientMetadata, ConfigError> {
        let key = "transcoding.client_metadata";
        match raw {
            None => Ok(ClientMetadata::All),
            Some(RawClientMetadata::Keyword(word)) => match word.as_str() {
                "all" => Ok(ClientMetadata::All),
                "none" => Ok(ClientMetadata::None),
                other => Err(ConfigError(format!(
                    "{key}: {other:?} is neither \"all\", \"none\" nor a list of metadata names"
                ))),
            },
            Some(RawClientMetadata::Names(names)) => names
                .iter()
                .map(|name| {
                    let lower = name.strip_prefix("grpc-metadata-").unwrap_or(name);
                    HeaderName::from_bytes(lower.to_ascii_lowercase().as_bytes())
                        .map_err(|_| ConfigError(format!("{key}: {name:?} is not a metadata name")))
                })
                .collect::<Result<_, _>>()
                .map(ClientMetadata::Only),
        }
    }
}
