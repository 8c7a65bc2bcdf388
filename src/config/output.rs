//! Output options: how a route prints its replies (and reads enum names), set globally in
//! `[transcoding]` and overridden per service (`[transcoding.services."pkg.Svc"]`), per
//! method (`[transcoding.methods."pkg.Svc.Method"]`) and per `[[rules]]` entry, the most
//! specific winning key by key; `error_format` too, over `[errors] format`. This module holds the settings as plain data and resolves
//! them for one rule; the route table resolves every route once at load time, so that a
//! request pays nothing for them (`routing::rules`), and the codecs print by them.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The resolved output options of one route. All off is the gateway's default JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputOptions {
    /// Unset singular message fields printed as `null` (scalars, lists and maps are printed
    /// with their defaults anyway); as grpc-gateway's `EmitUnpopulated`.
    pub emit_unpopulated: bool,
    /// Keys are the proto field names (`user_ids`), not the lowerCamel json names.
    pub use_proto_names: bool,
    /// Enums print as their numbers.
    pub enums_as_numbers: bool,
    /// Enum value names print without the prefix that is their type's name in UPPER_SNAKE
    /// (`ORDER_STATUS_PENDING` → `PENDING`), and are read with or without it.
    pub strip_enum_prefix: bool,
    /// How errors are answered (`[errors] format`, or this level's `error_format`).
    pub error_format: ErrorFormat,
}

/// The body of error answers: `google.rpc.Status` JSON, or RFC 9457 problem details.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorFormat {
    #[default]
    Status,
    Problem,
}

/// The keys one level of the config sets; `None` keeps the level below.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputOverrides {
    pub emit_unpopulated: Option<bool>,
    pub use_proto_names: Option<bool>,
    pub enums_as_numbers: Option<bool>,
    pub strip_enum_prefix: Option<bool>,
    pub error_format: Option<ErrorFormat>,
}

impl OutputOverrides {
    /// `base` with the keys this level sets.
    pub fn over(&self, base: OutputOptions) -> OutputOptions {
        OutputOptions {
            emit_unpopulated: self.emit_unpopulated.unwrap_or(base.emit_unpopulated),
            use_proto_names: self.use_proto_names.unwrap_or(base.use_proto_names),
            enums_as_numbers: self.enums_as_numbers.unwrap_or(base.enums_as_numbers),
            strip_enum_prefix: self.strip_enum_prefix.unwrap_or(base.strip_enum_prefix),
            error_format: self.error_format.unwrap_or(base.error_format),
        }
    }
}

/// Every level of output options the config file sets, but the rules' own (which travel
/// with each `RuleSpec`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputConfig {
    /// `[transcoding]`'s keys.
    pub global: OutputOptions,
    /// By service full name (`library.v1.Library`).
    pub services: BTreeMap<String, OutputOverrides>,
    /// By method full name (`library.v1.Library.GetBook`).
    pub methods: BTreeMap<String, OutputOverrides>,
}

impl OutputConfig {
    /// The options of a rule for method `selector` (`pkg.Svc.Method`) that sets `rule`.
    pub fn resolve(&self, selector: &str, rule: &OutputOverrides) -> OutputOptions {
        let mut options = self.global;
        if let Some((service, _)) = selector.rsplit_once('.')
            && let Some(level) = self.services.get(service)
        {
            options = level.over(options);
        }
        if let Some(level) = self.methods.get(selector) {
            options = level.over(options);
        }
        rule.over(options)
    }

    /// The first service or method key that `known` says names nothing, as an error line.
    pub fn unknown_selector(
        &self,
        is_service: impl Fn(&str) -> bool,
        is_method: impl Fn(&str) -> bool,
    ) -> Option<String> {
        super::values::unknown_selector(
            "transcoding",
            &self.services,
            &self.methods,
            is_service,
            is_method,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_level_wins_key_by_key() {
        let set = |emit: Option<bool>, names: Option<bool>| OutputOverrides {
            emit_unpopulated: emit,
            use_proto_names: names,
            ..OutputOverrides::default()
        };
        let config = OutputConfig {
            global: OutputOptions {
                enums_as_numbers: true,
                ..OutputOptions::default()
            },
            services: [("a.S".to_string(), set(Some(true), Some(true)))].into(),
            methods: [("a.S.M".to_string(), set(Some(false), None))].into(),
        };
        let resolved = config.resolve("a.S.M", &OutputOverrides::default());
        assert_eq!(
            resolved,
            OutputOptions {
                emit_unpopulated: false,
                use_proto_names: true,
                enums_as_numbers: true,
                strip_enum_prefix: false,
                error_format: ErrorFormat::Status,
            }
        );
        let by_rule = config.resolve("a.S.M", &set(Some(true), Some(false)));
        assert!(by_rule.emit_unpopulated && !by_rule.use_proto_names && by_rule.enums_as_numbers);
        // Another service's method sees the global options only.
        assert_eq!(
            config.resolve("b.T.M", &OutputOverrides::default()),
            config.global
        );
    }
}
