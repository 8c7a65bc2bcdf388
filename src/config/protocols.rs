//! `[protocols]`: which front-ends beside REST the gateway serves on its port. Each is on by
//! default and can be turned off; a protocol that is off answers in its own form that it is
//! off (gRPC: UNIMPLEMENTED), so a client learns why rather than reading a REST 415.
//! Per service (`[protocols.services."pkg.Svc"]`) and per method
//! (`[protocols.methods."pkg.Svc.Method"]`), `connect_get` says whether Connect may call a
//! unary method with GET, over what the schema says (`schema/connect_get.rs`), the method's
//! level winning over its service's, as the output options' levels do (`output.rs`).

use std::collections::BTreeMap;

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
    /// The per-service and per-method settings (`connect_get`).
    pub services: BTreeMap<String, ProtocolOverrides>,
    pub methods: BTreeMap<String, ProtocolOverrides>,
}

/// What one `[protocols.services."…"]` or `[protocols.methods."…"]` table sets; `None`
/// keeps the level below.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolOverrides {
    /// `true`: Connect may call the method with GET (a read); `false`: never, even a method
    /// marked `NO_SIDE_EFFECTS` or bound to a `get:` rule.
    pub connect_get: Option<bool>,
}

impl Default for ProtocolsConfig {
    fn default() -> Self {
        ProtocolsConfig {
            grpc: true,
            grpc_web: true,
            connect: true,
            services: BTreeMap::new(),
            methods: BTreeMap::new(),
        }
    }
}

impl ProtocolsConfig {
    /// The `connect_get` set for method `full_name` (`pkg.Svc.Method`): its own level's, else
    /// its service's; `None` when neither sets it (the schema decides).
    pub fn connect_get(&self, full_name: &str) -> Option<bool> {
        let own = self.methods.get(full_name).and_then(|m| m.connect_get);
        own.or_else(|| {
            let (service, _) = full_name.rsplit_once('.')?;
            self.services.get(service)?.connect_get
        })
    }

    /// The first service or method key that names nothing in the schema, as an error line.
    pub fn unknown_selector(
        &self,
        is_service: impl Fn(&str) -> bool,
        is_method: impl Fn(&str) -> bool,
    ) -> Option<String> {
        super::values::unknown_selector("protocols", &self.services, &self.methods, is_service, is_method)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProtocols {
    grpc: Option<bool>,
    grpc_web: Option<bool>,
    connect: Option<bool>,
    #[serde(default)]
    services: BTreeMap<String, ProtocolOverrides>,
    #[serde(default)]
    methods: BTreeMap<String, ProtocolOverrides>,
}

impl RawProtocols {
    pub(super) fn validate(self) -> ProtocolsConfig {
        ProtocolsConfig {
            grpc: self.grpc.unwrap_or(true),
            grpc_web: self.grpc_web.unwrap_or(true),
            connect: self.connect.unwrap_or(true),
            services: self.services,
            methods: self.methods,
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

    #[test]
    fn connect_get_is_set_per_service_and_the_method_level_wins() {
        let toml = r#"
[protocols.services."a.S"]
connect_get = true
[protocols.methods."a.S.Off"]
connect_get = false
[protocols.methods."b.T.On"]
connect_get = true
"#;
        let config = Config::from_toml(toml, &Overrides::default()).expect("valid");
        let protocols = &config.protocols;
        assert_eq!(protocols.connect_get("a.S.Any"), Some(true));
        assert_eq!(protocols.connect_get("a.S.Off"), Some(false));
        assert_eq!(protocols.connect_get("b.T.On"), Some(true));
        assert_eq!(protocols.connect_get("b.T.Other"), None, "the schema decides");
        let typo = "[protocols.methods.\"a.S.M\"]\nconnect_gte = true";
        let refused = Config::from_toml(typo, &Overrides::default());
        assert!(refused.expect_err("unknown key").0.contains("connect_gte"));
    }
}
