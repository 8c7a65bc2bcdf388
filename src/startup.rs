//! Why the gateway could not start: one typed error for every startup failure, each printed
//! as the one line an operator sees on stderr (exit code 2). The variants say which stage
//! failed; the messages name the file, the rule or the address at fault.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;

#[derive(Debug)]
pub enum StartupError {
    /// The async runtime could not be built.
    Runtime(std::io::Error),
    /// The config file could not be read.
    ReadConfig { path: PathBuf, source: std::io::Error },
    /// The config is invalid; `path` is `None` for the built-in defaults.
    Config {
        path: Option<PathBuf>,
        source: ConfigError,
    },
    /// The schema does not build: descriptors, a rule, the OpenAPI document.
    Schema(String),
    /// The upstream setting cannot be used (no host, unreadable TLS files, …).
    Upstream(String),
    /// OTLP trace export could not start.
    Telemetry(String),
    /// The listening socket could not be bound or read.
    Listen {
        addr: Option<SocketAddr>,
        source: std::io::Error,
    },
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Runtime(err) => write!(f, "cannot start the async runtime: {err}"),
            StartupError::ReadConfig { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            StartupError::Config {
                path: Some(path),
                source,
            } => write!(f, "{}: {source}", path.display()),
            StartupError::Config { path: None, source } => write!(f, "{source}"),
            StartupError::Schema(why) | StartupError::Upstream(why) | StartupError::Telemetry(why) => {
                f.write_str(why)
            }
            StartupError::Listen {
                addr: Some(addr),
                source,
            } => write!(f, "cannot listen on {addr}: {source}"),
            StartupError::Listen { addr: None, source } => write!(f, "listener: {source}"),
        }
    }
}

impl std::error::Error for StartupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartupError::Runtime(source)
            | StartupError::ReadConfig { source, .. }
            | StartupError::Listen { source, .. } => Some(source),
            StartupError::Config { source, .. } => Some(source),
            _ => None,
        }
    }
}
