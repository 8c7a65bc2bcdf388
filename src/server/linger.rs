//! Lingering close: the client socket as hyper's IO, handed back to the connection's task
//! when hyper drops it after closing an HTTP/1 connection, so that the task can read and
//! discard what the client still sends, for at most [`LINGER`] and [`LINGER_BYTES`], before
//! the socket is closed.
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

//!
//! hyper owns the socket while it serves: reads and writes go straight to tokio's
//! `TcpStream`, whose reads mark the socket not ready after a short read. A socket shared
//! through an `Arc` can only be read with `try_read`, which keeps the readiness until a
//! read fails, and so cost one more `recvfrom` (EAGAIN) for every request of a keep-alive
//! client (issue 20: 1.09 -> 2.10 reads per request). The hand-back is one oneshot channel
//! per connection, and only a connection that hyper shut down uses it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The longest a closed connection keeps reading what its client still sends.
pub const LINGER: Duration = Duration::from_secs(2);
/// The most bytes a closed connection reads and discards.
pub const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// What the first bytes read said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Unknown,
    Http1,
    Http2,
}

/// The client socket as hyper's IO. When it is dropped after hyper shut down an HTTP/1
/// connection, the socket goes back to the connection's task through [`Linger`].
#[derive(Debug)]
pub struct ClientSocket {
    stream: Option<TcpStream>,
    protocol: Protocol,
    shut: bool,
    hand_back: Option<oneshot::Sender<TcpStream>>,
}

/// The connection task's end: the socket, if hyper shut it down, once hyper has dropped it.
#[derive(Debug)]
pub struct Linger(oneshot::Receiver<TcpStream>);

/// The socket for hyper and the linger for the connection's task.
pub fn split(stream: TcpStream) -> (ClientSocket, Linger) {
    let (hand_back, linger) = oneshot::channel();
    let socket = ClientSocket {
        stream: Some(stream),
        protocol: Protocol::Unknown,
        shut: false,
        hand_back: Some(hand_back),
    };
    (socket, Linger(linger))
}

impl Linger {
    /// After hyper shut down an HTTP/1 connection and dropped its IO: reads and discards
    /// until the client closes, [`LINGER`] passes or [`LINGER_BYTES`] have been read.
    /// Otherwise at once (the socket was closed when hyper dropped it).
    pub async fn run(self) {
        let Ok(stream) = self.0.await else {
            return;
        };
        let mut scratch = [0u8; 8 * 1024];
        let mut discarded = 0;
        let drain = async {
            while discarded < LINGER_BYTES {
                if stream.readable().await.is_err() {
                    return;
                }
                match stream.try_read(&mut scratch) {
                    Ok(0) => return,
                    Ok(n) => discarded += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

impl ClientSocket {
    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    fn note_first_bytes(&mut self, read: &[u8]) {
        if read.is_empty() || self.protocol != Protocol::Unknown {
            return;
        }
        // "PRI" starts HTTP/2's preface and no HTTP/1 method.
        let preface = b"PRI";
        let n = read.len().min(preface.len());
        self.protocol = if read[..n] == preface[..n] {
            Protocol::Http2
        } else {
            Protocol::Http1
        };
    }
}

impl Drop for ClientSocket {
    fn drop(&mut self) {
        if self.shut
            && self.protocol == Protocol::Http1
            && let (Some(stream), Some(hand_back)) = (self.stream.take(), self.hand_back.take())
        {
            // The task may be gone (the connection was dropped): the socket closes here.
            let _ = hand_back.send(stream);
        }
    }
}

impl AsyncRead for ClientSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(self.stream()?).poll_read(cx, buf);
        if self.protocol == Protocol::Unknown && matches!(read, Poll::Ready(Ok(()))) {
            self.note_first_bytes(&buf.filled()[before..]);
        }
        read
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_flush(cx)
    }

    /// FIN: the client reads the answer, then its end.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shut = true;
        Pin::new(self.stream()?).poll_shutdown(cx)
    }
}
