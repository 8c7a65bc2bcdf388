//! A minimal HTTP/1.1 client for tests, on hyper-util's legacy client.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A response with its body read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// HTTP trailers, when the response had any.
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    /// The body as JSON; panics with the raw body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts status, JSON content type and exact JSON body in one go.
    pub fn assert_json(&self, status: u16, body: serde_json::Value) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "status; body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "content type"
        );
        assert_eq!(self.json(), body);
    }
}

/// Sends one request over HTTP/1.1. `headers` are added as given; `body` may be empty.
pub async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    send_with(client, method, url, headers, body.into()).await
}

/// Like [`send`], over HTTP/2 with prior knowledge (h2c).
pub async fn send_h2(method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    send_with(client, method, url, headers, body.into()).await
}

async fn send_with(
    client: Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body)).expect("valid request");
    let response = client
        .request(request)
        .await
        .expect("request reaches the gateway");
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.expect("body reads");
    let trailers = collected.trailers().cloned();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

pub async fn get(url: &str) -> Reply {
    send(Method::GET, url, &[], Bytes::new()).await
}

pub async fn post_json(url: &str, body: &str) -> Reply {
    send(
        Method::POST,
        url,
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await
}
