//! [`Message`]: one received SIP message, its bytes kept, its start line and headers indexed,
//! every value parsed only when asked for.
//!
//! The header section is checked to be UTF-8 once, at parse time, so every accessor returns
//! `&str` without re-validating. A head whose header values carry octets that are not UTF-8
//! (Latin-1 display names) is kept as received and gets a second, lossy copy in which each such
//! octet is [`SUBSTITUTE`](super::SUBSTITUTE) (same length, same offsets): accessors read the
//! copy, serializers write the received bytes ([`Message::wire`]). The body is never
//! inspected and stays bytes.

use bytes::Bytes;

use super::error::{ParseError, RequiredError, UriError, ValueError};
use super::header::{name_matches, HeaderKind, HeaderRef};
use super::method::Method;
use super::name_addr::{tag_of, NameAddr};
use super::params::{split_outside_quotes, Params};
use super::parse::{index, HeaderIdx, Index, Span, StartLine};
use super::uri::Uri;
use super::value::{parse_decimal, CSeq};
use super::via::Via;

/// A parsed SIP message.
///
/// ```
/// use kemi_runtime::sip::{Message, Method};
/// let m = Message::parse("OPTIONS sip:bob@b.example SIP/2.0\r\n\
///     v: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n".into()).unwrap();
/// assert_eq!(m.method(), Some(Method::Options));
/// assert_eq!(m.ruri(), Some("sip:bob@b.example"));
/// assert_eq!(m.call_id(), Some("abc"));
/// assert_eq!(m.top_via().unwrap().unwrap().branch(), Some("z9hG4bK1"));
/// ```
#[derive(Clone, Debug)]
pub struct Message {
    buf: Bytes,
    /// The lossy view of the head (`buf[..head end]` with every octet of an invalid UTF-8
    /// sequence replaced by [`SUBSTITUTE`](super::SUBSTITUTE)) when the head is not UTF-8;
    /// text accessors read it instead of `buf`. `None` for UTF-8 heads (every normal message).
    /// A thin pointer (8 bytes, not a 16-byte `Box<[u8]>`): `Message` moves by value and
    /// stays within its size budget; the second indirection costs only on the lossy path.
    view: Option<Box<LossyView>>,
    idx: Index,
    /// The topmost Via value, parsed once at parse time (every request and reply needs it:
    /// the pipeline, replies, branches): spans into `buf`, or why it does not parse; `None`
    /// without a Via header.
    top: Option<Result<ViaIdx, ValueError>>,
}

/// The lossy view of a head that is not UTF-8 (see `Message::view`).
#[derive(Clone, Debug)]
struct LossyView(Vec<u8>);

/// Where the parts of the top Via are in the buffer (see [`Via`]).
#[derive(Clone, Copy, Debug)]
struct ViaIdx {
    raw: Span,
    protocol: Span,
    version: Span,
    transport: Span,
    host: Span,
    port: Option<u16>,
    params: Span,
    /// Looked up once, with the spans (kept small: `Message` moves by value): the first
    /// `branch` param's value and the first `rport` param's value ([`ABSENT`] when there is
    /// none, an empty span for a bare param), the end of the name of the first `rport` written
    /// without a value, and whether a `received` param is present. Offsets are from
    /// `raw.start` (the header section is at most 65,535 octets).
    branch: Span,
    rport: Span,
    empty_rport_end: Option<u16>,
    has_received: bool,
    /// End of the first comma-separated element of the first Via header (where `list`
    /// split it: the first `,` outside quotes, or the value's end), from `raw.start`.
    elem_end: u16,
}

/// A param that is not there (see [`ViaIdx`]).
const ABSENT: Span = Span {
    start: u32::MAX,
    end: u32::MAX,
};

/// `None` for [`ABSENT`].
fn present(s: Span) -> Option<Span> {
    (s != ABSENT).then_some(s)
}

/// What a reply needs from the top Via's params (see [`Message::top_via_reply_params`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ViaReplyParams {
    /// Offset in `raw` just past the name of the first `rport` without a value.
    pub empty_rport_end: Option<usize>,
    /// Whether a `received` param is present.
    pub has_received: bool,
}

