//! The method table: what a method is, whatever its schema source. Each [`Method`] names the
//! RPC as the descriptors do (`MyService.User`), carries the gRPC path that goes on the wire
//! (`/MyService/User`), its kind, its message descriptors and the [`Codec`] that turns its
//! messages into JSON and back. Routing and binding read methods; how a codec works is the
//! codec layer's business.

use std::collections::HashMap;
use std::sync::Arc;

use http::uri::PathAndQuery;
use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};

use crate::codec::{Codec, compiled};

/// How a method is called. Client-streaming and bidirectional methods are not in the table:
/// an HTTP/JSON request carries one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Unary,
    ServerStreaming,
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
}

impl Method {
    pub fn is_streaming(&self) -> bool {
        self.kind == MethodKind::ServerStreaming
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
    /// method out). Client-streaming methods are always left out.
    pub fn build(
        pool: &DescriptorPool,
        codec_of: impl Fn(&MethodDescriptor) -> Option<Arc<dyn Codec>>,
    ) -> Result<MethodTable, String> {
        let mut table = MethodTable::default();
        for service in pool.services() {
            for descriptor in service.methods() {
                if descriptor.is_client_streaming() {
                    continue;
                }
                let Some(codec) = codec_of(&descriptor) else {
                    continue;
                };
                let path = format!("/{}/{}", service.full_name(), descriptor.name());
                let grpc_path = PathAndQuery::try_from(path.as_str())
                    .map_err(|e| format!("method {}: bad gRPC path {path:?}: {e}", descriptor.full_name()))?;
                let kind = if descriptor.is_server_streaming() {
                    MethodKind::ServerStreaming
                } else {
                    MethodKind::Unary
                };
                let method = Method {
                    full_name: descriptor.full_name().to_string(),
                    grpc_path,
                    kind,
                    input: descriptor.input(),
                    output: descriptor.output(),
                    descriptor: descriptor.clone(),
                    codec,
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
