//! The Library test service (`tests/protos/library/v1/library.proto`) on the real Python
//! grpcio server (`tests/python/library_server.py`), and real gateway binaries in front of
//! it through either codec: `compiled` (pbjson; the test build compiles the Library in) or
//! `dynamic` (prost-reflect, from the same descriptors as a `descriptors:` file). The
//! shape tests (`tests/shape_*.rs`) send every request to both and compare the bytes.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http::Method;

use super::TempDir;
use super::http::{Reply, send};
use super::process::{ChildGuard, GatewayLog, spawn_gateway, spawn_python_script, test_descriptor_set};

/// The Library's descriptor set (imports included, `google.api.http` kept) in `dir`.
pub fn descriptor_set(dir: &TempDir) -> PathBuf {
    test_descriptor_set(dir, "library/v1/library.proto", "library.binpb")
}

/// The Python Library server and its descriptors.
pub struct LibraryServer {
    pub addr: SocketAddr,
    pub descriptors: PathBuf,
    _server: ChildGuard,
    _dir: TempDir,
}

impl LibraryServer {
    pub fn start() -> LibraryServer {
        let dir = TempDir::new("library");
        let descriptors = descriptor_set(&dir);
        let set = descriptors.to_str().expect("UTF-8 path").to_string();
        let (server, addr) =
            spawn_python_script("library_server.py", &[&set], "library_server listening on ");
        LibraryServer {
            addr,
            descriptors,
            _server: server,
            _dir: dir,
        }
    }
}

/// A gateway binary in front of the Library, through one codec.
pub struct LibraryGateway {
    pub addr: SocketAddr,
    pub codec: &'static str,
    pub log: GatewayLog,
    _gateway: ChildGuard,
    _dir: TempDir,
}

impl LibraryGateway {
    /// The gateway on `config` (a whole config file's text) with schema `compiled` or
    /// `dynamic` (the server's descriptors).
    pub fn start(server: &LibraryServer, codec: &'static str, config: &str) -> LibraryGateway {
        let dir = TempDir::new("library-gateway");
        let path = dir.join("protogate.toml");
        std::fs::write(&path, config).expect("write config");
        let schema = match codec {
            "compiled" => "compiled".to_string(),
            _ => format!("descriptors:{}", server.descriptors.display()),
        };
        let upstream = format!("http://{}", server.addr);
        let (gateway, addr, log) = spawn_gateway(
            &[
                "--config",
                path.to_str().expect("UTF-8 path"),
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &upstream,
                "--schema",
                &schema,
            ],
            &[],
        );
        LibraryGateway {
            addr,
            codec,
            log,
            _gateway: gateway,
            _dir: dir,
        }
    }

    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let url = format!("http://{}{path}", self.addr);
        send(method, &url, headers, Bytes::copy_from_slice(body.as_bytes())).await
    }
}

/// Both codecs' gateways on one config.
pub struct BothCodecs {
    pub server: LibraryServer,
    pub gateways: [LibraryGateway; 2],
}

impl BothCodecs {
    pub fn start(config: &str) -> BothCodecs {
        let server = LibraryServer::start();
        let gateways = [
            LibraryGateway::start(&server, "compiled", config),
            LibraryGateway::start(&server, "dynamic", config),
        ];
        BothCodecs { server, gateways }
    }

    /// Sends one request to each gateway; asserts that both answer the same status,
    /// content type and body bytes, and returns the compiled codec's answer.
    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let [compiled, dynamic] = &self.gateways;
        // One request id for both, which problem+json bodies carry.
        let mut headers = headers.to_vec();
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("x-request-id"))
        {
            headers.push(("x-request-id", "both-codecs"));
        }
        let a = compiled.send(method.clone(), path, &headers, body).await;
        let b = dynamic.send(method.clone(), path, &headers, body).await;
        assert_eq!(
            (a.status, a.header("content-type"), &a.body),
            (b.status, b.header("content-type"), &b.body),
            "{method} {path}: the compiled and dynamic codecs answer differently"
        );
        a
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], "").await
    }
}
