//! [`ConnTable`]: the open TCP connections by peer address, shared by all workers, and
//! [`write_loop`], the task that owns a connection's write half.
//!
//! A connection is read by the worker that accepted or opened it; anyone may send on it by
//! queueing bytes with [`ConnTable::send`], so a reply forwarded by another worker still leaves
//! over the connection its request came on (RFC 3261 18.2.2). The table is touched only by TCP
//! sends, connects and closes, under a read-mostly lock; the UDP path never sees it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Messages queued per connection before further sends are refused.
pub const SEND_QUEUE: usize = 256;

/// The sending side of one connection.
pub type ConnSender = mpsc::Sender<super::Wire>;

/// Why bytes could not be queued on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No open connection to that peer.
    #[error("no connection to {0}")]
    NoConnection(SocketAddr),
    /// The connection's queue is full (the peer does not read).
    #[error("send queue to {0} is full")]
    Full(SocketAddr),
    /// The connection is closing.
    #[error("connection to {0} is closed")]
    Closed(SocketAddr),
}

struct Entry {
    id: u64,
    tx: ConnSender,
}

/// Open TCP connections by peer address.
#[derive(Default)]
pub struct ConnTable {
    conns: RwLock<HashMap<SocketAddr, Entry>>,
    next_id: AtomicU64,
}

impl ConnTable {
    /// An empty table.
    pub fn new() -> ConnTable {
        ConnTable::default()
    }

    /// Register the connection to `peer` (replacing an older one); returns its id for
    /// [`Self::remove`].
    pub fn insert(&self, peer: SocketAddr, tx: ConnSender) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut conns) = self.conns.write() {
            conns.insert(peer, Entry { id, tx });
        }
        id
    }

    /// Unregister the connection `id` to `peer`, unless a newer one replaced it.
    pub fn remove(&self, peer: SocketAddr, id: u64) {
        if let Ok(mut conns) = self.conns.write() {
            if conns.get(&peer).is_some_and(|e| e.id == id) {
                conns.remove(&peer);
            }
        }
    }

    /// Whether a connection to `peer` is open.
    pub fn contains(&self, peer: SocketAddr) -> bool {
        self.conns.read().is_ok_and(|c| c.contains_key(&peer))
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        self.conns.read().map_or(0, |c| c.len())
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sender of the connection to `peer`, if one is open.
    pub fn get(&self, peer: SocketAddr) -> Option<ConnSender> {
        self.conns.read().ok()?.get(&peer).map(|e| e.tx.clone())
    }

    /// Queue `wire` on the connection to `peer`.
    pub fn send(&self, peer: SocketAddr, wire: impl Into<super::Wire>) -> Result<(), SendError> {
        let tx = self.get(peer).ok_or(SendError::NoConnection(peer))?;
        queue(&tx, peer, wire)
    }
}

/// Queue `wire` on `tx`, the connection to `peer`.
pub fn queue(
    tx: &ConnSender,
    peer: SocketAddr,
    wire: impl Into<super::Wire>,
) -> Result<(), SendError> {
    tx.try_send(wire.into()).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => SendError::Full(peer),
        mpsc::error::TrySendError::Closed(_) => SendError::Closed(peer),
    })
}

/// Queue `wire` on `tx`, then ask the writer to close the connection once it is written
/// (`set_reply_close`/`set_forward_close`). An empty buffer is the close request: no SIP
/// message is empty.
pub fn queue_and_close(
    tx: &ConnSender,
    peer: SocketAddr,
    wire: impl Into<super::Wire>,
) -> Result<(), SendError> {
    queue(tx, peer, wire)?;
    queue(tx, peer, super::Wire::Owned(Vec::new()))
}

/// Write everything queued on `rx` to `wr` (a TCP write half, or a TLS stream's) until every
/// sender is gone, a write fails, or an empty buffer asks to close. Dropping `rx` on the way
/// out tells the connection's reader (which waits on its sender's `closed()`) to stop too.
pub async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<super::Wire>,
    peer: SocketAddr,
) {
    while let Some(wire) = rx.recv().await {
        if wire.is_empty() {
            tracing::debug!(%peer, "closing stream connection as the script asked");
            break;
        }
        if let Err(e) = wr.write_all(&wire).await {
            tracing::info!(%peer, "stream write failed, closing: {e}");
            break;
        }
        // A TLS stream may hold the record until flushed; a TCP write half's flush is a no-op.
        if let Err(e) = wr.flush().await {
            tracing::info!(%peer, "stream write failed, closing: {e}");
            break;
        }
    }
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_send_remove() {
        let t = ConnTable::new();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            t.send(peer, b"x".to_vec()),
            Err(SendError::NoConnection(peer))
        );
        let (tx, mut rx) = mpsc::channel(1);
        let old = t.insert(peer, tx);
        t.send(peer, b"a".to_vec()).unwrap();
        assert_eq!(t.send(peer, b"b".to_vec()), Err(SendError::Full(peer)));
        assert_eq!(&*rx.try_recv().unwrap(), b"a");
        let (tx2, _rx2) = mpsc::channel(1);
        let new = t.insert(peer, tx2);
        t.remove(peer, old);
        assert!(t.contains(peer));
        t.remove(peer, new);
        assert!(t.is_empty());
    }

    #[tokio::test]
    async fn close_after_the_queued_message() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let (_rd, wr) = server.into_split();
        let (tx, rx) = mpsc::channel(4);
        let writer = tokio::spawn(write_loop(wr, rx, peer));
        queue(&tx, peer, b"one".to_vec()).unwrap();
        queue_and_close(&tx, peer, b"two".to_vec()).unwrap();
        writer.await.unwrap();
        // The reader's signal: the writer is gone.
        assert!(tx.is_closed());
        assert_eq!(
            queue(&tx, peer, b"late".to_vec()),
            Err(SendError::Closed(peer))
        );
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"onetwo");
    }
}
