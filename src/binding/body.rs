//! Request bodies: media-type check and strict JSON parsing. A body is parsed into a
//! `serde_json::Value` that rejects duplicate object keys at any depth (plain serde_json keeps
//! the last one silently, which loses data). Type checking against the message is pbjson's job
//! later; this file only guarantees well-formed, unambiguous JSON.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::GatewayError;

/// Rejects bodies whose declared media type is not JSON, and bodies that declare none: a
/// page on another site can send a body without a `Content-Type` and without a preflight
/// (`no-cors` fetch of a Blob), so such a body is never read as JSON (`cross_site.rs`).
pub fn check_content_type(content_type: Option<&str>) -> Result<(), GatewayError> {
    let Some(raw) = content_type else {
        return Err(GatewayError::missing_content_type());
    };
    let essence = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Ok(())
    } else {
        Err(GatewayError::unsupported_media_type(raw))
    }
}

/// Parses a body strictly. An empty (or all-whitespace) body is `None`.
pub fn parse(bytes: &[u8]) -> Result<Option<Value>, GatewayError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = de
        .deserialize_any(StrictVisitor)
        .and_then(|v| de.end().map(|()| v));
    value
        .map(Some)
        .map_err(|e| GatewayError::bad_field("body", format!("malformed JSON body: {e}")))
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(StrictSeed)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

struct StrictSeed;

impl<'de> de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth() {
        assert!(parse(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse(br#"{"a":{"b":1,"b":1}}"#).is_err());
        assert!(parse(br#"[{"b":1,"b":1}]"#).is_err());
        assert_eq!(
            parse(br#"{"a":{"b":1},"c":[1,2]}"#).expect("parses"),
            Some(json!({"a":{"b":1},"c":[1,2]}))
        );
    }

    #[test]
    fn empty_body_is_none_and_garbage_is_an_error() {
        assert_eq!(parse(b"").expect("empty ok"), None);
        assert_eq!(parse(b" \n").expect("blank ok"), None);
        let err = parse(b"{\"a\":").expect_err("truncated");
        assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
        assert!(parse(b"{} {}").is_err(), "trailing data");
    }

    #[test]
    fn large_integers_survive() {
        assert_eq!(
            parse(b"[18446744073709551615, -9223372036854775808]").expect("parses"),
            Some(json!([u64::MAX, i64::MIN]))
        );
    }

    #[test]
    fn content_types() {
        let err = check_content_type(None).expect_err("no content type");
        assert_eq!(err.http_status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(check_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_content_type(Some("application/merge-patch+json")).is_ok());
        let err = check_content_type(Some("application/x-www-form-urlencoded")).expect_err("rejected");
        assert_eq!(err.http_status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
