//! Build script: compiles the seed's contract, `../proto/api.proto`, grpc's RouteGuide
//! (`../tests/routeguide/route_guide.proto`, for `bench streams`) and the file service
//! (`../tests/protos/files/v1/files.proto`, for `bench files`; its `google.api.HttpBody`
//! data as `Bytes`, so the upstream sends one shared buffer uncopied) with protox (no system
//! `protoc`) into prost types plus tonic clients and servers. It owns nothing else; the
//! gateway's own build (`../build.rs`) is separate.
//!
//! The file has no `package`, so prost writes its types to `_.rs`, and tonic keeps the wire
//! path `/MyService/User`, the same path the gateway and the Python service use.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto/api.proto");
    println!("cargo:rerun-if-changed=../tests/routeguide/route_guide.proto");
    println!("cargo:rerun-if-changed=../tests/protos/files/v1/files.proto");
    let fds = protox::compile(
        ["api.proto", "route_guide.proto", "files/v1/files.proto"],
        ["../proto", "../tests/routeguide", "../tests/protos"],
    )?;
    tonic_prost_build::configure()
        .bytes(".google.api.HttpBody.data")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
