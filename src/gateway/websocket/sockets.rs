//! The open WebSockets, counted: the cap on how many may be open at once
//! (`server.max_websockets`) and, for the drain, waiting for them and closing the rest.

use std::sync::Arc;

use tokio::sync::watch;

use crate::error::GatewayError;

/// The open sockets, for the drain: it waits for them, then closes the rest with 1001.
pub struct Sockets {
    open: Arc<watch::Sender<usize>>,
    closing: watch::Sender<bool>,
}

impl Default for Sockets {
    fn default() -> Sockets {
        Sockets {
            open: Arc::new(watch::Sender::new(0)),
            closing: watch::Sender::new(false),
        }
    }
}

/// One open socket; counted until dropped.
#[derive(Debug)]
pub struct SocketGuard {
    open: Arc<watch::Sender<usize>>,
    /// Turns true when the drain closes every socket (the session closes with 1001).
    pub(super) closing: watch::Receiver<bool>,
}

impl Sockets {
    /// Counts a new socket, unless `limit` are open already (503 with Retry-After, like
    /// any budget spent) or the drain closes sockets.
    pub fn enter(&self, limit: usize) -> Result<SocketGuard, GatewayError> {
        if *self.closing.borrow() {
            return Err(GatewayError::unavailable("the gateway is shutting down"));
        }
        let mut admitted = false;
        self.open.send_if_modified(|n| {
            admitted = *n < limit;
            if admitted {
                *n += 1;
            }
            admitted
        });
        if !admitted {
            return Err(GatewayError::shed(format!(
                "overloaded: {limit} WebSockets already open (server.max_websockets); retry shortly"
            )));
        }
        Ok(SocketGuard {
            open: self.open.clone(),
            closing: self.closing.subscribe(),
        })
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Tells every open socket to close with 1001 (the drain timeout passed).
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Returns once no socket is open.
    pub async fn all_closed(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_past_the_cap_are_shed_and_a_closed_one_frees_its_place() {
        let sockets = Sockets::default();
        let first = sockets.enter(2).expect("first");
        let _second = sockets.enter(2).expect("second");
        let refused = sockets.enter(2).expect_err("third is over the cap");
        assert_eq!(refused.http_status(), 503);
        assert_eq!(sockets.open(), 2);
        drop(first);
        assert_eq!(sockets.open(), 1);
        let _third = sockets.enter(2).expect("a place is free again");
        sockets.close_all();
        assert_eq!(sockets.enter(9).expect_err("draining").http_status(), 503);
    }
}
