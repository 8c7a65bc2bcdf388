//! The schema the gateway serves: the descriptor pool, the method table (each method with
//! its codec), the route table and the OpenAPI document, built together off the request
//! path and immutable afterwards. Its source (`[schema] source`) is the protos compiled into
//! the binary (pbjson codecs), or, with the dynamic codec, a `FileDescriptorSet` file or a
//! directory of `.proto` files compiled here by protox. Every rule is checked here, so a bad
//! one, or a missing or malformed file, stops startup with one line naming it.

use std::path::Path;

use bytes::Bytes;
use prost::Message as _;
use prost_reflect::DescriptorPool;

use crate::codec::dynamic;
use crate::config::{Config, SchemaSource};
use crate::method::MethodTable;
use crate::routing::{self, RouteTable};
use crate::startup::StartupError;
use crate::{descriptors, openapi};

/// One immutable schema; requests read it through a shared reference.
pub struct Schema {
    pool: DescriptorPool,
    methods: MethodTable,
    routes: RouteTable,
    /// The OpenAPI document of `routes`, rendered once (served at `/openapi.json`).
    openapi: Bytes,
}

impl Schema {
    /// The schema of `config`'s source, with its rules.
    pub fn load(config: &Config) -> Result<Schema, StartupError> {
        let source = &config.schema.source;
        let pool = match source {
            SchemaSource::Compiled => return Schema::compiled(config),
            SchemaSource::Descriptors(path) => descriptor_file(path),
            SchemaSource::Protos(dir) => proto_dir(dir),
        }
        .map_err(|why| StartupError::Schema(format!("schema {source}: {why}")))?;
        let methods = MethodTable::build(&pool, |method| Some(dynamic::codec(method)))
            .map_err(|why| StartupError::Schema(format!("schema {source}: {why}")))?;
        Schema::build(pool, methods, config)
    }

    /// The protos compiled into the binary, with `config`'s rules.
    pub fn compiled(config: &Config) -> Result<Schema, StartupError> {
        let pool = descriptors::load().map_err(StartupError::Schema)?;
        let methods = MethodTable::compiled(&pool).map_err(StartupError::Schema)?;
        Schema::build(pool, methods, config)
    }

    /// Routes and documents `methods` of `pool` under `config`'s rules.
    pub fn build(
        pool: DescriptorPool,
        methods: MethodTable,
        config: &Config,
    ) -> Result<Schema, StartupError> {
        let routes = routing::build_table(&pool, &methods, &config.rules, config.transcoding.unbound_methods)
            .map_err(StartupError::Schema)?;
        let openapi = openapi::render(&pool, &routes).map_err(StartupError::Schema)?;
        Ok(Schema {
            pool,
            methods,
            routes,
            openapi,
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

    /// The OpenAPI 3.1 document of the route table, as JSON bytes (cheap to clone).
    pub fn openapi(&self) -> Bytes {
        self.openapi.clone()
    }
}

/// A `FileDescriptorSet` file, every import included.
fn descriptor_file(path: &Path) -> Result<DescriptorPool, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    DescriptorPool::decode(bytes.as_slice()).map_err(|e| {
        format!(
            "{} is not a FileDescriptorSet with its imports ({e}); write one with \
             `buf build -o FILE` or `protoc --include_imports --descriptor_set_out=FILE`",
            path.display()
        )
    })
}

/// Every `.proto` file under `dir`, compiled by protox. Imports resolve in `dir` first, then
/// among the well-known types and the `google/api` and `google/rpc` files built into the
/// gateway.
fn proto_dir(dir: &Path) -> Result<DescriptorPool, String> {
    let mut names = Vec::new();
    collect_protos(dir, dir, &mut names)?;
    if names.is_empty() {
        return Err(format!("no .proto file under {}", dir.display()));
    }
    names.sort();
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(protox::file::IncludeFileResolver::new(dir.to_path_buf()));
    resolver.add(protox::file::GoogleFileResolver::new());
    resolver.add(vendored_google_files()?);
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler.open_files(&names).map_err(|e| match e.file() {
        Some(file) if !e.to_string().contains(file) => format!("{file}: {e}"),
        _ => e.to_string(),
    })?;
    Ok(compiler.descriptor_pool())
}

fn collect_protos(root: &Path, dir: &Path, names: &mut Vec<String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            collect_protos(root, &path, names)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let name = path.strip_prefix(root).unwrap_or(&path);
            names.push(name.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// The vendored `google/api` and `google/rpc` files, from the descriptor set built in.
fn vendored_google_files() -> Result<protox::file::DescriptorSetFileResolver, String> {
    let mut set = prost_types::FileDescriptorSet::decode(crate::pb::DESCRIPTOR_SET)
        .map_err(|e| format!("embedded descriptor set does not decode: {e}"))?;
    set.file.retain(|f| {
        let name = f.name();
        name.starts_with("google/api/") || name.starts_with("google/rpc/")
    });
    Ok(protox::file::DescriptorSetFileResolver::new(set))
}
