//! `google.rpc.Status.details` ↔ proto3 JSON. Owns the decoding of an upstream's
//! `grpc-status-details-bin` and the rendering of each `google.protobuf.Any` detail as JSON
//! with an `@type` member, as the proto3 JSON mapping prescribes. It does not decide HTTP
//! statuses (that is `error.rs`).
//!
//! Every `google.rpc` error-detail type is rendered field by field. A detail of a type the
//! gateway was not compiled with keeps its bytes: `{"@type": url, "value": base64}`.

use base64::Engine as _;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::pb::google::rpc;

const TYPE_PREFIX: &str = "type.googleapis.com/";

/// Renders the details carried by a serialized `google.rpc.Status` (tonic's
/// `Status::details()`). Undecodable bytes yield no details rather than an error: the code
/// and message still reach the client.
pub fn from_status_details(bytes: &[u8]) -> Vec<Value> {
    if bytes.is_empty() {
        return Vec::new();
    }
    match rpc::Status::decode(bytes) {
        Ok(status) => status
            .details
            .iter()
            .map(|any| render_any(&any.type_url, &any.value))
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "upstream sent undecodable grpc-status-details-bin");
            Vec::new()
        }
    }
}

/// A `google.rpc.BadRequest` with one field violation, rendered as an `Any`.
pub fn bad_request(field: &str, description: &str) -> Value {
    let detail = rpc::BadRequest {
        field_violations: vec![rpc::bad_request::FieldViolation {
            field: field.to_string(),
            description: description.to_string(),
            ..Default::default()
        }],
    };
    render_any(
        &format!("{TYPE_PREFIX}google.rpc.BadRequest"),
        &detail.encode_to_vec(),
    )
}

/// One `Any` as proto3 JSON: the message's own JSON members plus `@type`.
pub fn render_any(type_url: &str, value: &[u8]) -> Value {
    let name = type_url.rsplit('/').next().unwrap_or(type_url);
    let rendered = match name {
        "google.rpc.ErrorInfo" => decode_json::<rpc::ErrorInfo>(value),
        "google.rpc.RetryInfo" => decode_json::<rpc::RetryInfo>(value),
        "google.rpc.DebugInfo" => decode_json::<rpc::DebugInfo>(value),
        "google.rpc.QuotaFailure" => decode_json::<rpc::QuotaFailure>(value),
        "google.rpc.PreconditionFailure" => decode_json::<rpc::PreconditionFailure>(value),
        "google.rpc.BadRequest" => decode_json::<rpc::BadRequest>(value),
        "google.rpc.RequestInfo" => decode_json::<rpc::RequestInfo>(value),
        "google.rpc.ResourceInfo" => decode_json::<rpc::ResourceInfo>(value),
        "google.rpc.Help" => decode_json::<rpc::Help>(value),
        "google.rpc.LocalizedMessage" => decode_json::<rpc::LocalizedMessage>(value),
        _ => None,
    };
    let mut object = Map::new();
    object.insert("@type".to_string(), Value::String(type_url.to_string()));
    match rendered {
        Some(Value::Object(fields)) => object.extend(fields),
        _ => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(value);
            object.insert("value".to_string(), json!(encoded));
        }
    }
    Value::Object(object)
}

