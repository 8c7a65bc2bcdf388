//! The `reflection` schema source: asks the upstream for its schema over gRPC server
//! reflection, `grpc.reflection.v1.ServerReflection` first and `v1alpha` when the server
//! serves only that one (grpcio-reflection before 1.62, grpc-go before 1.57). It lists the
//! services, fetches the file that defines each one (servers send its dependencies along),
//! then any dependency still missing by name, and builds a descriptor pool of them all from
//! the files' bytes as the server sent them (`file_set.rs`), so that every option and
//! extension (`google.api.http` first of all) is kept.
//!
//! Each exchange is one call over the gateway's own protocol layer: every request message is
//! framed into the one request body, the client half-closes, and the server answers each in
//! order before it ends the stream. The reflection and health services themselves are not
//! fronted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::BytesMut;
use http::uri::PathAndQuery;
use prost::Message as _;
use prost_reflect::DescriptorPool;

use super::file_set::{self, RawFile};
use crate::error::GatewayError;
use crate::grpc::{self, Outgoing};
use crate::upstream::Upstream;

const V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// Services that are the server's plumbing, not its API.
const NOT_FRONTED: [&str; 2] = ["grpc.reflection.", "grpc.health."];

/// How many rounds of fetching missing dependencies by name before giving up.
const MAX_DEPENDENCY_ROUNDS: usize = 16;

/// Why reflection gave no schema.
#[derive(Debug)]
pub enum ReflectionError {
    /// The upstream answered, but serves neither reflection version.
    NotServed(String),
    /// The upstream could not be reached or did not answer in time; worth trying again.
    Unreachable(GatewayError),
    /// The upstream answered reflection with something unusable.
    Bad(String),
}

impl std::fmt::Display for ReflectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReflectionError::NotServed(why) => write!(
                f,
                "the upstream does not serve gRPC server reflection ({why}); enable it there, or \
                 use --schema compiled, --schema descriptors:PATH or --schema protos:DIR"
            ),
            ReflectionError::Unreachable(err) => write!(f, "reflection: {}", err.message()),
            ReflectionError::Bad(why) => write!(f, "reflection: {why}"),
        }
    }
}

/// The upstream's schema, as a descriptor pool of every file its services need.
pub async fn fetch(upstream: &Upstream, timeout: Duration) -> Result<DescriptorPool, ReflectionError> {
    let (path, listed) = match exchange(upstream, V1, &[list_services()], timeout).await {
        Ok(listed) => (V1, listed),
        Err(err) if err.code() == tonic::Code::Unimplemented => {
            match exchange(upstream, V1ALPHA, &[list_services()], timeout).await {
                Ok(listed) => (V1ALPHA, listed),
                Err(err) if err.code() == tonic::Code::Unimplemented => {
                    return Err(ReflectionError::NotServed(err.message().to_string()));
                }
                Err(err) => return Err(classify(err)),
            }
        }
        Err(err) => return Err(classify(err)),
    };
    let mut services = Vec::new();
    for reply in listed {
        match reply.message_response {
            Some(MessageResponse::Services(list)) => {
                services.extend(list.service.into_iter().map(|s| s.name));
            }
            other => return Err(unexpected(other)),
        }
    }
    services.retain(|s| !NOT_FRONTED.iter().any(|prefix| s.starts_with(prefix)));

    // First the file of each service, then, round by round, any dependency still missing.
    let mut files: BTreeMap<String, RawFile> = BTreeMap::new();
    let mut requests: Vec<Request> = services.iter().map(|s| symbol(s)).collect();
    for _ in 0..MAX_DEPENDENCY_ROUNDS {
        let replies = exchange(upstream, path, &requests, timeout)
            .await
            .map_err(classify)?;
        collect(&mut files, replies)?;
        let missing: BTreeSet<&String> = files
            .values()
            .flat_map(|f| f.dependencies().iter())
            .filter(|d| !files.contains_key(*d))
            .collect();
        if missing.is_empty() {
            return file_set::pool(files.into_values()).map_err(ReflectionError::Bad);
        }
        requests = missing.into_iter().map(|name| filename(name)).collect();
    }
    Err(ReflectionError::Bad("dependencies keep missing".to_string()))
}

fn classify(err: GatewayError) -> ReflectionError {
    match err.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => ReflectionError::Unreachable(err),
        _ => ReflectionError::Bad(err.message().to_string()),
    }
}

fn unexpected(reply: Option<MessageResponse>) -> ReflectionError {
    match reply {
        Some(MessageResponse::Error(e)) => {
            ReflectionError::Bad(format!("error {}: {}", e.error_code, e.error_message))
        }
        other => ReflectionError::Bad(format!("unexpected answer {other:?}")),
    }
}

