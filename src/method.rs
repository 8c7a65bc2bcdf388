//! The method table: what a method is, whatever its schema source. Each [`Method`] names the
//! RPC as the descriptors do (`MyService.User`), carries the gRPC path that goes on the wire
//! (`/MyService/User`), its kind, its message descriptors and the [`Codec`] that turns its
//! messages into JSON and back. Routing and binding read methods; how a codec works is the
//! codec layer's business.

use std::collections::HashMap;
use std::sync::Arc;

use http::uri::PathAndQuery;
use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};

use crate::codec::{Codec, compiled, http_body};

/// How a method is called: gRPC's four shapes. Every shape is in the table; the front-ends
/// say how each is carried (`gateway/client_stream.rs`, `gateway/websocket.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    BidiStreaming,
}

impl MethodKind {
    /// The shape in words, for `check-config` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Unary => "unary",
            MethodKind::ServerStreaming => "server streaming",
            MethodKind::ClientStreaming => "client streaming",
            MethodKind::BidiStreaming => "bidirectional streaming",
        }
    }
}

/// One RPC the gateway can call.
pub struct Method {
    /// `package.Service.Method`, or `Service.Method` for package-less protos.
    pub full_name: String,
    /// The HTTP/2 `:path` of the call, from the original descriptor.
    pub grpc_path: PathAndQuery,
    pub kind: MethodKind,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
    /// The method itself: its service, options and comments (for the OpenAPI document).
    pub descriptor: MethodDescriptor,
    pub codec: Arc<dyn Codec>,
    /// The reply is `google.api.HttpBody`: answered as its raw bytes, not as JSON
    /// (`codec/http_body.rs`).
    pub raw_reply: bool,
}

impl Method {
    /// Any shape but unary.
    pub fn is_streaming(&self) -> bool {
        self.kind != MethodKind::Unary
    }

    /// Whether the client sends a stream of messages (client-streaming and bidirectional).
    pub fn streams_requests(&self) -> bool {
        matches!(self.kind, MethodKind::ClientStreaming | MethodKind::BidiStreaming)
    }

    /// Whether the upstream answers with a stream of messages (server-streaming and
    /// bidirectional).
    pub fn streams_replies(&self) -> bool {
        matches!(self.kind, MethodKind::ServerStreaming | MethodKind::BidiStreaming)
    }
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Method")
            .field("full_name", &self.full_name)
            .field("grpc_path", &self.grpc_path)
            .field("kind", &self.kind)
            .finish()
    }
}

/// Every callable method of a schema, by full name, in descriptor order.
#[derive(Debug, Default)]
pub struct MethodTable {
    methods: Vec<Arc<Method>>,
    by_name: HashMap<String, usize>,
}

impl MethodTable {
    /// The methods of `pool` that have a codec: `codec_of` picks it (or `None` to leave the
    /// method out).
    pub fn build(
        pool: &DescriptorPool,
        codec_of: impl Fn(&MethodDescriptor) -> Option<Arc<dyn Codec>>,
    ) -> Result<MethodTable, String> {
        let mut table = MethodTable::default();
        for service in pool.services() {
            for descriptor in service.methods() {
                let Some(codec) = codec_of(&descriptor) else {
                    continue;
                };
                let path = format!("/{}/{}", service.full_name(), descriptor.name());
                let grpc_path = PathAndQuery::try_from(path.as_str())
                    .map_err(|e| format!("method {}: bad gRPC path {path:?}: {e}", descriptor.full_name()))?;
                let kind = match (descriptor.is_client_streaming(), descriptor.is_server_streaming()) {
                    (false, false) => MethodKind::Unary,
                    (false, true) => MethodKind::ServerStreaming,
                    (true, false) => MethodKind::ClientStreaming,
                    (true, true) => MethodKind::BidiStreaming,
                };
                let method = Method {
                    full_name: descriptor.full_name().to_string(),
                    grpc_path,
                    kind,
                    input: descriptor.input(),
                    output: descriptor.output(),
                    descriptor: descriptor.clone(),
                    codec,
                    raw_reply: http_body::is_http_body(&descriptor.output()),
                };
                table
                    .by_name
                    .insert(method.full_name.clone(), table.methods.len());
                table.methods.push(Arc::new(method));
            }
        }
        Ok(table)
    }

    /// The protos built into the binary, each with its compiled (pbjson) codec.
    pub fn compiled(pool: &DescriptorPool) -> Result<MethodTable, String> {
        Self::build(pool, |descriptor| {
            compiled::find(descriptor.full_name()).map(|factory| factory(descriptor))
        })
    }

    /// Looks a method up by its full name (`MyService.User`).
    pub fn find(&self, full_name: &str) -> Option<&Arc<Method>> {
        self.by_name.get(full_name).map(|&i| &self.methods[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Method>> {
        self.methods.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MethodTable {
        let pool = crate::descriptors::load().expect("descriptors");
        MethodTable::compiled(&pool).expect("method table")
    }

    /// The seed's proto has no package; its wire paths must not gain the synthetic one that
    /// build.rs gives it for code generation.
    #[test]
    fn package_less_methods_keep_their_wire_paths() {
        let table = table();
        let user = table.find("MyService.User").expect("MyService.User in the table");
        assert_eq!(user.grpc_path, "/MyService/User");
        let health = table
            .find("MyService.Health")
            .expect("MyService.Health in the table");
        assert_eq!(health.grpc_path, "/MyService/Health");
        assert!(
            table
                .iter()
                .all(|m| !m.grpc_path.as_str().contains("protogate_unpackaged"))
        );
    }

    #[test]
    fn every_compiled_codec_is_a_method_of_the_descriptor_pool() {
        let table = table();
        for name in compiled::names() {
            assert!(table.find(name).is_some(), "{name}");
        }
        assert_eq!(table.iter().count(), compiled::names().count());
    }
}
