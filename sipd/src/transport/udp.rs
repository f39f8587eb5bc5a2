//! Binding a UDP listen socket.
//!
//! All workers receive on the same socket: each gets a duplicate of its file descriptor
//! (`try_clone`) registered in its own runtime. The kernel hands each datagram to exactly one
//! reader, whatever its source, so the load spreads over the workers even when every datagram
//! comes from one peer (a load generator, an upstream proxy), which `SO_REUSEPORT`'s per-4-tuple
//! hashing would pin to one worker. Replies leave from the same socket, hence from the listen
//! port.

use std::net::{SocketAddr, UdpSocket};

/// Bind a non-blocking UDP socket on `addr`.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}
