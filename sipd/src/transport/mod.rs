//! The transports: binding listen sockets, framing SIP on streams, and the table of open TCP
//! connections that replies and forwards reuse.
//!
//! - [`udp`]: binding a UDP listen socket.
//! - [`stream`]: [`stream::StreamFramer`], cutting a TCP byte stream into SIP messages by
//!   Content-Length, with a bounded buffer.
//! - [`tcp`]: [`tcp::ConnTable`], the open connections by peer address, and the per-connection
//!   writer.
//! - [`tls`]: [`tls::TlsContext`], the rustls configurations (certificates, SNI, client
//!   verification, outgoing verification) of `tls:` listeners and outgoing TLS connections.
//! - [`ws`]: [`ws::WsConfig`], the `[websocket]` settings of `ws:`/`wss:` listeners, and the
//!   upgrade check (the `sip` subprotocol, allowed origins).
//! - [`limits`]: [`limits::ConnLimits`], accepted connections per listener and per source IP,
//!   and the per-transport connection and WebSocket frame counters.
//!
//! What runs the sockets (receive loops, accept loops, per-connection readers) is the worker, in
//! [`crate::server`]; nothing here routes.

pub mod limits;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod ws;

/// The bytes of one message to send: owned (a reply, a stateless forward: moved to the socket
/// or connection queue as they are) or shared (a branch request its transaction also keeps for
/// retransmissions: no copy for the send, and no extra allocation for the owned case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Bytes only the send needs.
    Owned(Vec<u8>),
    /// Bytes someone else keeps too.
    Shared(bytes::Bytes),
}

impl Wire {
    /// The bytes as an owned buffer (a copy only for shared bytes).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Wire::Owned(v) => v,
            Wire::Shared(b) => b.to_vec(),
        }
    }
}

impl std::ops::Deref for Wire {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Wire::Owned(v) => v,
            Wire::Shared(b) => b,
        }
    }
}

impl From<Vec<u8>> for Wire {
    fn from(v: Vec<u8>) -> Wire {
        Wire::Owned(v)
    }
}

impl From<bytes::Bytes> for Wire {
    fn from(b: bytes::Bytes) -> Wire {
        Wire::Shared(b)
    }
}
