//! Tests of file_set.rs: the canonical order, the errors that name a file, and extension
//! options that reach the pool whole.

use super::*;

fn file(name: &str, imports: &[&str], body: &str) -> RawFile {
    let proto = prost_types::FileDescriptorProto {
        name: Some(name.to_string()),
        package: Some("p".to_string()),
        dependency: imports.iter().map(|s| s.to_string()).collect(),
        syntax: Some("proto3".to_string()),
        message_type: vec![prost_types::DescriptorProto {
            name: Some(body.to_string()),
            ..Default::default()
        }],
        ..Default::default()
    };
    RawFile::decode(proto.encode_to_vec()).unwrap()
}

fn names(pool: &DescriptorPool) -> Vec<String> {
    pool.files().map(|f| f.name().to_string()).collect()
}

#[test]
fn files_come_after_their_imports_ties_by_name() {
    let pool = pool([
        file("z.proto", &[], "Z"),
        file("b.proto", &["z.proto", "a.proto"], "B"),
        file("a.proto", &[], "A"),
        file("c.proto", &["b.proto"], "C"),
    ])
    .unwrap();
    assert_eq!(names(&pool), ["a.proto", "z.proto", "b.proto", "c.proto"]);
    // Any other order of the same files gives the same pool, byte for byte.
    let again = pool_of_reversed(&pool);
    assert_eq!(again.encode_to_vec(), pool.encode_to_vec());
}

fn pool_of_reversed(pool: &DescriptorPool) -> DescriptorPool {
    let mut set = RawSet::decode(pool.encode_to_vec().as_slice()).unwrap();
    set.file.reverse();
    canonical(&DescriptorPool::decode(set.encode_to_vec().as_slice()).unwrap()).unwrap()
}

#[test]
fn a_missing_import_or_a_cycle_is_named() {
    let err = pool([file("a.proto", &["gone.proto"], "A")]).err().unwrap();
    assert_eq!(err, "a.proto imports gone.proto, which is not among the files");
    let err = pool([
        file("a.proto", &["b.proto"], "A"),
        file("b.proto", &["a.proto"], "B"),
    ])
    .err()
    .unwrap();
    assert_eq!(err, "import cycle among a.proto, b.proto");
}

/// The bytes reach the pool whole: an extension option that prost-types would drop (an
/// unknown field of MethodOptions here) is still in the pool's encoding.
#[test]
fn extension_options_survive_where_prost_types_dropped_them() {
    let mut proto = prost_types::FileDescriptorProto {
        name: Some("s.proto".to_string()),
        package: Some("p".to_string()),
        syntax: Some("proto3".to_string()),
        message_type: vec![prost_types::DescriptorProto {
            name: Some("M".to_string()),
            ..Default::default()
        }],
        service: vec![prost_types::ServiceDescriptorProto {
            name: Some("S".to_string()),
            method: vec![prost_types::MethodDescriptorProto {
                name: Some("Call".to_string()),
                input_type: Some(".p.M".to_string()),
                output_type: Some(".p.M".to_string()),
                options: Some(prost_types::MethodOptions::default()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec();
    // MethodOptions of S.Call (file 6 → service 2 → method 4) with field 72295728
    // (google.api.http) as a length-delimited "x": appended by hand, as a server sends it.
    let mut options = Vec::new();
    prost::encoding::encode_key(
        72_295_728,
        prost::encoding::WireType::LengthDelimited,
        &mut options,
    );
    prost::encoding::encode_varint(1, &mut options);
    options.push(b'x');
    proto = rewrite_method_options(&proto, &options);
    let pool = pool([RawFile::decode(proto).unwrap()]).unwrap();
    let encoded = pool.encode_to_vec();
    assert!(
        encoded.windows(options.len()).any(|w| w == options.as_slice()),
        "the option's bytes are gone"
    );
}

/// `file` with the options of its only method replaced by `options`.
fn rewrite_method_options(file: &[u8], options: &[u8]) -> Vec<u8> {
    let mut parsed = prost_types::FileDescriptorProto::decode(file).unwrap();
    let method = &mut parsed.service[0].method[0];
    method.options = None;
    let mut method_bytes = method.encode_to_vec();
    prost::encoding::encode_key(4, prost::encoding::WireType::LengthDelimited, &mut method_bytes);
    prost::encoding::encode_varint(options.len() as u64, &mut method_bytes);
    method_bytes.extend_from_slice(options);
    parsed.service[0].method.clear();
    let mut service_bytes = parsed.service[0].encode_to_vec();
    prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, &mut service_bytes);
    prost::encoding::encode_varint(method_bytes.len() as u64, &mut service_bytes);
    service_bytes.extend_from_slice(&method_bytes);
    parsed.service.clear();
    let mut out = parsed.encode_to_vec();
    prost::encoding::encode_key(6, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(service_bytes.len() as u64, &mut out);
    out.extend_from_slice(&service_bytes);
    out
}
