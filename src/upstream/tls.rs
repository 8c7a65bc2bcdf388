//! TLS to an `https://` upstream with rustls (ring): the configured CA or the system roots,
//! an optional client certificate, ALPN `h2`, and the configured server name as SNI and as
//! the name the certificate must carry (the connection itself dials a resolved IP). Built
//! once at startup, so a bad certificate or key is a startup error.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::UpstreamTls;

/// A ready TLS client for the upstream.
pub struct TlsSettings {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl TlsSettings {
    /// The client for `tls`: fails on unreadable PEM, a key that does not match the
    /// certificate, or a server name that is neither a DNS name nor an IP address.
    pub fn new(tls: &UpstreamTls) -> Result<TlsSettings, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("upstream.tls.ca_file: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("upstream.tls.ca_file: {e}"))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                for err in &native.errors {
                    tracing::warn!(error = %err, "a system root certificate could not be read");
                }
                let (added, ignored) = roots.add_parsable_certificates(native.certs);
                if added == 0 {
                    // A slim image without ca-certificates: every handshake would fail.
                    tracing::warn!(
                        ignored,
                        "no system root certificate found: TLS to the upstream will fail unless upstream.tls.ca_file is set"
                    );
                }
                tracing::debug!(added, ignored, "system root certificates for the upstream");
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("upstream.tls: {e}"))?
            .with_root_certificates(roots);
        let mut config = match &tls.identity {
            Some((cert_pem, key_pem)) => {
                let certs = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("upstream.tls.cert_file: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| format!("upstream.tls.key_file: {e}"))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("upstream.tls: client certificate and key: {e}"))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let server_name = ServerName::try_from(tls.server_name.clone())
            .map_err(|e| format!("upstream.tls.server_name: {e}"))?;
        Ok(TlsSettings {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// The TLS handshake on `tcp`. A server that picks another protocol than HTTP/2 by ALPN
    /// is refused; one that does not negotiate ALPN at all is assumed to speak HTTP/2, as
    /// gRPC servers do.
    pub async fn connect(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let stream = self.connector.connect(self.server_name.clone(), tcp).await?;
        match stream.get_ref().1.alpn_protocol() {
            None | Some(b"h2") => Ok(stream),
            Some(other) => Err(std::io::Error::other(format!(
                "the upstream negotiated {:?} instead of h2",
                String::from_utf8_lossy(other)
            ))),
        }
    }
}
