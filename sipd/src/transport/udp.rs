//! Binding a UDP listen socket.
//!
//! All workers receive on the same socket: each gets a duplicate of its file descriptor
//! (`try_clone`) registered in its own runtime. The kernel hands each datagram to exactly one
//! reader, whatever its source, so the load spreads over the workers even when every datagram
//! comes from one peer (a load generator, an upstream proxy), which `SO_REUSEPORT`'s per-4-tuple
//! hashing would pin to one worker. Replies leave from the same socket, hence from the listen
//! port.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

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

/// How long a send may wait for room in a full send buffer before the datagram is dropped.
pub const SEND_WAIT_MS: i32 = 100;

/// A worker's duplicate of a UDP listen socket, registered in its runtime for **readability
/// only**. A socket registered for writability too (what `tokio::net::UdpSocket` does) wakes
/// the worker once more after nearly every send: on loopback the datagram's memory is charged
/// to the sending socket until the peer reads it, and the space coming back is an `EPOLLOUT`
/// edge. That was one wake-up per reply or forward with nothing to do (about 2,000
/// instructions each, as many as the message itself cost to parse). Sends are therefore
/// plain non-blocking `sendto`s; in the rare case the send buffer is full, the worker waits
/// for room with `poll(2)` up to [`SEND_WAIT_MS`], as Kamailio's blocking UDP sends wait.
pub struct UdpIo {
    fd: AsyncFd<UdpSocket>,
}

impl UdpIo {
    /// Register `socket` (non-blocking) in the current runtime, for readability.
    pub fn new(socket: UdpSocket) -> io::Result<UdpIo> {
        // SAFETY: `std::net::UdpSocket` owns its descriptor: it stays open and refers to the
        // same socket until the value is dropped, which only `AsyncFd` (owning it) does, after
        // deregistering; `as_raw_fd` always returns that descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) };
        Ok(UdpIo {
            fd: fd.map_err(io::Error::from)?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }

    /// Receive one datagram.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            if let Some(r) = self.readable().await?.recv_from(buf) {
                return r;
            }
        }
    }

    /// Wait until the socket is readable. The returned [`Readable`] receives datagrams until
    /// the socket is drained, without going back to the runtime's readiness machinery for
    /// each one (a readiness future per datagram cost about 300 instructions).
    pub async fn readable(&self) -> io::Result<Readable<'_>> {
        Ok(Readable {
            guard: self.fd.readable().await?,
        })
    }

    /// Send one datagram, waiting up to [`SEND_WAIT_MS`] for room in the send buffer.
    pub fn send_to(&self, wire: &[u8], dst: SocketAddr) -> io::Result<usize> {
        let s = self.fd.get_ref();
        match s.send_to(wire, dst) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_writable(s, SEND_WAIT_MS)?;
                s.send_to(wire, dst)
            }
            r => r,
        }
    }
}

/// A [`UdpIo`] known to be readable: see [`UdpIo::readable`].
pub struct Readable<'a> {
    guard: tokio::io::unix::AsyncFdReadyGuard<'a, UdpSocket>,
}

impl Readable<'_> {
    /// Receive one datagram; `None` once the socket has nothing more (its readiness is then
    /// cleared: wait with [`UdpIo::readable`] again). An error (an ICMP error reported on the
    /// socket, say) is returned as `Some(Err(..))` and consumed: the socket stays readable.
    pub fn recv_from(&mut self, buf: &mut [u8]) -> Option<io::Result<(usize, SocketAddr)>> {
        self.guard.try_io(|s| s.get_ref().recv_from(buf)).ok()
    }
}

/// Wait until `s` can be written to, at most `ms` milliseconds (then `WouldBlock`).
fn wait_writable(s: &UdpSocket, ms: i32) -> io::Result<()> {
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: one valid `pollfd` for a descriptor `s` keeps open during the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        match n {
            1.. => return Ok(()),
            0 => return Err(io::ErrorKind::WouldBlock.into()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn udp_io_receives_and_sends() {
        let a = UdpIo::new(bind("127.0.0.1:0".parse().unwrap(), UdpBuffers::default()).unwrap())
            .unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let a_addr = a.local_addr().unwrap();
        for i in 0..3u8 {
            b.send_to(&[i; 10], a_addr).unwrap();
        }
        let mut buf = [0u8; 64];
        for i in 0..3u8 {
            let (n, src) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!((n, src, buf[0]), (10, b.local_addr().unwrap(), i));
        }
        assert_eq!(a.send_to(b"pong", b.local_addr().unwrap()).unwrap(), 4);
        let (n, src) = b.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], src), (&b"pong"[..], a_addr));
    }

    #[test]
    fn wait_writable_returns_at_once_when_there_is_room() {
        let a = bind("127.0.0.1:0".parse().unwrap(), UdpBuffers::default()).unwrap();
        let started = std::time::Instant::now();
        wait_writable(&a, 5_000).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

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
