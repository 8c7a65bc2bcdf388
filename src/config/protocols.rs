//! `[protocols]`: which front-ends beside REST the gateway serves on its port. Each is on by
//! default and can be turned off; a protocol that is off answers in its own form that it is
//! off (gRPC: UNIMPLEMENTED), so a client learns why rather than reading a REST 415.

use serde::Deserialize;

/// The front-ends beside REST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolsConfig {
    /// gRPC pass-through (`application/grpc` over HTTP/2).
    pub grpc: bool,
    /// gRPC-Web (`application/grpc-web`, `+proto`, `-text`) over HTTP/1.1 and HTTP/2.
    pub grpc_web: bool,
    /// Connect unary calls (`application/proto`, or `application/json` with
    /// `Connect-Protocol-Version`); off, such requests go to REST as before.
    pub connect: bool,
}

impl Default for ProtocolsConfig {
    fn default() -> Self {
        ProtocolsConfig {
            grpc: true,
            grpc_web: true,
            connect: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProtocols {
    grpc: Option<bool>,
    grpc_web: Option<bool>,
    connect: Option<bool>,
}

impl RawProtocols {
    pub(super) fn validate(self) -> ProtocolsConfig {
        ProtocolsConfig {
            grpc: self.grpc.unwrap_or(true),
            grpc_web: self.grpc_web.unwrap_or(true),
            connect: self.connect.unwrap_or(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    #[test]
    fn grpc_is_on_by_default_and_can_be_turned_off() {
        let on = Config::from_toml("", &Overrides::default()).expect("valid");
        assert!(on.protocols.grpc);
        let off = Config::from_toml("[protocols]\ngrpc = false", &Overrides::default()).expect("valid");
        assert!(!off.protocols.grpc);
        assert!(on.protocols.connect && off.protocols.connect);
        let unknown = Config::from_toml("[protocols]\nsoap = true", &Overrides::default());
        assert!(unknown.expect_err("unknown key").0.contains("soap"));
    }
}
