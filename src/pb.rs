//! Generated protobuf code, quarantined: prost message types and pbjson serde impls for every
//! `.proto` under `proto/` (package-less files live under `protogate_unpackaged`), plus the
//! encoded descriptor set that the runtime reads for field types, json names and
//! `google.api.http` annotations. Nothing here is written by hand except this wrapper.

#![allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    missing_docs,
    rustdoc::all,
    unreachable_pub
)]

include!(concat!(env!("OUT_DIR"), "/pb_mod.rs"));

/// The `FileDescriptorSet` of every compiled `.proto`, with original names and options.
pub static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

#[cfg(test)]
mod tests {
    #[test]
    fn file_descriptor_set_is_valid() {
        let pool =
            prost_reflect::DescriptorPool::decode(super::DESCRIPTOR_SET).expect("descriptor set decodes");
        // The seed's proto has no package: its names must stay unqualified.
        assert!(pool.get_service_by_name("MyService").is_some());
        assert!(pool.get_message_by_name("UserReq").is_some());
        assert!(pool.get_extension_by_name("google.api.http").is_some());
    }
}
