//! [`StreamFramer`]: cuts a stream transport's bytes into SIP messages by Content-Length
//! ([`kemi_runtime::sip::frame_len`]), with a bounded buffer. Keepalive CRLFs between messages
//! are skipped. A framing error cannot be recovered from (the next message's start is
//! unknown): the connection is to be closed.

use bytes::{Buf, Bytes, BytesMut};
use kemi_runtime::sip::{frame_len, ParseError};

/// Why a stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The bytes do not frame as SIP.
    #[error("framing error: {0}")]
    Parse(#[from] ParseError),
    /// A message is larger than the limit.
    #[error("message larger than {0} octets")]
    TooLarge(usize),
}

/// A stream's receive buffer and framing state.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max: usize,
}

impl StreamFramer {
    /// A framer accepting messages up to `max` octets.
    pub fn new(max: usize) -> StreamFramer {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            max,
        }
    }

    /// The buffer to read more bytes into (with spare capacity reserved), or `None` when it
    /// already holds `max` octets without a complete message.
    pub fn read_buf(&mut self) -> Option<&mut BytesMut> {
        if self.buf.len() >= self.max {
            return None;
        }
        self.buf.reserve(4096.min(self.max - self.buf.len()).max(1));
        Some(&mut self.buf)
    }

    /// Append bytes (for tests and callers that do not read into [`Self::read_buf`]).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        // Keepalive CRLFs (RFC 5626 3.5.1) before a message are not part of it.
        let keepalive = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        self.buf.advance(keepalive);
        if self.buf.is_empty() {
            return Ok(None);
        }
        match frame_len(&self.buf)? {
            None if self.buf.len() >= self.max => Err(FrameError::TooLarge(self.max)),
            None => Ok(None),
            Some(n) if n > self.max => Err(FrameError::TooLarge(self.max)),
            Some(n) if n > self.buf.len() => Ok(None),
            Some(n) => Ok(Some(self.buf.split_to(n).freeze())),
        }
    }

    /// Bytes buffered and not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The bytes buffered and not yet framed (after [`FrameError::TooLarge`]: the head of the
    /// message that is too large, to answer it).
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nhi";

    #[test]
    fn two_messages_in_one_read_and_one_split() {
        let mut f = StreamFramer::new(65535);
        f.push(b"\r\n\r\n");
        f.push(MSG);
        f.push(MSG);
        f.push(&MSG[..10]);
        assert_eq!(f.next_frame().unwrap().as_deref(), Some(MSG));
        assert_eq!(f.next_frame().unwrap().as_deref(), Some(MSG));
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(&MSG[10..MSG.len() - 1]);
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(&MSG[MSG.len() - 1..]);
        assert_eq!(f.next_frame().unwrap().as_deref(), Some(MSG));
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn errors_close_the_stream() {
        let mut f = StreamFramer::new(65535);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert!(matches!(f.next_frame(), Err(FrameError::Parse(_))));
        let mut f = StreamFramer::new(600);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FrameError::TooLarge(600)));
        let mut f = StreamFramer::new(600);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nX: ");
        f.push(&[b'a'; 600]);
        assert_eq!(f.next_frame(), Err(FrameError::TooLarge(600)));
        assert!(f.read_buf().is_none());
    }
}
