//! The runtime view of the compiled protos: decodes the embedded descriptor set (original
//! names, `google.api.http` options kept) into a `prost_reflect::DescriptorPool`. Routing and
//! binding read field types, json names and annotations from it.

use prost_reflect::DescriptorPool;

/// Decodes the descriptor set that `build.rs` embedded. Called once at startup; the pool is
/// reference-counted, so clones are cheap.
pub fn load() -> Result<DescriptorPool, String> {
    DescriptorPool::decode(crate::pb::DESCRIPTOR_SET)
        .map_err(|e| format!("embedded descriptor set does not decode: {e}"))
}
