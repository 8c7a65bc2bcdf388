//! Tests of `GatewayError` and its rendering.

use axum::response::IntoResponse;

use super::*;

#[test]
fn method_not_allowed_carries_allow_header_and_json() {
    let err =
        GatewayError::method_not_allowed(&http::Method::DELETE, &[http::Method::GET, http::Method::POST]);
    let response = err.into_response();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET, POST");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
}

#[test]
fn internal_errors_hide_their_cause() {
    let err = GatewayError::internal("secret stack detail");
    assert_eq!(
        err.body(),
        json!({"code": 13, "message": "internal gateway error", "details": []})
    );
}

#[test]
fn bad_field_has_bad_request_detail() {
    let body = GatewayError::bad_field("ids", "invalid value \"x\"").body();
    assert_eq!(body["code"], 3);
    assert_eq!(
        body["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    assert_eq!(body["details"][0]["fieldViolations"][0]["field"], "ids");
}
