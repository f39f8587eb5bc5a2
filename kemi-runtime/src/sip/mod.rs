//! The zero-copy SIP message model.
//!
//! - [`Message::parse`] keeps the received bytes, indexes the start line and every header by
//!   position (name, value and line ranges), checks the header section is UTF-8 once (else
//!   keeps a lossy view of it for the text accessors, [`Message::wire`] giving the received
//!   bytes back), and parses a header's value only when asked ([`Message::vias`], [`Message::cseq`], ...).
//! - Header names compare case-insensitively, and compact forms are the same header
//!   (`v`=Via, `f`=From, `t`=To, `i`=Call-ID, `m`=Contact, `l`=Content-Length, `c`=Content-Type,
//!   `k`=Supported, `s`=Subject, `e`=Content-Encoding, `o`=Event, `r`=Refer-To, `b`=Referred-By,
//!   `x`=Session-Expires, `u`=Allow-Events, `a`=Accept-Contact, `j`=Reject-Contact,
//!   `d`=Request-Disposition, `y`=Identity, `n`=Identity-Info); see [`HeaderKind`].
//! - [`frame_len`] frames messages on stream transports.
//! - Edits ([`HeaderEdit`]) are applied only when the message is serialized
//!   ([`Message::write_request`], [`Message::write_response`]).
//! - [`reply::build`] writes a stateless reply.
//!
//! See `docs/MESSAGE-MODEL.md` for the design decisions.

mod edit;
mod error;
mod header;
mod message;
mod method;
mod name_addr;
mod params;
mod parse;
pub mod reply;
mod scan;
mod start_line;
pub mod text;
pub mod uri;
mod value;
mod via;

pub use edit::HeaderEdit;
pub use error::{ParseError, ParseErrorKind, RequiredError, UriError, ValueError};
pub use header::{unfold, HeaderKind, HeaderRef};
pub use message::Message;
pub use method::Method;
pub use name_addr::{tag_of, NameAddr};
pub use params::{Param, Params};
pub use parse::{frame_len, MAX_HEAD_LEN, SUBSTITUTE};
pub use uri::{percent_decode, Scheme, Uri};
pub use value::{parse_decimal, CSeq};
pub use via::Via;
