//! The `healthcheck` subcommand's client: one HTTP/1.1 GET to the gateway's own `/readyz`
//! (or any http:// URL), exit 0 on a 200 answer. Slim images carry no curl, so the binary
//! probes itself; this is the whole of it, a few lines over a TCP socket.

use std::time::Duration;

/// `protogate healthcheck`: a minimal HTTP/1.1 GET that exits 0 on a 200 answer. Slim
/// images carry no curl, so the binary probes itself.
pub async fn probe(url: &str, timeout: Duration) -> std::process::ExitCode {
    match tokio::time::timeout(timeout, probe_status(url)).await {
        Ok(Ok(200)) => std::process::ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("healthcheck: {url} answered {status}");
            std::process::ExitCode::FAILURE
        }
        Ok(Err(err)) => {
            eprintln!("healthcheck: {url}: {err}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("healthcheck: {url}: no answer within {}ms", timeout.as_millis());
            std::process::ExitCode::FAILURE
        }
    }
}

async fn probe_status(url: &str) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// URLs can be probed".to_string());
    }
    let host = uri.host().ok_or("no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nUser-Agent: protogate-healthcheck\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < 12 {
        let n = stream
            .read(&mut head[filled..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let line = String::from_utf8_lossy(&head[..filled]);
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}
