//! Build script: compiles every `.proto` under `proto/` with protox (no system `protoc`; with
//! the `test-protos` feature also `proto/testdata/` and tests/showcase's compliance.proto),
//! generates prost message types and pbjson serde impls, and writes three artefacts into
//! `OUT_DIR` for `src/`: the encoded descriptor set (`descriptor.bin`, with the
//! `google.api.http` options kept), the module tree (`pb_mod.rs`) and the method table
//! (`method_table.rs`). Generated code holds data and one typed call per RPC; every branch
//! lives in hand-written code under `src/`.
//!
//! Package-less files (the seed's `api.proto`) get a synthetic package for Rust code
//! generation only, because pbjson-build panics with "expected package" on them. The method
//! table keeps the original names, so the gRPC path on the wire stays `/MyService/User`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost::Message as _;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// The release binary's function order (scripts/symbol-order writes it).
const SYMBOL_ORDER: &str = "src/symbol-order.txt";
/// The one target whose default linker is rust-lld (Rust 1.90 on), which reads the order.
const ORDERED_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The Rust-only package given to `.proto` files that declare none.
const SYNTHETIC_PACKAGE: &str = "protogate_unpackaged";
/// Vendored files that are compiled for their options only, never into Rust types.
const OPTION_ONLY_PREFIX: &str = "google/api/";
/// The gapic-showcase suite's proto, compiled into the test protos only.
const SHOWCASE_DIR: &str = "tests/showcase";
const SHOWCASE_PROTO: &str = "google/showcase/v1beta1/compliance.proto";
/// The Library test service of tests/shape_*.rs, compiled into the test protos only.
const LIBRARY_DIR: &str = "tests/protos";
const LIBRARY_PROTO: &str = "library/v1/library.proto";

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BuildResult<()> {
    println!("cargo:rerun-if-changed=proto");
    order_symbols();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut files = Vec::new();
    collect_protos(Path::new("proto"), Path::new("proto"), &mut files)?;
    // proto/testdata is for the tests only (cargo feature `test-protos`).
    let test_protos = std::env::var_os("CARGO_FEATURE_TEST_PROTOS").is_some();
    if !test_protos {
        files.retain(|f| !f.starts_with("testdata/"));
    }
    // The tests also compile the vendored gapic-showcase Compliance service
    // (tests/showcase/, tests/showcase.rs), with its google/api imports from there.
    let mut includes = vec!["proto"];
    if test_protos {
        println!("cargo:rerun-if-changed={SHOWCASE_DIR}");
        includes.push(SHOWCASE_DIR);
        files.push(SHOWCASE_PROTO.to_string());
        println!("cargo:rerun-if-changed={LIBRARY_DIR}/{LIBRARY_PROTO}");
        includes.push(LIBRARY_DIR);
        files.push(LIBRARY_PROTO.to_string());
    }
    files.sort();
    let wanted: Vec<&String> = files
        .iter()
        .filter(|f| !f.starts_with(OPTION_ONLY_PREFIX))
        .collect();

    let mut compiler = protox::Compiler::new(includes)?;
    compiler.include_imports(true).include_source_info(true);
    // Every file is opened, so the runtime pool always knows the google.api.http extension.
    compiler.open_files(files.iter().map(|f| f.as_str()))?;
    // `encode_file_descriptor_set` keeps extension options such as google.api.http;
    // the prost-types form drops them, so the runtime reads this one.
    std::fs::write(
        out_dir.join("descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    let original = compiler.file_descriptor_set();
    let generated: Vec<FileDescriptorProto> = original
        .file
        .iter()
        .filter(|f| wanted.iter().any(|w| f.name() == w.as_str()))
        .cloned()
        .collect();
    let renamer = Renamer::new(&generated);
    // prost needs every file in its message graph (imports included); the output files for
    // google.protobuf and google.api are written but never included.
    let everything = FileDescriptorSet {
        file: original.file.iter().map(|f| renamer.rewrite_file(f)).collect(),
    };
    let codegen = FileDescriptorSet {
        file: generated.iter().map(|f| renamer.rewrite_file(f)).collect(),
    };

    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .extern_path(".google.protobuf.Timestamp", "crate::wkt::Timestamp")
        .extern_path(".google.protobuf.FieldMask", "crate::wkt::FieldMask")
        .compile_fds(everything.clone())?;

    let packages: BTreeSet<String> = codegen.file.iter().map(|f| f.package().to_string()).collect();
    let prefixes: Vec<String> = packages.iter().map(|p| format!(".{p}")).collect();
    pbjson_build::Builder::new()
        .register_descriptors(&everything.encode_to_vec())?
        .extern_path(".google.protobuf", "::pbjson_types")
        // pbjson-types prints Timestamp with +00:00 and FieldMask as an object; ours follow
        // the proto3 JSON mapping (src/wkt.rs).
        .extern_path(".google.protobuf.Timestamp", "crate::wkt::Timestamp")
        .extern_path(".google.protobuf.FieldMask", "crate::wkt::FieldMask")
        .emit_fields()
        .build(&prefixes)?;

    std::fs::write(out_dir.join("pb_mod.rs"), module_tree(&packages))?;
    let types = rust_type_paths(&codegen);
    std::fs::write(
        out_dir.join("method_table.rs"),
        method_table(&generated, &renamer, &types)?,
    )?;
    Ok(())
}

/// Every `.proto` below `dir`, as a path relative to `root` with `/` separators.
fn collect_protos(root: &Path, dir: &Path, out: &mut Vec<String>) -> BuildResult<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let rel = path.strip_prefix(root)?;
            out.push(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
    Ok(())
}

/// Moves the top-level types of package-less files under [`SYNTHETIC_PACKAGE`], and rewrites
/// every type reference that points at them, in every file.
struct Renamer {
    root_names: BTreeSet<String>,
}

impl Renamer {
    fn new(files: &[FileDescriptorProto]) -> Self {
        let root_names = files
            .iter()
            .filter(|f| f.package().is_empty())
            .flat_map(|f| {
                let messages = f.message_type.iter().map(|m| m.name().to_string());
                let enums = f.enum_type.iter().map(|e| e.name().to_string());
                messages.chain(enums).collect::<Vec<_>>()
            })
            .collect();
        Renamer { root_names }
    }

    /// `.UserReq` → `.protogate_unpackaged.UserReq`; other names are returned unchanged.
    fn codegen_name(&self, full: &str) -> String {
        let first = full.trim_start_matches('.').split('.').next().unwrap_or_default();
        if full.starts_with('.') && self.root_names.contains(first) {
            format!(".{SYNTHETIC_PACKAGE}{full}")
        } else {
            full.to_string()
        }
    }

    fn rewrite_file(&self, file: &FileDescriptorProto) -> FileDescriptorProto {
        let mut file = file.clone();
        if file.package().is_empty() {
            file.package = Some(SYNTHETIC_PACKAGE.to_string());
        }
        for message in &mut file.message_type {
            self.rewrite_message(message);
        }
        for service in &mut file.service {
            for method in &mut service.method {
                method.input_type = Some(self.codegen_name(method.input_type()));
                method.output_type = Some(self.codegen_name(method.output_type()));
            }
        }
        file
    }

    fn rewrite_message(&self, message: &mut DescriptorProto) {
        for field in message.field.iter_mut().chain(message.extension.iter_mut()) {
            if let Some(type_name) = &field.type_name {
                field.type_name = Some(self.codegen_name(type_name));
            }
        }
        for nested in &mut message.nested_type {
            self.rewrite_message(nested);
        }
    }
}

/// Nested `pub mod` blocks, one per package, each including prost's and pbjson's output.
fn module_tree(packages: &BTreeSet<String>) -> String {
    #[derive(Default)]
    struct Node {
        children: BTreeMap<String, Node>,
        package: Option<String>,
    }
    fn render(node: &Node, out: &mut String) {
        if let Some(package) = &node.package {
            let _ = writeln!(out, "include!(concat!(env!(\"OUT_DIR\"), \"/{package}.rs\"));");
            let _ = writeln!(
                out,
                "include!(concat!(env!(\"OUT_DIR\"), \"/{package}.serde.rs\"));"
            );
        }
        for (name, child) in &node.children {
            let _ = writeln!(out, "pub mod {} {{", rust_ident(&name.to_snake_case()));
            render(child, out);
            out.push_str("}\n");
        }
    }
    let mut root = Node::default();
    for package in packages {
        let node = package
            .split('.')
            .fold(&mut root, |n, seg| n.children.entry(seg.to_string()).or_default());
        node.package = Some(package.clone());
    }
    let mut out = String::from("// @generated by build.rs: the prost and pbjson module tree.\n");
    render(&root, &mut out);
    out
}

/// Maps each generated message's full (codegen) name to its Rust path under `crate::pb`.
fn rust_type_paths(fds: &FileDescriptorSet) -> HashMap<String, String> {
    fn walk(prefix: &str, module: &str, messages: &[DescriptorProto], out: &mut HashMap<String, String>) {
        for m in messages {
            let full = format!("{prefix}.{}", m.name());
            out.insert(
                full.clone(),
                format!("{module}::{}", rust_ident(&m.name().to_upper_camel_case())),
            );
            let nested_module = format!("{module}::{}", rust_ident(&m.name().to_snake_case()));
            walk(&full, &nested_module, &m.nested_type, out);
        }
    }
    let mut out = HashMap::new();
    for file in &fds.file {
        let module = std::iter::once("crate::pb".to_string())
            .chain(file.package().split('.').map(|s| rust_ident(&s.to_snake_case())))
            .collect::<Vec<_>>()
            .join("::");
        walk(
            &format!(".{}", file.package()),
            &module,
            &file.message_type,
            &mut out,
        );
    }
    out
}

fn rust_type(full: &str, types: &HashMap<String, String>) -> BuildResult<String> {
    if let Some(wkt) = full.strip_prefix(".google.protobuf.") {
        return Ok(match wkt {
            "Timestamp" | "FieldMask" => format!("crate::wkt::{wkt}"),
            _ => format!("::pbjson_types::{wkt}"),
        });
    }
    types
        .get(full)
        .cloned()
        .ok_or_else(|| format!("no generated Rust type for {full}").into())
}

/// The compiled codecs: one entry per RPC that HTTP/JSON can carry, named as the original
/// descriptors name it, with the codec constructor for its generated Rust types. The wire
/// path and the kind of call come from the descriptors at run time (`method.rs`).
fn method_table(
    files: &[FileDescriptorProto],
    renamer: &Renamer,
    types: &HashMap<String, String>,
) -> BuildResult<String> {
    let mut out = String::from(
        "// @generated by build.rs: one compiled codec per RPC.\n\npub static COMPILED: &[(&str, Factory)] = &[\n",
    );
    let served = |f: &&FileDescriptorProto| !f.name().starts_with("google/") || f.name() == SHOWCASE_PROTO;
    for file in files.iter().filter(served) {
        for service in &file.service {
            let service_name = match file.package() {
                "" => service.name().to_string(),
                package => format!("{package}.{}", service.name()),
            };
            for method in &service.method {
                let full_name = format!("{service_name}.{}", method.name());
                let input = rust_type(&renamer.codegen_name(method.input_type()), types)?;
                let output = rust_type(&renamer.codegen_name(method.output_type()), types)?;
                let _ = writeln!(out, "    ({full_name:?}, codec::<{input}, {output}>),");
            }
        }
    }
    out.push_str("];\n");
    Ok(out)
}

/// Escapes Rust keywords the way prost does, so generated paths resolve.
fn rust_ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "else", "enum", "false", "fn", "for", "if", "impl", "in", "let",
        "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "true",
        "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
        "override", "priv", "typeof", "unsized", "virtual", "yield", "async", "await", "dyn", "try", "gen",
    ];
    match name {
        "self" | "super" | "crate" | "Self" => format!("{name}_"),
        n if KEYWORDS.contains(&n) => format!("r#{n}"),
        n => n.to_string(),
    }
}

