//! The file service of the HttpBody tests (`tests/protos/files/v1/files.proto`) on the real
//! Python grpcio server (`tests/python/files_server.py`), and a real gateway in front of it
//! on its descriptor set.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::TempDir;
use super::process::{ChildGuard, spawn_gateway_with_schema, spawn_python_script, test_descriptor_set};

/// The file service's descriptor set (imports included) in `dir`.
pub fn descriptor_set(dir: &TempDir) -> PathBuf {
    test_descriptor_set(dir, "files/v1/files.proto", "files.binpb")
}

/// The Python file server and a gateway in front of it, on the descriptor set.
pub struct Files {
    pub addr: SocketAddr,
    _gateway: ChildGuard,
    _server: ChildGuard,
    _dir: TempDir,
}

impl Files {
    /// The server and a gateway on `config` (a whole config file's text).
    pub fn start(config: &str) -> Files {
        let dir = TempDir::new("http-body");
        let set = descriptor_set(&dir);
        let set = set.to_str().expect("UTF-8 path");
        let (server, upstream) = spawn_python_script("files_server.py", &[set], "files_server listening on ");
        let config_text = config;
        let config = dir.join("protogate.toml");
        std::fs::write(&config, config_text).expect("config");
        let upstream = format!("http://{upstream}");
        let schema = format!("descriptors:{set}");
        let (gateway, addr, _log) =
            spawn_gateway_with_schema(config.to_str().expect("UTF-8 path"), &upstream, &schema);
        Files {
            addr,
            _gateway: gateway,
            _server: server,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
