//! Binding a UDP listen socket.
//!
//! All workers receive on the same socket: each gets a duplicate of its file descriptor
//! (`try_clone`) registered in its own runtime. The kernel hands each datagram to exactly one
//! reader, whatever its source, so the load spreads over the workers even when every datagram
//! comes from one peer (a load generator, an upstream proxy), which `SO_REUSEPORT`'s per-4-tuple
//! hashing would pin to one worker. Replies leave from the same socket, hence from the listen
//! port.

use std::net::{SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::UdpBuffers;

/// Bind a non-blocking UDP socket on `addr` with the asked buffer sizes (the kernel may grant
/// less: it caps them at `net.core.rmem_max`/`wmem_max`; what it granted is logged).
pub fn bind(addr: SocketAddr, buffers: UdpBuffers) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_recv_buffer_size(buffers.receive)?;
    socket.set_send_buffer_size(buffers.send)?;
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    tracing::debug!(
        %addr,
        rcvbuf = socket.recv_buffer_size().unwrap_or(0),
        sndbuf = socket.send_buffer_size().unwrap_or(0),
        "UDP socket buffers"
    );
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_enlarged() {
        let small = bind(
            "127.0.0.1:0".parse().unwrap(),
            UdpBuffers {
                receive: 64 << 10,
                send: 64 << 10,
            },
        )
        .unwrap();
        let big = bind(
            "127.0.0.1:0".parse().unwrap(),
            UdpBuffers {
                receive: 1 << 20,
                send: 1 << 20,
            },
        )
        .unwrap();
        let size = |s: &UdpSocket| socket2::SockRef::from(s).recv_buffer_size().unwrap();
        // Linux doubles the asked size for bookkeeping; compare, do not pin the value.
        assert!(
            size(&big) > size(&small),
            "{} vs {}",
            size(&big),
            size(&small)
        );
    }
}
