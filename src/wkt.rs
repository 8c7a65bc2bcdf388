//! Well-known types whose pbjson-types JSON form departs from the proto3 JSON mapping, done
//! right: `Timestamp` prints RFC 3339 with `Z` and 0, 3, 6 or 9 fractional digits (pbjson
//! prints `+00:00`), and `FieldMask` is one string of comma-separated lowerCamelCase paths
//! (pbjson uses an object). `build.rs` maps both protobuf types here; every other
//! well-known type stays with pbjson-types. The wire format is prost's, unchanged.

use std::fmt;

use chrono::{DateTime, SecondsFormat};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The range the proto3 JSON mapping allows: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let nanos = u32::try_from(self.nanos).ok().filter(|n| *n < 1_000_000_000);
        let time = nanos
            .filter(|_| (MIN_SECONDS..=MAX_SECONDS).contains(&self.seconds))
            .and_then(|n| DateTime::from_timestamp(self.seconds, n))
            .ok_or_else(|| {
                serde::ser::Error::custom(format!(
                    "timestamp {}s {}ns is out of range",
                    self.seconds, self.nanos
                ))
            })?;
        serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp such as 2024-01-02T03:04:05Z")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
                let time = DateTime::parse_from_rfc3339(text)
                    .map_err(|e| E::custom(format!("invalid timestamp {text:?}: {e}")))?;
                let seconds = time.timestamp();
                if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
                    return Err(E::custom(format!("timestamp {text:?} is out of range")));
                }
                let nanos = i32::try_from(time.timestamp_subsec_nanos()).map_err(E::custom)?;
                Ok(Timestamp { seconds, nanos })
            }
        }
        deserializer.deserialize_str(TimestampVisitor)
    }
}

/// `google.protobuf.FieldMask`; `paths` hold proto (snake_case) names, as on the wire.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct FieldMask {
    #[prost(string, repeated, tag = "1")]
    pub paths: Vec<String>,
}

impl Serialize for FieldMask {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let paths: Vec<String> = self.paths.iter().map(|p| map_segments(p, lower_camel)).collect();
        serializer.serialize_str(&paths.join(","))
    }
}

impl<'de> Deserialize<'de> for FieldMask {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldMaskVisitor;
        impl<'de> Visitor<'de> for FieldMaskVisitor {
            type Value = FieldMask;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field mask such as \"title,author.name\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<FieldMask, E> {
                let paths = text
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| map_segments(p, snake))
                    .collect();
                Ok(FieldMask { paths })
            }
            // Also take `{"paths": [...]}`, the form pbjson printed, so older clients keep working.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldMask, A::Error> {
                let mut paths = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key != "paths" {
                        return Err(de::Error::unknown_field(&key, &["paths"]));
                    }
                    paths = map.next_value()?;
                }
                Ok(FieldMask { paths })
            }
        }
        deserializer.deserialize_any(FieldMaskVisitor)
    }
}

fn map_segments(path: &str, f: fn(&str) -> String) -> String {
    path.split('.').map(f).collect::<Vec<_>>().join(".")
}

/// `update_mask` → `updateMask`.
fn lower_camel(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut upper = false;
    for c in segment.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `updateMask` → `update_mask`.
fn snake(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() + 4);
    for c in segment.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_print_z_and_minimal_fraction_groups() {
        let cases = [
            (Timestamp { seconds: 0, nanos: 0 }, "1970-01-01T00:00:00Z"),
            (
                Timestamp {
                    seconds: 1_704_164_685,
                    nanos: 123_000_000,
                },
                "2024-01-02T03:04:45.123Z",
            ),
            (
                Timestamp {
                    seconds: 1_704_164_685,
                    nanos: 123_456_000,
                },
                "2024-01-02T03:04:45.123456Z",
            ),
            (
                Timestamp {
                    seconds: 1_704_164_685,
                    nanos: 1,
                },
                "2024-01-02T03:04:45.000000001Z",
            ),
        ];
        for (ts, text) in cases {
            assert_eq!(serde_json::to_value(ts).expect("serializes"), json!(text));
            assert_eq!(
                serde_json::from_value::<Timestamp>(json!(text)).expect("parses"),
                ts
            );
        }
        let offset: Timestamp = serde_json::from_value(json!("2024-01-02T05:04:45+02:00")).expect("offset");
        assert_eq!(offset.seconds, 1_704_164_685);
        assert!(serde_json::from_value::<Timestamp>(json!("yesterday")).is_err());
        assert!(
            serde_json::to_value(Timestamp {
                seconds: MAX_SECONDS + 1,
                nanos: 0
            })
            .is_err()
        );
        assert!(
            serde_json::to_value(Timestamp {
                seconds: 0,
                nanos: -1
            })
            .is_err()
        );
    }

    #[test]
    fn field_masks_are_camel_case_strings() {
        let mask = FieldMask {
            paths: vec!["title".into(), "update_mask.foo_bar".into()],
        };
        assert_eq!(
            serde_json::to_value(&mask).expect("serializes"),
            json!("title,updateMask.fooBar")
        );
        assert_eq!(
            serde_json::from_value::<FieldMask>(json!("title, updateMask.fooBar")).expect("parses"),
            mask
        );
        assert_eq!(
            serde_json::from_value::<FieldMask>(json!("")).expect("empty"),
            FieldMask::default()
        );
        let legacy: FieldMask = serde_json::from_value(json!({"paths": ["a_b"]})).expect("object form");
        assert_eq!(legacy.paths, vec!["a_b".to_string()]);
    }
}