/// Hands the release binary's function order to the linker: the code a running gateway
/// touches then sits on contiguous pages, so its idle resident set is that code, not the
/// whole `.text` (issue 20; scripts/symbol-order says how the list is made). Only for
/// release builds on x86_64 Linux, where rustc links with rust-lld; elsewhere, or with
/// `PROTOGATE_SYMBOL_ORDER=off` (another linker), the binary keeps the default layout.
/// Names missing from the binary are skipped without a warning: a stale list costs memory,
/// which tests/counts.rs measures, never a failed build.
fn order_symbols() {
    println!("cargo:rerun-if-changed={SYMBOL_ORDER}");
    println!("cargo:rerun-if-env-changed=PROTOGATE_SYMBOL_ORDER");
    let env = |key: &str| std::env::var(key).unwrap_or_default();
    let list = Path::new(&env("CARGO_MANIFEST_DIR")).join(SYMBOL_ORDER);
    let wanted = env("PROFILE") == "release"
        && env("TARGET") == ORDERED_TARGET
        && env("PROTOGATE_SYMBOL_ORDER") != "off"
        && list.is_file();
    if wanted {
        println!(
            "cargo:rustc-link-arg-bin=protogate=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=protogate=-Wl,--no-warn-symbol-ordering");
    }
}
