//! The file schema sources: `descriptors:PATH`, a `FileDescriptorSet` with its imports, and
//! `protos:DIR`, every `.proto` file under a directory compiled by protox. Also the
//! fingerprint (`changed_at`) that the reload loop compares to notice an edited file.

use std::path::Path;
use std::time::SystemTime;

use prost::Message as _;
use prost_reflect::DescriptorPool;

use super::file_set;

/// The newest modification time and the number of files of a source, to notice a change.
pub fn changed_at(path: &Path) -> (Option<SystemTime>, usize) {
    let mut newest = None;
    let mut count = 0;
    visit(path, &mut |p| {
        count += 1;
        let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
        newest = newest.max(modified);
    });
    (newest, count)
}

fn visit(path: &Path, each: &mut dyn FnMut(&Path)) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries.flatten() {
                visit(&entry.path(), each);
            }
        }
        Err(_) => each(path),
    }
}

/// A `FileDescriptorSet` file, every import included.
pub fn descriptor_file(path: &Path) -> Result<DescriptorPool, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let pool = DescriptorPool::decode(bytes.as_slice()).map_err(|e| {
        format!(
            "{} is not a FileDescriptorSet with its imports ({e}); write one with \
             `buf build -o FILE` or `protoc --include_imports --descriptor_set_out=FILE`",
            path.display()
        )
    })?;
    file_set::canonical(&pool).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every `.proto` file under `dir`, compiled by protox. Imports resolve in `dir` first, then
/// among the well-known types and the `google/api` and `google/rpc` files built into the
/// gateway.
pub fn proto_dir(dir: &Path) -> Result<DescriptorPool, String> {
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
    file_set::canonical(&compiler.descriptor_pool())
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