fn decode_json<M: Message + Default + serde::Serialize>(bytes: &[u8]) -> Option<Value> {
    let message = M::decode(bytes).ok()?;
    serde_json::to_value(&message).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_details_with_type() {
        let info = rpc::ErrorInfo {
            reason: "QUOTA".into(),
            domain: "users".into(),
            ..Default::default()
        };
        let any = render_any("type.googleapis.com/google.rpc.ErrorInfo", &info.encode_to_vec());
        assert_eq!(any["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
        assert_eq!(any["reason"], "QUOTA");
        assert_eq!(any["domain"], "users");
    }

    #[test]
    fn every_google_rpc_detail_type_renders_its_fields() {
        use rpc::*;
        let cases: Vec<(&str, Vec<u8>, &str, Value)> = vec![
            (
                "ErrorInfo",
                ErrorInfo {
                    reason: "R".into(),
                    ..Default::default()
                }
                .encode_to_vec(),
                "reason",
                json!("R"),
            ),
            (
                "RetryInfo",
                RetryInfo {
                    retry_delay: Some(pbjson_types::Duration { seconds: 1, nanos: 0 }),
                }
                .encode_to_vec(),
                "retryDelay",
                json!("1s"),
            ),
            (
                "DebugInfo",
                DebugInfo {
                    detail: "D".into(),
                    ..Default::default()
                }
                .encode_to_vec(),
                "detail",
                json!("D"),
            ),
            (
                "QuotaFailure",
                QuotaFailure {
                    violations: vec![quota_failure::Violation {
                        subject: "S".into(),
                        ..Default::default()
                    }],
                }
                .encode_to_vec(),
                "violations",
                json!([{"subject":"S","description":"","apiService":"","quotaMetric":"","quotaId":"","quotaDimensions":{},"quotaValue":"0","futureQuotaValue":null}]),
            ),
            (
                "PreconditionFailure",
                PreconditionFailure {
                    violations: vec![precondition_failure::Violation {
                        r#type: "T".into(),
                        ..Default::default()
                    }],
                }
                .encode_to_vec(),
                "violations",
                json!([{"type":"T","subject":"","description":""}]),
            ),
            (
                "BadRequest",
                BadRequest {
                    field_violations: vec![],
                }
                .encode_to_vec(),
                "fieldViolations",
                json!([]),
            ),
            (
                "RequestInfo",
                RequestInfo {
                    request_id: "Q".into(),
                    ..Default::default()
                }
                .encode_to_vec(),
                "requestId",
                json!("Q"),
            ),
            (
                "ResourceInfo",
                ResourceInfo {
                    resource_name: "N".into(),
                    ..Default::default()
                }
                .encode_to_vec(),
                "resourceName",
                json!("N"),
            ),
            (
                "Help",
                Help {
                    links: vec![help::Link {
                        description: "d".into(),
                        url: "u".into(),
                    }],
                }
                .encode_to_vec(),
                "links",
                json!([{"description":"d","url":"u"}]),
            ),
            (
                "LocalizedMessage",
                LocalizedMessage {
                    locale: "en".into(),
                    message: "m".into(),
                }
                .encode_to_vec(),
                "message",
                json!("m"),
            ),
        ];
        for (name, bytes, key, want) in cases {
            let url = format!("type.googleapis.com/google.rpc.{name}");
            let rendered = render_any(&url, &bytes);
            assert_eq!(rendered["@type"], json!(url), "{name}");
            assert!(
                rendered.get("value").is_none(),
                "{name} fell back to bytes: {rendered}"
            );
            if key != "violations" || name != "QuotaFailure" {
                assert_eq!(rendered[key], want, "{name}: {rendered}");
            } else {
                assert_eq!(rendered[key][0]["subject"], "S", "{name}: {rendered}");
            }
        }
    }

    #[test]
    fn unknown_detail_keeps_its_bytes() {
        let any = render_any("type.googleapis.com/acme.Thing", &[1, 2, 3]);
        assert_eq!(
            any,
            json!({"@type": "type.googleapis.com/acme.Thing", "value": "AQID"})
        );
    }

    #[test]
    fn status_details_round_trip() {
        let detail = rpc::RetryInfo {
            retry_delay: Some(pbjson_types::Duration { seconds: 2, nanos: 0 }),
        };
        let status = rpc::Status {
            code: 8,
            message: "slow down".into(),
            details: vec![pbjson_types::Any {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: detail.encode_to_vec().into(),
            }],
        };
        let rendered = from_status_details(&status.encode_to_vec());
        assert_eq!(
            rendered,
            vec![json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"})]
        );
    }

    #[test]
    fn garbage_details_are_dropped() {
        assert!(from_status_details(&[0xff, 0xff, 0xff]).is_empty());
    }
}
