//! Lingering close: the client socket, shared between hyper and the connection's task, so
//! that after hyper has closed an HTTP/1 connection the task can read and discard what the
//! client still sends, for at most [`LINGER`] and [`LINGER_BYTES`], before the socket is
//! closed.
//!
//! The gateway answers some requests before it has read their body: a `Content-Length`
//! over `max_body_bytes` (413), a shed body (503). hyper then ends the connection with the
//! body unread, and closing a socket that still has unread data, or that receives more
//! after it is closed, makes the kernel send a reset, which discards the answer in the
//! client's receive buffer. A client that writes its whole body before it reads (many
//! simple HTTP clients do) would see a broken pipe instead of the 413. Reading until the
//! client closes lets it finish its write and read the answer (nginx's `lingering_close`).
//!
//! The linger runs after hyper's connection has ended and released its buffers, so a
//! lingering socket holds no more than the socket itself. A well-behaved client closes as
//! soon as it has read the answer; only a connection that hyper shut down lingers (not one
//! that ended in an error, or that `connection::drive` dropped). Nor does HTTP/2: the
//! gateway reads every stream's body or resets the stream, and a connection it closes with
//! GOAWAY is often a flood (`tests/http2_abuse.rs`), which lingering would keep reading.

use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The longest a closed connection keeps reading what its client still sends.
pub const LINGER: Duration = Duration::from_secs(2);
/// The most bytes a closed connection reads and discards.
pub const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// What the first bytes read said, and whether hyper shut the socket down.
const UNKNOWN: u8 = 0;
const HTTP1: u8 = 1;
const HTTP2: u8 = 2;
const SHUT: u8 = 4;

/// The client socket. One handle goes to hyper as its IO; the other stays with the
/// connection's task, which calls [`ClientSocket::linger`] once hyper is done.
#[derive(Debug, Clone)]
pub struct ClientSocket {
    stream: Arc<TcpStream>,
    state: Arc<AtomicU8>,
}

impl ClientSocket {
    pub fn new(stream: TcpStream) -> ClientSocket {
        ClientSocket {
            stream: Arc::new(stream),
            state: Arc::new(AtomicU8::new(UNKNOWN)),
        }
    }

    /// After hyper shut down an HTTP/1 connection: reads and discards until the client
    /// closes, [`LINGER`] passes or [`LINGER_BYTES`] have been read. Otherwise at once.
    pub async fn linger(self) {
        if self.state.load(Ordering::Relaxed) != HTTP1 | SHUT {
            return;
        }
        let mut scratch = [0u8; 8 * 1024];
        let mut discarded = 0;
        let drain = async {
            while discarded < LINGER_BYTES {
                if self.stream.readable().await.is_err() {
                    return;
                }
                match self.stream.try_read(&mut scratch) {
                    Ok(0) => return,
                    Ok(n) => discarded += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }

    fn note_first_bytes(&self, read: &[u8]) {
        if read.is_empty() || self.state.load(Ordering::Relaxed) != UNKNOWN {
            return;
        }
        // "PRI" starts HTTP/2's preface and no HTTP/1 method.
        let preface = b"PRI";
        let n = read.len().min(preface.len());
        let protocol = if read[..n] == preface[..n] { HTTP2 } else { HTTP1 };
        self.state.fetch_or(protocol, Ordering::Relaxed);
    }
}

impl AsyncRead for ClientSocket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            let before = buf.filled().len();
            match self.stream.try_read_buf(buf) {
                Ok(_) => {
                    self.note_first_bytes(&buf.filled()[before..]);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                written => return Poll::Ready(written),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                written => return Poll::Ready(written),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// FIN: the client reads the answer, then its end.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.state.fetch_or(SHUT, Ordering::Relaxed);
        Poll::Ready(socket2::SockRef::from(&*self.stream).shutdown(Shutdown::Write))
    }
}
