//! The zero-copy SIP message model. (Skeleton: the API others build against; the implementation
//! is being written.)
//!
//! Contract:
//! - [`Message::parse`] keeps the received bytes, indexes the start line and every header by
//!   position (name and value ranges), and parses a header's value only when asked.
//! - Header names compare case-insensitively, and compact forms are the same header
//!   (`v`=Via, `f`=From, `t`=To, `i`=Call-ID, `m`=Contact, `l`=Content-Length, `c`=Content-Type,
//!   `k`=Supported, `s`=Subject, `e`=Content-Encoding, `o`=Event, `r`=Refer-To, `b`=Referred-By,
//!   `x`=Session-Expires, `u`=Allow-Events, `a`=Accept-Contact, `j`=Reject-Contact, `d`=Request-Disposition,
//!   `y`=Identity, `n`=Identity-Info).
//! - Edits ([`HeaderEdit`]) are applied only when the message is serialized.

use bytes::Bytes;

/// Why a message could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Placeholder.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// A parsed SIP message.
#[derive(Clone, Debug)]
pub struct Message {
    buf: Bytes,
}

/// A header edit recorded by the script, applied when the message is serialized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Remove the header at this index.
    Remove(usize),
    /// Insert a full header line (with CRLF) before the header at this index.
    InsertBefore(usize, String),
    /// Insert a full header line (with CRLF) after the header at this index.
    AppendAfter(usize, String),
    /// Insert a full header line (with CRLF) before the first header.
    Prepend(String),
    /// Insert a full header line (with CRLF) after the last header.
    Append(String),
}

impl Message {
    /// Parse one message.
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        Ok(Message { buf })
    }

    /// The received bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The Request-URI as received (requests only).
    pub fn ruri(&self) -> Option<&str> {
        None
    }
}
