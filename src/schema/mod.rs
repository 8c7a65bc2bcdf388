//! The schema the gateway serves: the descriptor pool, the method table (each method with
//! its codec), the route table and the OpenAPI document, built together off the request
//! path and immutable afterwards. Where it comes from (`[schema] source`): the protos
//! compiled into the binary (pbjson codecs), or, with the dynamic codec, a
//! `FileDescriptorSet` file or a directory of `.proto` files (`files.rs`), or the upstream's
//! server reflection (`reflection.rs`); the runtime sources' files become one pool in one
//! canonical order, their options kept (`file_set.rs`). `live.rs` holds the schema in use and swaps in a new
//! one on reload. Every rule is checked when a schema is built: a bad one refuses the schema.

mod connect_get;
pub mod file_set;
pub mod files;
pub mod live;
pub mod reflection;

use std::collections::HashSet;

use bytes::Bytes;
use prost_reflect::DescriptorPool;

use crate::codec::dynamic;
use crate::config::Config;
use crate::method::{Method, MethodTable};
use crate::routing::{self, RouteTable};
use crate::{descriptors, openapi};

/// One immutable schema; a request keeps the one it started with.
pub struct Schema {
    pool: DescriptorPool,
    methods: MethodTable,
    routes: RouteTable,
    /// The methods Connect may call with GET (`connect_get.rs`).
    connect_get: HashSet<String>,
    /// The OpenAPI document of `routes`, rendered once (served at `/openapi.json`).
    openapi: Bytes,
    /// A short fingerprint of the descriptors, shown by `/readyz` and in reload logs.
    hash: String,
}

impl Schema {
    /// The protos compiled into the binary, with `config`'s rules.
    pub fn compiled(config: &Config) -> Result<Schema, String> {
        let pool = descriptors::load()?;
        let methods = MethodTable::compiled(&pool)?;
        Schema::build(pool, methods, config)
    }

    /// A schema loaded at run time: every method goes through the dynamic codec.
    pub fn dynamic(pool: DescriptorPool, config: &Config) -> Result<Schema, String> {
        let methods = MethodTable::build(&pool, |method| Some(dynamic::codec(method)))?;
        Schema::build(pool, methods, config)
    }

    /// Routes and documents `methods` of `pool` under `config`'s rules.
    fn build(pool: DescriptorPool, methods: MethodTable, config: &Config) -> Result<Schema, String> {
        let output = &config.transcoding.output;
        if let Some(unknown) = output.unknown_selector(
            |service| pool.get_service_by_name(service).is_some(),
            |method| methods.find(method).is_some(),
        ) {
            return Err(unknown);
        }
        if let Some(unknown) = config.protocols.unknown_selector(
            |service| pool.get_service_by_name(service).is_some(),
            |method| methods.find(method).is_some(),
        ) {
            return Err(unknown);
        }
        let routes = routing::build_table_with(
            &pool,
            &methods,
            &config.rules,
            config.transcoding.unbound_methods,
            output,
        )?;
        let connect_get = connect_get::readable(&methods, &routes, &config.protocols);
        let openapi = openapi::render(&routes)?;
        let hash = hash_of(&pool);
        Ok(Schema {
            pool,
            methods,
            routes,
            connect_get,
            openapi,
            hash,
        })
    }

    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    pub fn methods(&self) -> &MethodTable {
        &self.methods
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// Whether Connect may call `method` with GET: a read by its proto or its HTTP rules, or
    /// as the config sets it (`connect_get.rs`).
    pub fn connect_get(&self, method: &Method) -> bool {
        self.connect_get.contains(method.full_name.as_str())
    }

    /// The OpenAPI 3.1 document of the route table, as JSON bytes (cheap to clone).
    pub fn openapi(&self) -> Bytes {
        self.openapi.clone()
    }

    /// 12 hex digits that change when the descriptors do.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// The fingerprint of `pool`'s descriptors, as [`Schema::hash`] shows it.
fn hash_of(pool: &DescriptorPool) -> String {
    fingerprint(&pool.encode_to_vec())
}

/// FNV-1a (64 bits) of `bytes`, as 12 hex digits: stable across runs and builds, unlike
/// the standard library's hasher, so that two gateways on one schema show one hash.
fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{:012x}", hash >> 16)
}
