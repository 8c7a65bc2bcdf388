//! Lingering close: the client socket as hyper sees it, whose shutdown sends FIN and then
//! reads and discards what the client still sends, for at most [`LINGER`] and
//! [`LINGER_BYTES`], before the socket is closed.
//!
//! The gateway answers some requests before it has read their body: a `Content-Length`
//! over `max_body_bytes` (413), a shed body (503). hyper then ends the connection with the
//! body unread, and closing a socket that still has unread data, or that receives more
//! after it is closed, makes the kernel send a reset, which discards the answer in the
//! client's receive buffer. A client that writes its whole body before it reads (many
//! simple HTTP clients do) would see a broken pipe instead of the 413. Reading until the
//! client closes lets it finish its write and read the answer (nginx's `lingering_close`).
//! A well-behaved client closes as soon as it has read the answer, so a socket lingers
//! only as long as its client keeps sending; a connection that ends without a shutdown
//! (an error, or `connection::drive` dropping it) does not linger. Nor does HTTP/2: the
//! gateway reads every stream's body or resets the stream, and a connection it closes with
//! GOAWAY is often a flood (`tests/http2_abuse.rs`), which lingering would keep reading.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// The longest a closed connection keeps reading what its client still sends.
pub const LINGER: Duration = Duration::from_secs(2);
/// The most bytes a closed connection reads and discards.
pub const LINGER_BYTES: usize = 16 * 1024 * 1024;
/// Reads per poll before yielding to other tasks, so that a client sending fast cannot
/// hold a worker thread.
const READS_PER_POLL: usize = 16;

/// A client socket that lingers on shutdown.
#[derive(Debug)]
pub struct Lingering {
    stream: TcpStream,
    /// What the first bytes read said: `None` before any, `Some(false)` for HTTP/2's
    /// preface.
    http1: Option<bool>,
    closing: Option<Closing>,
}

#[derive(Debug)]
struct Closing {
    deadline: Pin<Box<Sleep>>,
    discarded: usize,
}

impl Lingering {
    pub fn new(stream: TcpStream) -> Lingering {
        Lingering {
            stream,
            http1: None,
            closing: None,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if this.http1.is_none() && !read.is_empty() {
            // "PRI" starts HTTP/2's preface and no HTTP/1 method.
            let preface = b"PRI";
            let n = read.len().min(preface.len());
            this.http1 = Some(read[..n] != preface[..n]);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    /// FIN, then read and discard until the client closes, [`LINGER`] passes or
    /// [`LINGER_BYTES`] have been read. Errors while discarding end the linger quietly: the
    /// answer has been sent, and the socket is closed either way.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.http1 != Some(true) {
            return Pin::new(&mut this.stream).poll_shutdown(cx);
        }
        let closing = match &mut this.closing {
            Some(closing) => closing,
            None => {
                ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
                this.closing.insert(Closing {
                    deadline: Box::pin(tokio::time::sleep(LINGER)),
                    discarded: 0,
                })
            }
        };
        let mut scratch = [0u8; 8 * 1024];
        for _ in 0..READS_PER_POLL {
            if closing.deadline.as_mut().poll(cx).is_ready() || closing.discarded >= LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => closing.discarded += buf.filled().len(),
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