impl Message {
    /// Parse one message received as one datagram: the whole buffer is the message, framed by
    /// Content-Length when present (bytes past it are ignored, fewer bytes than it is an
    /// error), else the body is the rest of the buffer. For streams, cut the buffer with
    /// [`frame_len`](super::frame_len) first.
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        Message::parse_or_return(buf).map_err(|(e, _)| e)
    }

    /// [`Message::parse`], handing the buffer back with the error, so a caller that answers
    /// or logs malformed input needs no clone of it (cloning a `Bytes` made from a `Vec`
    /// allocates).
    pub fn parse_or_return(buf: Bytes) -> Result<Message, (ParseError, Bytes)> {
        let (idx, view) = match index(&buf) {
            Ok((idx, view)) => (idx, view.map(|v| Box::new(LossyView(v)))),
            Err(e) => return Err((e, buf)),
        };
        let mut m = Message {
            buf,
            view,
            idx,
            top: None,
        };
        m.top = m.parse_top_via();
        Ok(m)
    }

    /// Parse the first value of the first Via header into spans.
    fn parse_top_via(&self) -> Option<Result<ViaIdx, ValueError>> {
        let value = self.list(HeaderKind::Via).next()?;
        let base = self.text_buf().as_ptr() as usize;
        let len = self.text_buf().len();
        // Every non-empty part borrows from `value`, itself inside the buffer: its span is its
        // offset from the buffer's start. Empty parts (no params) get an empty span.
        let span = |s: &str| {
            let start = (s.as_ptr() as usize).wrapping_sub(base);
            if s.is_empty() || start >= len {
                Span::default()
            } else {
                Span::new(start, start + s.len())
            }
        };
        let (mut branch, mut rport, mut empty_rport_end, mut has_received) =
            (ABSENT, ABSENT, None, false);
        // Params are looked up while `parse_with` checks them (one walk); offsets of
        // `empty_rport_end` are from the buffer here, made relative to `raw` below.
        let parsed = Via::parse_with(value, |p| {
            if branch == ABSENT && p.name.eq_ignore_ascii_case("branch") {
                branch = span(p.value.unwrap_or(""));
            } else if p.name.eq_ignore_ascii_case("rport") {
                if rport == ABSENT {
                    rport = span(p.value.unwrap_or(""));
                }
                if empty_rport_end.is_none() && p.value.is_none() {
                    empty_rport_end = Some(span(p.name).end);
                }
            } else if p.name.eq_ignore_ascii_case("received") {
                has_received = true;
            }
        });
        Some(parsed.map(|v| {
            let raw = span(v.raw);
            let from_raw =
                |at: u32| u16::try_from(at.saturating_sub(raw.start)).unwrap_or(u16::MAX);
            let empty_rport_end = empty_rport_end.map(from_raw);
            ViaIdx {
                raw,
                protocol: span(v.protocol),
                version: span(v.version),
                transport: span(v.transport),
                host: span(v.host),
                port: v.port,
                params: span(v.params.as_str()),
                branch,
                rport,
                empty_rport_end,
                has_received,
                elem_end: from_raw(span(value).end),
            }
        }))
    }

    /// Text of a span of the index (see [`Message::text`]).
    #[inline]
    pub(crate) fn span_text(&self, span: Span) -> &str {
        self.text(span)
    }

    /// What the text accessors read: the lossy view when there is one, else the buffer.
    #[inline]
    fn text_buf(&self) -> &[u8] {
        match &self.view {
            Some(v) => &v.0,
            None => &self.buf,
        }
    }

    /// Text of a span inside the header section.
    fn text(&self, span: Span) -> &str {
        let bytes = self.text_buf().get(span.range()).unwrap_or_default();
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `index` validated the whole header section as UTF-8, or built the lossy view
        // (every invalid octet replaced by one ASCII byte, so the view is UTF-8), and every
        // span this is called with lies inside it with both ends next to an ASCII delimiter
        // (SP, HT, CR, LF, ':') or at the section's ends, hence on char boundaries: ASCII
        // bytes are never part of a multi-byte UTF-8 sequence. The top Via's spans are the
        // extents of `&str` sub-slices of a header value, so on char boundaries too (or empty).
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The bytes received (the whole datagram, including anything past Content-Length).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the head was not UTF-8, so the text accessors return its lossy view: each octet
    /// of an invalid UTF-8 sequence reads as [`SUBSTITUTE`](super::SUBSTITUTE) (U+001A).
    /// The received bytes are what [`Message::as_bytes`] and the serializers give.
    pub fn is_lossy(&self) -> bool {
        self.view.is_some()
    }

    /// Offset from the start of the message of `s`, a slice returned by one of this message's
    /// text accessors (a header, a value, a part of one); `None` for any other string.
    pub fn offset_of(&self, s: &str) -> Option<usize> {
        let base = self.text_buf();
        let at = (s.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
        (at <= base.len() && s.len() <= base.len() - at).then_some(at)
    }

    /// The received bytes behind `s`: for a slice returned by one of this message's text
    /// accessors, the same range of the received buffer (the original octets where the
    /// accessor showed [`SUBSTITUTE`](super::SUBSTITUTE)); any other string as it is. Whatever
    /// goes back on the wire from the message's text goes through this, so a non-UTF-8 head is
    /// forwarded byte for byte. Free for UTF-8 heads (no view: the text is the buffer).
    ///
    /// ```
    /// use kemi_runtime::sip::Message;
    /// let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nFrom: \"Jos\xe9\" <sip:j@b>\r\n\r\n".to_vec().into()).unwrap();
    /// let from = m.header_value("From").unwrap();
    /// assert_eq!(from, "\"Jos\u{1a}\" <sip:j@b>");
    /// assert_eq!(m.wire(from), b"\"Jos\xe9\" <sip:j@b>");
    /// assert_eq!(m.wire("other"), b"other");
    /// ```
    #[inline]
    pub fn wire<'a>(&'a self, s: &'a str) -> &'a [u8] {
        if let Some(LossyView(v)) = self.view.as_deref() {
            let at = (s.as_ptr() as usize).wrapping_sub(v.as_ptr() as usize);
            if at <= v.len() && s.len() <= v.len() - at {
                if let Some(raw) = self.buf.get(at..at + s.len()) {
                    return raw;
                }
            }
        }
        s.as_bytes()
    }

    /// The received buffer (cheap to clone).
    pub fn buffer(&self) -> &Bytes {
        &self.buf
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.idx.start, StartLine::Request { .. })
    }

    /// Whether this is a response.
    pub fn is_response(&self) -> bool {
        !self.is_request()
    }

    /// The start line as written, without its line terminator.
    pub fn start_line(&self) -> &str {
        self.text(self.idx.start_line)
            .trim_end_matches(['\r', '\n'])
    }

    /// The method token of a request.
    pub fn method_str(&self) -> Option<&str> {
        match self.idx.start {
            StartLine::Request { method, .. } => Some(self.text(method)),
            StartLine::Response { .. } => None,
        }
    }

    /// The method of a request.
    pub fn method(&self) -> Option<Method<'_>> {
        self.method_str().map(Method::parse)
    }

    /// The Request-URI as received (requests only).
    pub fn ruri(&self) -> Option<&str> {
        match self.idx.start {
            StartLine::Request { ruri, .. } => Some(self.text(ruri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI, parsed (requests only).
    pub fn request_uri(&self) -> Option<Result<Uri<'_>, UriError>> {
        self.ruri().map(Uri::parse)
    }

    /// The SIP version as written (`SIP/2.0`).
    pub fn version(&self) -> &str {
        match self.idx.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => {
                self.text(version)
            }
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.idx.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response, as written (may be empty).
    pub fn reason(&self) -> Option<&str> {
        match self.idx.start {
            StartLine::Response { reason, .. } => Some(self.text(reason)),
            StartLine::Request { .. } => None,
        }
    }

    fn header_ref(&self, index: usize, h: &HeaderIdx) -> HeaderRef<'_> {
        HeaderRef {
            index,
            name: self.text(h.name),
            value: self.text(h.value),
            kind: h.kind,
            line: self.text(h.line),
        }
    }

    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.idx.headers.len()
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = HeaderRef<'_>> + '_ {
        self.idx
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| self.header_ref(i, h))
    }

    /// The header at `index`.
    pub fn header(&self, index: usize) -> Option<HeaderRef<'_>> {
        self.idx
            .headers
            .get(index)
            .map(|h| self.header_ref(index, h))
    }

    /// Every header named `name` (case-insensitive; compact and long forms match each other).
    pub fn find<'m>(&'m self, name: &'m str) -> impl Iterator<Item = HeaderRef<'m>> + 'm {
        let qkind = HeaderKind::from_name(name);
        self.headers()
            .filter(move |h| name_matches(h.kind, h.name, qkind, name))
    }

    /// Every header of a known kind.
    pub fn find_kind(&self, kind: HeaderKind) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        self.idx
            .headers
            .iter()
            .enumerate()
            .filter(move |(_, h)| h.kind == kind)
            .map(|(i, h)| self.header_ref(i, h))
    }

    /// The first header named `name`.
    pub fn first(&self, name: &str) -> Option<HeaderRef<'_>> {
        let qkind = HeaderKind::from_name(name);
        self.headers()
            .find(|h| name_matches(h.kind, h.name, qkind, name))
    }

    /// The first header of a known kind.
    pub fn first_kind(&self, kind: HeaderKind) -> Option<HeaderRef<'_>> {
        let i = self.idx.headers.iter().position(|h| h.kind == kind)?;
        self.header(i)
    }

    /// The value of the first header named `name`.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.first(name).map(|h| h.value)
    }

    fn kind_value(&self, kind: HeaderKind) -> Option<&str> {
        let h = self.idx.headers.iter().find(|h| h.kind == kind)?;
        Some(self.text(h.value))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.kind_value(HeaderKind::CallId)
    }

    /// The CSeq (`None` when absent).
    pub fn cseq(&self) -> Option<Result<CSeq<'_>, ValueError>> {
        self.kind_value(HeaderKind::CSeq).map(CSeq::parse)
    }

    /// The From header (`None` when absent).
    pub fn from_hdr(&self) -> Option<Result<NameAddr<'_>, ValueError>> {
        self.kind_value(HeaderKind::From)
            .map(|v| NameAddr::parse(v, "From"))
    }

    /// The To header (`None` when absent).
    pub fn to_hdr(&self) -> Option<Result<NameAddr<'_>, ValueError>> {
        self.kind_value(HeaderKind::To)
            .map(|v| NameAddr::parse(v, "To"))
    }

    /// The From tag, if From parses and has one (see [`tag_of`]).
    pub fn from_tag(&self) -> Option<&str> {
        tag_of(self.kind_value(HeaderKind::From)?)
    }

    /// The To tag, if To parses and has one (see [`tag_of`]).
    pub fn to_tag(&self) -> Option<&str> {
        tag_of(self.kind_value(HeaderKind::To)?)
    }

    /// Every Contact value, across headers and comma-separated values.
    pub fn contacts(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ValueError>> + '_ {
        self.list(HeaderKind::Contact)
            .map(|v| NameAddr::parse(v, "Contact"))
    }

    /// Every Via value, top first, across headers and comma-separated values.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, ValueError>> + '_ {
        self.top_via()
            .into_iter()
            .chain(self.list(HeaderKind::Via).skip(1).map(Via::parse))
    }

    /// The topmost Via value (parsed once, when the message was).
    pub fn top_via(&self) -> Option<Result<Via<'_>, ValueError>> {
        Some(match self.top.as_ref()? {
            Ok(v) => Ok(Via {
                raw: self.text(v.raw),
                protocol: self.text(v.protocol),
                version: self.text(v.version),
                transport: self.text(v.transport),
                host: self.text(v.host),
                port: v.port,
                params: Params::new(self.text(v.params)),
            }),
            Err(e) => Err(*e),
        })
    }

    /// Whether the top Via parsed: `matches!(top_via(), Some(Ok(_)))` without building it.
    pub fn top_via_ok(&self) -> bool {
        matches!(self.top, Some(Ok(_)))
    }

    /// The top Via's sent-by host (as written, IPv6 brackets kept) and port: the same as
    /// `top_via()?.ok().map(|v| (v.host, v.port))` without building the whole [`Via`].
    pub fn top_via_sent_by(&self) -> Option<(&str, Option<u16>)> {
        let v = self.top.as_ref()?.as_ref().ok()?;
        Some((self.text(v.host), v.port))
    }

    /// The top Via's `branch` param (`Some("")` when written without a value): the same as
    /// `top_via()?.ok()?.branch()`, looked up once at parse time.
    pub fn top_via_branch(&self) -> Option<&str> {
        let v = self.top.as_ref()?.as_ref().ok()?;
        present(v.branch).map(|s| self.text(s))
    }

    /// The top Via's `rport` param (`Some("")` when written without a value): the same as
    /// `top_via()?.ok()?.rport()`, looked up once at parse time.
    pub fn top_via_rport(&self) -> Option<&str> {
        let v = self.top.as_ref()?.as_ref().ok()?;
        present(v.rport).map(|s| self.text(s))
    }

    /// The top Via's params a reply stamps (`rport` without a value, `received`), when the
    /// top Via parsed.
    pub(crate) fn top_via_reply_params(&self) -> Option<ViaReplyParams> {
        let v = self.top.as_ref()?.as_ref().ok()?;
        Some(ViaReplyParams {
            empty_rport_end: v.empty_rport_end.map(usize::from),
            has_received: v.has_received,
        })
    }

    /// Offset in the buffer of the end of the first Via header's first value (its first `,`
    /// outside quotes, or the end of the value), when the top Via parsed.
    pub(crate) fn top_via_elem_end(&self) -> Option<usize> {
        let v = self.top.as_ref()?.as_ref().ok()?;
        Some(v.raw.start as usize + usize::from(v.elem_end))
    }

    /// Every comma-separated value of every header of `kind`, untrimmed.
    pub fn list(&self, kind: HeaderKind) -> impl Iterator<Item = &str> + '_ {
        self.find_kind(kind)
            .flat_map(|h| split_outside_quotes(h.value, b','))
    }

    /// Max-Forwards (`None` when absent; leading zeros allowed).
    pub fn max_forwards(&self) -> Option<Result<u32, ValueError>> {
        self.kind_value(HeaderKind::MaxForwards)
            .map(|v| parse_decimal(v).ok_or(ValueError::new("Max-Forwards", "not a number")))
    }

    /// Content-Length (validated at parse time).
    pub fn content_length(&self) -> Option<u32> {
        self.idx.content_length
    }

    /// Content-Type.
    pub fn content_type(&self) -> Option<&str> {
        self.kind_value(HeaderKind::ContentType)
    }

    /// User-Agent.
    pub fn user_agent(&self) -> Option<&str> {
        self.kind_value(HeaderKind::UserAgent)
    }

    /// The body (bounded by Content-Length when present).
    pub fn body(&self) -> &[u8] {
        self.buf.get(self.idx.body.range()).unwrap_or_default()
    }

    /// The body as a shared slice of the received buffer (no copy).
    pub fn body_bytes(&self) -> Bytes {
        self.buf.slice(self.idx.body.range())
    }

    /// RFC 3261 8.1.1 presence check: at least one Via; exactly one From, To, Call-ID and CSeq.
    /// Separate from parsing, so a script can decide (Kamailio's `sanity` does the same).
    ///
    /// ```
    /// use kemi_runtime::sip::{HeaderKind, Message, RequiredError};
    /// let m = Message::parse("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n".into()).unwrap();
    /// assert_eq!(m.check_required(), Err(RequiredError::Missing(HeaderKind::From)));
    /// ```
    pub fn check_required(&self) -> Result<(), RequiredError> {
        const UNIQUE: [HeaderKind; 4] = [
            HeaderKind::From,
            HeaderKind::To,
            HeaderKind::CallId,
            HeaderKind::CSeq,
        ];
        let mut counts = [0usize; 5];
        for h in &self.idx.headers {
            if h.kind == HeaderKind::Via {
                counts[0] += 1;
            } else if let Some(i) = UNIQUE.iter().position(|k| *k == h.kind) {
                if let Some(c) = counts.get_mut(i + 1) {
                    *c += 1;
                }
            }
        }
        if counts[0] == 0 {
            return Err(RequiredError::Missing(HeaderKind::Via));
        }
        for (kind, n) in UNIQUE.iter().zip(&counts[1..]) {
            match n {
                0 => return Err(RequiredError::Missing(*kind)),
                1 => {}
                _ => return Err(RequiredError::Duplicate(*kind)),
            }
        }
        Ok(())
    }

    /// Index data for the serializers.
    pub(crate) fn index(&self) -> &Index {
        &self.idx
    }

    /// Raw bytes of a span (serializers copy untouched lines verbatim).
    pub(crate) fn raw(&self, span: Span) -> &[u8] {
        self.buf.get(span.range()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_stays_small() {
        // It moves by value (into `SipMsg`, through the transaction layer's enums; clippy's
        // `large_enum_variant` draws the line at 200 bytes).
        assert!(std::mem::size_of::<Message>() <= 200);
    }

    #[test]
    fn cached_top_via_params_agree_with_a_fresh_lookup() {
        for via in [
            "SIP/2.0/UDP h;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP h;BRANCH=a;Branch=b;rport=1;rport;received=1.2.3.4",
            "SIP/2.0/UDP h ; rport ; branch",
            "SIP/2.0/UDP h;received=x;RPORT;branch=\"q;r\"",
            "SIP/2.0/UDP h:5060",
            "SIP/2.0/UDP h;branch=;rport=",
            "SIP/2.0/UDP h;;branch=1",
            "not a via",
            "SIP/2.0/UDP a;branch=z9hG4bK1 , SIP/2.0/UDP b",
            "SIP/2.0/UDP a;x=\"p,q\";rport,SIP/2.0/TCP b;branch=2",
        ] {
            let m = Message::parse(format!("OPTIONS sip:a@b SIP/2.0\r\nVia: {via}\r\n\r\n").into())
                .unwrap();
            let fresh = m.list(HeaderKind::Via).next().map(Via::parse);
            let fresh = fresh.and_then(Result::ok);
            assert_eq!(m.top_via_branch(), fresh.and_then(|v| v.branch()), "{via}");
            assert_eq!(m.top_via_rport(), fresh.and_then(|v| v.rport()), "{via}");
            assert_eq!(m.top_via_ok(), fresh.is_some(), "{via}");
            assert_eq!(
                m.top_via_sent_by(),
                fresh.map(|v| (v.host, v.port)),
                "{via}"
            );
            let params = m.top_via_reply_params();
            assert_eq!(params.is_some(), fresh.is_some(), "{via}");
            if let (Some(p), Some(v)) = (params, fresh) {
                assert_eq!(p.has_received, v.received().is_some(), "{via}");
                let empty = v
                    .params
                    .iter()
                    .find(|p| p.value.is_none() && p.name.eq_ignore_ascii_case("rport"))
                    .map(|p| p.name.as_ptr() as usize - v.raw.as_ptr() as usize + p.name.len());
                assert_eq!(p.empty_rport_end, empty, "{via}");
                let value = m.first_kind(HeaderKind::Via).unwrap().value;
                let start = value.as_ptr() as usize - m.as_bytes().as_ptr() as usize;
                let comma = crate::sip::params::find_outside_quotes(value, b',');
                let end = m.top_via_elem_end().unwrap();
                assert_eq!(end - start, comma.unwrap_or(value.len()), "{via}");
            }
        }
    }
}