/// Adds the files of file-descriptor answers, their bytes untouched; an error answer fails
/// the fetch.
fn collect(files: &mut BTreeMap<String, RawFile>, replies: Vec<Response>) -> Result<(), ReflectionError> {
    for reply in replies {
        match reply.message_response {
            Some(MessageResponse::Files(found)) => {
                for bytes in found.file_descriptor_proto {
                    let file = RawFile::decode(bytes).map_err(ReflectionError::Bad)?;
                    files.entry(file.name().to_string()).or_insert(file);
                }
            }
            other => return Err(unexpected(other)),
        }
    }
    Ok(())
}

/// One call carrying `requests`; returns the answers, one per request.
async fn exchange(
    upstream: &Upstream,
    path: &'static str,
    requests: &[Request],
    timeout: Duration,
) -> Result<Vec<Response>, GatewayError> {
    let mut body = BytesMut::new();
    for request in requests {
        body.extend_from_slice(&grpc::frame(request));
    }
    let outgoing = Outgoing {
        path: PathAndQuery::from_static(path),
        metadata: Default::default(),
        timeout,
        body: body.freeze(),
    };
    let connection = upstream.connection()?;
    let work = async {
        let mut reply = grpc::call(&connection, outgoing).await?;
        let mut answers = Vec::with_capacity(requests.len());
        while let Some(message) = reply.message().await? {
            let answer = Response::decode(message).map_err(|e| {
                GatewayError::bad_upstream_reply(format!("reflection answer does not decode: {e}"))
            })?;
            answers.push(answer);
        }
        Ok(answers)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| GatewayError::deadline_exceeded(timeout))?
}

/// The services the upstream lists over reflection (v1, else v1alpha), its plumbing left
/// out; used to tell whether it serves the schema's services (`gateway/served.rs`).
pub async fn services(upstream: &Upstream, timeout: Duration) -> Result<Vec<String>, ReflectionError> {
    let mut listed = Err(ReflectionError::NotServed(String::new()));
    for path in [V1, V1ALPHA] {
        listed = match exchange(upstream, path, &[list_services()], timeout).await {
            Ok(replies) => Ok(replies),
            Err(err) if err.code() == tonic::Code::Unimplemented => {
                Err(ReflectionError::NotServed(err.message().to_string()))
            }
            Err(err) => return Err(classify(err)),
        };
        if listed.is_ok() {
            break;
        }
    }
    let mut services = Vec::new();
    for reply in listed? {
        match reply.message_response {
            Some(MessageResponse::Services(list)) => {
                services.extend(list.service.into_iter().map(|s| s.name));
            }
            other => return Err(unexpected(other)),
        }
    }
    services.retain(|s| !NOT_FRONTED.iter().any(|prefix| s.starts_with(prefix)));
    Ok(services)
}

fn list_services() -> Request {
    Request {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    }
}

fn symbol(name: &str) -> Request {
    Request {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(name.to_string())),
    }
}

fn filename(name: &str) -> Request {
    Request {
        host: String::new(),
        message_request: Some(MessageRequest::FileByFilename(name.to_string())),
    }
}

// The messages of grpc/reflection/v1/reflection.proto (identical in v1alpha) that the
// client uses, written out rather than generated: compiled in, the reflection service
// would become part of the gateway's own method table.

/// `ServerReflectionRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct Request {
    #[prost(string, tag = "1")]
    host: String,
    #[prost(oneof = "MessageRequest", tags = "3, 4, 7")]
    message_request: Option<MessageRequest>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum MessageRequest {
    #[prost(string, tag = "3")]
    FileByFilename(String),
    #[prost(string, tag = "4")]
    FileContainingSymbol(String),
    #[prost(string, tag = "7")]
    ListServices(String),
}

/// `ServerReflectionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct Response {
    #[prost(oneof = "MessageResponse", tags = "4, 6, 7")]
    message_response: Option<MessageResponse>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum MessageResponse {
    #[prost(message, tag = "4")]
    Files(FileDescriptorResponse),
    #[prost(message, tag = "6")]
    Services(ListServiceResponse),
    #[prost(message, tag = "7")]
    Error(ErrorResponse),
}

#[derive(Clone, PartialEq, prost::Message)]
struct FileDescriptorResponse {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file_descriptor_proto: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListServiceResponse {
    #[prost(message, repeated, tag = "1")]
    service: Vec<ServiceResponse>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ServiceResponse {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ErrorResponse {
    #[prost(int32, tag = "1")]
    error_code: i32,
    #[prost(string, tag = "2")]
    error_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written messages have the wire numbers of reflection.proto: a list_services
    /// request is field 7, and a file answer's bytes are field 4 → 1.
    #[test]
    fn messages_match_the_reflection_proto() {
        assert_eq!(list_services().encode_to_vec(), vec![0x3a, 0x00]);
        let answer = Response {
            message_response: Some(MessageResponse::Files(FileDescriptorResponse {
                file_descriptor_proto: vec![vec![1, 2]],
            })),
        };
        assert_eq!(answer.encode_to_vec(), vec![0x22, 0x04, 0x0a, 0x02, 1, 2]);
    }
}
