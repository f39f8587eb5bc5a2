//! Error types of the message model: why a message could not be framed or parsed
//! ([`ParseError`]), why a header value or URI did not parse ([`ValueError`], [`UriError`]), and
//! which mandatory header is missing or repeated ([`RequiredError`]).

use super::header::HeaderKind;

/// What went wrong while framing or parsing a message; see [`ParseError::status`] for the
/// reply each kind deserves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// The bytes are not SIP at all (no recognisable start line): drop silently.
    NotSip,
    /// The start line looks like SIP but is malformed (extra spaces, bad Request-URI...).
    BadStartLine,
    /// The SIP version is well-formed but not `SIP/2.0`: a server answers 505.
    UnsupportedVersion,
    /// A response's status code is not three digits in `100..=699`.
    BadStatusCode,
    /// The start line or header section is not valid UTF-8.
    NotUtf8,
    /// A header line is malformed (no colon, empty or non-token name, a continuation with
    /// nothing to continue).
    BadHeader,
    /// The header section never ends (no empty line) within the datagram.
    Truncated,
    /// Content-Length is negative, not a number, too big, repeated with different values, or
    /// larger than the body received.
    ContentLength,
    /// A stream-framed message has no Content-Length.
    MissingContentLength,
    /// The header section (or the message) is larger than the limit.
    TooLarge,
}

/// Why a message could not be parsed: a kind, a short static description, and whether the
/// message was a response (malformed responses are always dropped silently).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ParseError {
    kind: ParseErrorKind,
    detail: &'static str,
    response: bool,
}

impl ParseError {
    /// A new error of `kind` described by `detail`, in a request.
    pub const fn new(kind: ParseErrorKind, detail: &'static str) -> Self {
        ParseError {
            kind,
            detail,
            response: false,
        }
    }

    /// The same error, marked as found in a response (or not).
    pub(crate) const fn in_response(mut self, response: bool) -> Self {
        self.response = response;
        self
    }

    /// The kind of fault.
    pub const fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// Short description, fit for a log line or a reason phrase.
    pub const fn detail(&self) -> &'static str {
        self.detail
    }

    /// Whether the faulty message was a response.
    pub const fn is_response(&self) -> bool {
        self.response
    }

    /// The status code a server should answer with, or `None` to drop silently (bytes that
    /// are not SIP, and any malformed response, since responses are never answered).
    ///
    /// ```
    /// use kemi_runtime::sip::Message;
    /// let err = Message::parse("OPTIONS sip:a@b SIP/3.0\r\n\r\n".into()).unwrap_err();
    /// assert_eq!(err.status(), Some(505));
    /// ```
    pub const fn status(&self) -> Option<u16> {
        if self.response {
            return None;
        }
        match self.kind {
            ParseErrorKind::NotSip => None,
            ParseErrorKind::UnsupportedVersion => Some(505),
            ParseErrorKind::TooLarge => Some(513),
            ParseErrorKind::BadStartLine
            | ParseErrorKind::BadStatusCode
            | ParseErrorKind::NotUtf8
            | ParseErrorKind::BadHeader
            | ParseErrorKind::Truncated
            | ParseErrorKind::ContentLength
            | ParseErrorKind::MissingContentLength => Some(400),
        }
    }
}

/// A header value that does not parse as its header's grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad {header} header: {detail}")]
pub struct ValueError {
    /// The header (canonical name).
    pub header: &'static str,
    /// What is wrong.
    pub detail: &'static str,
}

impl ValueError {
    /// A new value error.
    pub const fn new(header: &'static str, detail: &'static str) -> Self {
        ValueError { header, detail }
    }
}

/// A URI that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad URI: {0}")]
pub struct UriError(pub &'static str);

/// A mandatory header (RFC 3261 8.1.1) is missing, or one that must be unique is repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequiredError {
    /// The header is absent.
    #[error("missing {} header", .0.name())]
    Missing(HeaderKind),
    /// The header appears more than once.
    #[error("duplicate {} header", .0.name())]
    Duplicate(HeaderKind),
}
