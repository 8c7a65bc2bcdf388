//! Test-only: compiles inline `.proto` text into a descriptor pool with protox, so that unit
//! tests can exercise annotations, nested messages and enums the seed proto does not have.
//! The services reuse the seed's method names, so routes resolve against the method table.

use prost_reflect::DescriptorPool;

/// An annotated variant of the seed's service with nested fields and an enum.
pub const ANNOTATED: &str = r#"
syntax = "proto3";
import "google/api/annotations.proto";
import "google/protobuf/empty.proto";

service MyService {
  rpc Health(google.protobuf.Empty) returns (google.protobuf.Empty) {
    option (google.api.http) = { custom: { kind: "HEAD" path: "/v1/health" } };
  }
  rpc User(UserReq) returns (UserReply) {
    option (google.api.http) = {
      get: "/v1/teams/{team.name}/users"
      additional_bindings { post: "/v1/users:search" body: "*" }
      additional_bindings { put: "/v1/users/{team.id}" body: "filter" }
    };
  }
}
enum Role { ROLE_UNSPECIFIED = 0; ADMIN = 1; MEMBER = 2; }
message Team { string name = 1; int64 id = 2; }
message Filter { repeated Role roles = 1; bool active_only = 2; }
message UserReq { repeated int32 userIDs = 1; Team team = 2; Filter filter = 3; double min_score = 4; }
message UserReply { string message = 1; }
"#;

/// Compiles `text` (as `test.proto`) with the repo's `proto/` on the include path.
pub fn compile(text: &str) -> DescriptorPool {
    let dir = std::env::temp_dir().join(format!(
        "protogate-test-proto-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("test.proto"), text).expect("write proto");
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let mut compiler =
        protox::Compiler::new([dir.as_path(), std::path::Path::new(proto)]).expect("include paths");
    compiler.open_file("test.proto").expect("test proto compiles");
    let pool = compiler.descriptor_pool();
    let _ = std::fs::remove_dir_all(&dir);
    pool
}
