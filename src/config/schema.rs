//! `[schema]`: where the gateway learns the methods it fronts. `compiled` (the default) is the
//! protos built into the binary; `descriptors:PATH` a `FileDescriptorSet` file (`buf build -o
//! x.binpb`, `protoc --include_imports --descriptor_set_out`); `protos:DIR` `.proto` files
//! compiled at startup; `reflection` the upstream's gRPC server reflection. `refresh_interval`
//! sets how often a runtime source is read again; `check_upstream` whether the upstream's
//! reflection is asked which services it serves. `--schema` and `PROTOGATE_SCHEMA` override the file's `source`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::values::duration;

/// Where the schema comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// The protos compiled into the binary, JSON by pbjson.
    Compiled,
    /// A `FileDescriptorSet` file, with every import included.
    Descriptors(PathBuf),
    /// A directory of `.proto` files, compiled at startup; the vendored `google/api` and
    /// `google/rpc` files are importable.
    Protos(PathBuf),
    /// The upstream's gRPC server reflection (v1, else v1alpha).
    Reflection,
}

impl SchemaSource {
    /// Parses `compiled`, `descriptors:PATH` or `protos:DIR`.
    pub fn parse(text: &str) -> Result<SchemaSource, ConfigError> {
        let bad = || {
            ConfigError(format!(
                "schema.source: {text:?} is not one of compiled, reflection, descriptors:PATH, protos:DIR"
            ))
        };
        match text.split_once(':') {
            None if text == "compiled" => Ok(SchemaSource::Compiled),
            None if text == "reflection" => Ok(SchemaSource::Reflection),
            Some(("descriptors", path)) if !path.is_empty() => Ok(SchemaSource::Descriptors(path.into())),
            Some(("protos", dir)) if !dir.is_empty() => Ok(SchemaSource::Protos(dir.into())),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for SchemaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaSource::Compiled => f.write_str("compiled"),
            SchemaSource::Reflection => f.write_str("reflection"),
            SchemaSource::Descriptors(path) => write!(f, "descriptors:{}", path.display()),
            SchemaSource::Protos(dir) => write!(f, "protos:{}", dir.display()),
        }
    }
}

/// The validated `[schema]` table.
#[derive(Debug, Clone)]
pub struct SchemaConfig {
    pub source: SchemaSource,
    /// How often a runtime source is read again: reflection every time, files when their
    /// modification time changed.
    pub refresh_interval: Duration,
    /// Whether the gateway asks the upstream's reflection which services it serves, to warn
    /// (and turn `/readyz` 503) when they are none of the schema's (`gateway/served.rs`).
    pub check_upstream: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchema {
    source: Option<String>,
    refresh_interval: Option<String>,
    check_upstream: Option<bool>,
}

impl RawSchema {
    pub(super) fn validate(self, source_override: Option<&str>) -> Result<SchemaConfig, ConfigError> {
        let source = match source_override.or(self.source.as_deref()) {
            None => SchemaSource::Compiled,
            Some(text) => SchemaSource::parse(text)?,
        };
        Ok(SchemaConfig {
            source,
            refresh_interval: duration("schema.refresh_interval", self.refresh_interval, "30s")?,
            check_upstream: self.check_upstream.unwrap_or(true),
        })
    }
}
