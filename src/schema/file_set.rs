//! The descriptor files of a runtime schema, as one pool in one canonical order. Every
//! runtime source ends here: server reflection with the files its answers carried, and the
//! file sources with the files of the set they read or compiled.
//!
//! Two things make two sources of the same protos give the same schema. First, the files
//! stay the bytes the source sent: decoding them into `prost_types::FileDescriptorProto`
//! would drop every extension option (`google.api.http`, field behaviours, custom options),
//! so the pool is decoded from the raw bytes, which prost-reflect keeps whole. Second, the
//! order: the route table tries routes of equal specificity in the order of the pool's
//! services, and a descriptor set lists its files as the tool that wrote it chose, while
//! reflection gets them in the order of the server's answers. Files are put in dependency
//! order, ties broken by name, so the routes, the OpenAPI document and the schema's hash do
//! not depend on the source.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use prost_reflect::DescriptorPool;

/// One descriptor file as a source gave it: its encoded `FileDescriptorProto`, untouched,
/// and the names read from it.
pub struct RawFile {
    name: String,
    dependencies: Vec<String>,
    bytes: Vec<u8>,
}

impl RawFile {
    /// Reads the name and the imports of an encoded `FileDescriptorProto`; the bytes are kept
    /// as they are.
    pub fn decode(bytes: Vec<u8>) -> Result<RawFile, String> {
        // The prost-types form is lossy (it drops extension options), so it is read for its
        // names only and then dropped.
        let file = prost_types::FileDescriptorProto::decode(bytes.as_slice())
            .map_err(|e| format!("a file descriptor does not decode: {e}"))?;
        Ok(RawFile {
            name: file.name().to_string(),
            dependencies: file.dependency,
            bytes,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dependencies(&self) -> &[String] {
        &self.dependencies
    }
}

/// The files of an encoded `FileDescriptorSet`, each one's bytes untouched.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
}

/// A pool of `files` in canonical order (see the module's note). A name given twice keeps
/// its first file.
pub fn pool(files: impl IntoIterator<Item = RawFile>) -> Result<DescriptorPool, String> {
    let mut by_name: BTreeMap<String, RawFile> = BTreeMap::new();
    for file in files {
        by_name.entry(file.name.clone()).or_insert(file);
    }
    let set = RawSet {
        file: in_dependency_order(by_name)?,
    };
    DescriptorPool::decode(set.encode_to_vec().as_slice())
        .map_err(|e| format!("the files do not form a schema: {e}"))
}

/// `pool`'s files again, in canonical order.
pub fn canonical(pool: &DescriptorPool) -> Result<DescriptorPool, String> {
    let set = RawSet::decode(pool.encode_to_vec().as_slice())
        .map_err(|e| format!("the descriptor set does not decode: {e}"))?;
    let files = set
        .file
        .into_iter()
        .map(RawFile::decode)
        .collect::<Result<Vec<_>, _>>()?;
    self::pool(files)
}

/// The files' bytes, each after every file it imports, ties broken by name (Kahn's
/// algorithm over a name-ordered set). An import that is not among the files, or a cycle,
/// is an error naming it.
fn in_dependency_order(mut files: BTreeMap<String, RawFile>) -> Result<Vec<Vec<u8>>, String> {
    let order = order(&files)?;
    Ok(order
        .iter()
        .filter_map(|name| files.remove(name))
        .map(|file| file.bytes)
        .collect())
}

/// The names of `files` in dependency order, ties by name.
fn order(files: &BTreeMap<String, RawFile>) -> Result<Vec<String>, String> {
    for file in files.values() {
        if let Some(missing) = file.dependencies.iter().find(|d| !files.contains_key(*d)) {
            return Err(format!(
                "{} imports {missing}, which is not among the files",
                file.name
            ));
        }
    }
    // Imports not yet placed, per file; and who imports each file.
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut importers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for file in files.values() {
        let imports: BTreeSet<&str> = file.dependencies.iter().map(String::as_str).collect();
        waiting.insert(&file.name, imports.len());
        for import in imports {
            importers.entry(import).or_default().push(&file.name);
        }
    }
    let mut ready: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut order: Vec<String> = Vec::with_capacity(files.len());
    while let Some(name) = ready.pop_first() {
        order.push(name.to_string());
        for importer in importers.get(name).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(importer) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(importer);
                }
            }
        }
    }
    if order.len() < files.len() {
        let cycle: Vec<&str> = waiting
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(name, _)| *name)
            .collect();
        return Err(format!("import cycle among {}", cycle.join(", ")));
    }
    Ok(order)
}

#[cfg(test)]
#[path = "file_set_tests.rs"]
mod tests;
