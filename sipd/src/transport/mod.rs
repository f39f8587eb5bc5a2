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
