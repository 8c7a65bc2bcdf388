//! protogate: a gRPC → HTTP/JSON gateway. This crate root is the map; `serve` is the entry
//! point that the binary and the integration tests share.
//!
//! Request path: `server` (accept loop, middleware) → `gateway` (lifecycle) → `routing`
//! (route table) → `binding` (path, query, body → JSON) → `metadata` (headers, deadline) →
//! `forward` (typed call through the `methods` table) → `error` (the only place failures
//! become responses). `config` parses and validates settings; `upstream` owns the channel;
//! `pb`, `methods` and `descriptors` hold what `build.rs` generated.

pub mod admission;
pub mod binding;
pub mod body_intake;
pub mod browser;
pub mod config;
pub mod cross_site;
pub mod descriptors;
pub mod details;
pub mod error;
pub mod forward;
pub mod gateway;
pub mod grpc;
pub mod logging;
pub mod metadata;
pub mod methods;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod pb;
pub mod request_id;
pub mod retry;
pub mod routing;
pub mod server;
pub mod stream;
#[cfg(feature = "otlp")]
pub mod telemetry;
pub mod upstream;
pub mod wkt;

#[cfg(test)]
mod test_protos;

pub use config::{Config, ConfigError, Overrides};
pub use error::GatewayError;
pub use server::{StartupError, serve};
