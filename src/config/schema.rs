//! `[schema]`: where the gateway learns the methods it fronts. `compiled` (the default) is the
//! protos built into the binary; `descriptors:PATH` a `FileDescriptorSet` file (`buf build -o
//! x.binpb`, `protoc --include_imports --descriptor_set_out`); `protos:DIR` `.proto` files
//! compiled at startup. `--schema` and `PROTOGATE_SCHEMA` override the file's `source`.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

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
}

impl SchemaSource {
    /// Parses `compiled`, `descriptors:PATH` or `protos:DIR`.
    pub fn parse(text: &str) -> Result<SchemaSource, ConfigError> {
        let bad = || {
            ConfigError(format!(
                "schema.source: {text:?} is not one of compiled, descriptors:PATH, protos:DIR"
            ))
        };
        match text.split_once(':') {
            None if text == "compiled" => Ok(SchemaSource::Compiled),
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
            SchemaSource::Descriptors(path) => write!(f, "descriptors:{}", path.display()),
            SchemaSource::Protos(dir) => write!(f, "protos:{}", dir.display()),
        }
    }
}

/// The validated `[schema]` table.
#[derive(Debug, Clone)]
pub struct SchemaConfig {
    pub source: SchemaSource,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchema {
    source: Option<String>,
}

impl RawSchema {
    pub(super) fn validate(self, source_override: Option<&str>) -> Result<SchemaConfig, ConfigError> {
        let source = match source_override.or(self.source.as_deref()) {
            None => SchemaSource::Compiled,
            Some(text) => SchemaSource::parse(text)?,
        };
        Ok(SchemaConfig { source })
    }
}
