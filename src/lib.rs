//! protogate: a gRPC → HTTP/JSON gateway. This crate root is the map; `serve` is the entry
//! point that the binary and the integration tests share.
//!
//! Layers, top to bottom (a module imports only from layers below it; `scripts/check-layers`
//! enforces it, and ARCHITECTURE.md draws it): `server` (accept loop, CORS, compression) →
//! `gateway` (the request lifecycle, access log, stream rendering) → `ops` (probes,
//! `/metrics`, `/openapi.json`, `/docs`) → `schema` (descriptors, method table, route table
//! and OpenAPI document, built together) → `openapi` → `binding` → `routing` → `method` (what
//! a method is) → `codec` (JSON ↔ protobuf, and the calls) → `grpc` (the protocol) →
//! `upstream` (the transport) → leaves: `error`, `metadata`, `metrics`, `config`, `startup`
//! and the rest of plain data and pure functions. `pb` and `descriptors` hold what
//! `build.rs` generated.

// The library runs in other processes too (the tests, the fuzz targets): it never touches
// process-wide settings, and holds no unsafe code.
#![forbid(unsafe_code)]

pub mod admission;
pub mod binding;
pub mod body_intake;
pub mod codec;
pub mod config;
pub mod cross_site;
pub mod descriptors;
pub mod details;
pub mod error;
pub mod gateway;
pub mod grpc;
pub mod log_writer;
pub mod logging;
pub mod metadata;
pub mod method;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod pb;
pub mod request_id;
pub mod retry;
pub mod routing;
pub mod schema;
pub mod server;
pub mod startup;
#[cfg(feature = "otlp")]
pub mod telemetry;
pub mod upstream;
pub mod wkt;

#[cfg(test)]
mod test_protos;

pub use config::{Config, ConfigError, Overrides};
pub use error::GatewayError;
pub use server::serve;
pub use startup::StartupError;
