//! The indexing pass: find the start line, every header line (name, value, line ranges) and the
//! body, and frame messages on streams ([`frame_len`]). Values are not parsed here, except
//! Content-Length, which framing needs.
//!
//! Line ends are CRLF; a bare LF is accepted too (liberal in what we accept: the RFC 5118
//! archive files use it). A line starting with SP or HT continues the previous header (folding).

use memchr::memchr;

use super::error::{ParseError, ParseErrorKind as K};
use super::header::{is_token_char, HeaderKind};
use super::start_line::start_line;

/// Largest header section (start line + headers) accepted, in octets; larger is
/// [`ParseErrorKind::TooLarge`](super::ParseErrorKind::TooLarge). Kamailio's buffer is 64 KiB too.
pub const MAX_HEAD_LEN: usize = 65_535;

/// A byte range in the message buffer. `u32` keeps the per-header index small; messages are
/// limited well below 4 GiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        // Callers guarantee `end <= buf.len() <= u32::MAX` (checked once in `index`).
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// As a `usize` range.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Where one header lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderIdx {
    pub name: Span,
    pub value: Span,
    /// Name to the end of the last line, line terminator included.
    pub line: Span,
    pub kind: HeaderKind,
}

/// The start line's pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request {
        method: Span,
        ruri: Span,
        version: Span,
    },
    Response {
        version: Span,
        code: u16,
        reason: Span,
    },
}

/// Everything the indexing pass found.
#[derive(Clone, Debug)]
pub(crate) struct Index {
    pub start: StartLine,
    /// The start line including its terminator (leading keepalive CRLFs excluded).
    pub start_line: Span,
    pub headers: Vec<HeaderIdx>,
    /// Where the empty line that ends the header section starts (it ends where the body
    /// starts; see [`Index::blank`]). Kept as one offset so `Message` stays within 200 bytes.
    pub blank_start: u32,
    pub content_length: Option<u32>,
    pub body: Span,
}

impl Index {
    /// The empty line that ends the header section.
    pub fn blank(&self) -> Span {
        Span {
            start: self.blank_start,
            end: self.body.start,
        }
    }
}

/// Index one datagram.
pub(crate) fn index(buf: &[u8]) -> Result<(Index, Option<Vec<u8>>), ParseError> {
    if u32::try_from(buf.len()).is_err() {
        return Err(ParseError::new(K::TooLarge, "message too large"));
    }
    let off = skip_crlf(buf);
    let mut lines = Lines::new(buf, off);
    let (line_end, next) = lines
        .next_line(off)
        .ok_or(ParseError::new(K::NotSip, "no start line"))?;
    let start = start_line(buf, off, line_end)?;
    let response = matches!(start, StartLine::Response { .. });
    let mut headers = Vec::with_capacity(16);
    let mut content_length = None;
    let head = scan_headers(buf, &mut lines, next, |h| {
        if h.kind == HeaderKind::ContentLength {
            merge_content_length(&mut content_length, buf, h.value)?;
        }
        headers.push(h);
        Ok(())
    })
    .map_err(|e| e.in_response(response))?;
    let (blank_start, head_end) = head.ok_or(
        ParseError::new(K::Truncated, "header section not terminated").in_response(response),
    )?;
    if head_end - off > MAX_HEAD_LEN {
        return Err(ParseError::new(K::TooLarge, "header section too large").in_response(response));
    }
    let head = buf.get(off..head_end).unwrap_or_default();
    // The line scan saw every byte up to `head_end` and noted the first one above 0x7f.
    let lossy = if lines.first_high() < head_end && std::str::from_utf8(head).is_err() {
        Some(lossy_view(buf, head_end, next, response).map_err(|e| e.in_response(response))?)
    } else {
        None
    };
    let received = buf.len() - head_end;
    let body_len = match content_length {
        Some(cl) if cl as usize > received => {
            return Err(ParseError::new(
                K::ContentLength,
                "Content-Length larger than the body received",
            )
            .in_response(response))
        }
        Some(cl) => cl as usize,
        None => received,
    };
    let idx = Index {
        start,
        start_line: Span::new(off, next),
        headers,
        blank_start: blank_start as u32,
        content_length,
        body: Span::new(head_end, head_end + body_len),
    };
    Ok((idx, lossy))
}

/// The byte that stands for each octet of an invalid UTF-8 sequence in the lossy view of a head:
/// ASCII SUB (U+001A), the substitute character. One byte for one byte, so every offset of the
/// index is the same in the view and in the received buffer. It is a control character, so
/// it never reads as a token, a delimiter or whitespace: a URI holding one does not parse
/// ([`Uri::parse`](super::Uri::parse) refuses control characters), so lossy text is never
/// taken for an identifier.
pub const SUBSTITUTE: u8 = 0x1a;

/// The lossy view of a head that is not UTF-8: `buf[..head_end]` with every byte of every
/// invalid UTF-8 sequence replaced by [`SUBSTITUTE`]. A request line (method, Request-URI,
/// version: `start_line_end` is the start of the first header line) that holds such a byte
/// is an error: the Request-URI is what routing keys on and a URI is ASCII (RFC 3261 25.1).
/// `start_line` refuses those already (a method that is not a token is not SIP, a
/// Request-URI that is not UTF-8 is a bad start line); this check keeps the rule if that
/// changes.
/// Header names never hold one (they are tokens: `scan_headers` refused them already), and a
/// status line's version and code are ASCII, so in a response only the reason phrase can.
#[cold]
fn lossy_view(
    buf: &[u8],
    head_end: usize,
    start_line_end: usize,
    response: bool,
) -> Result<Vec<u8>, ParseError> {
    let head = buf.get(..head_end).unwrap_or_default();
    let mut view = head.to_vec();
    let mut at = 0;
    for chunk in head.utf8_chunks() {
        at += chunk.valid().len();
        let bad = chunk.invalid().len();
        if bad > 0 && !response && at < start_line_end {
            return Err(ParseError::new(K::NotUtf8, "request line is not UTF-8"));
        }
        if let Some(b) = view.get_mut(at..at + bad) {
            b.fill(SUBSTITUTE);
        }
        at += bad;
    }
    debug_assert!(std::str::from_utf8(&view).is_ok());
    Ok(view)
}

/// Stream framing (TCP, TLS): the total length of the message at the start of `buf` (leading
/// keepalive CRLFs included) once its header section and Content-Length are known; `None`
/// when more bytes are needed.
///
/// Errors: a start line that is not SIP or is malformed, a malformed header line, a missing or
/// bad Content-Length (the stream cannot be resynchronised: close it), or a header section
/// longer than [`MAX_HEAD_LEN`]. A buffer holding only CRLFs is one frame of its own
/// (keepalives), which [`Message::parse`](super::Message::parse) rejects as not SIP.
///
/// ```
/// use kemi_runtime::sip::frame_len;
/// let msg = b"OPTIONS sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhi";
/// assert_eq!(frame_len(&msg[..10]), Ok(None));
/// assert_eq!(frame_len(msg), Ok(Some(msg.len())));
/// ```
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let off = skip_crlf(buf);
    if off > 0 && off == buf.len() {
        return Ok(Some(off));
    }
    let too_large = |len: usize| len.saturating_sub(off) > MAX_HEAD_LEN;
    let mut lines = Lines::new(buf, off);
    let Some((line_end, next)) = lines.next_line(off) else {
        if too_large(buf.len()) {
            return Err(ParseError::new(K::TooLarge, "start line too long"));
        }
        return Ok(None);
    };
    let start = start_line(buf, off, line_end)?;
    let response = matches!(start, StartLine::Response { .. });
    let mut content_length = None;
    let head = scan_headers(buf, &mut lines, next, |h| {
        if h.kind == HeaderKind::ContentLength {
            merge_content_length(&mut content_length, buf, h.value)?;
        }
        Ok(())
    })
    .map_err(|e| e.in_response(response))?;
    let Some((_, head_end)) = head else {
        if too_large(buf.len()) {
            return Err(
                ParseError::new(K::TooLarge, "header section too large").in_response(response)
            );
        }
        return Ok(None);
    };
    if too_large(head_end) {
        return Err(ParseError::new(K::TooLarge, "header section too large").in_response(response));
    }
    let cl = content_length.ok_or(
        ParseError::new(K::MissingContentLength, "no Content-Length on a stream")
            .in_response(response),
    )?;
    Ok(Some(head_end + cl as usize))
}

fn skip_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(buf.len())
}

/// The line ends of a buffer, found 64 bytes at a time: one pass marks every LF (and the first
/// byte above 0x7f, for the UTF-8 check) in a bit mask per 64-byte block, so each line costs a
/// few bit operations instead of a `memchr` call with its setup (~100 instructions a line on a
/// header section of short lines). Lines must be asked for in order.
pub(crate) struct Lines<'a> {
    buf: &'a [u8],
    /// Start of the block `mask` describes.
    base: usize,
    /// LF positions in the block from `base`, those already handed out cleared.
    mask: u64,
    /// Position of the first byte above 0x7f in the blocks seen so far (`usize::MAX`: none).
    high: usize,
}

impl<'a> Lines<'a> {
    /// A scanner whose first block starts at `from`.
    pub(crate) fn new(buf: &'a [u8], from: usize) -> Lines<'a> {
        let mut l = Lines {
            buf,
            base: from,
            mask: 0,
            high: usize::MAX,
        };
        l.load();
        l
    }

    /// Mark the block at `base`.
    #[inline]
    fn load(&mut self) {
        let rest = self.buf.get(self.base..).unwrap_or_default();
        let (lf, high) = match rest.first_chunk::<64>() {
            Some(block) => block_masks(block),
            None => {
                // The last, partial block: zero-padded (a zero byte is neither LF nor high).
                let mut block = [0u8; 64];
                if let Some(dst) = block.get_mut(..rest.len()) {
                    dst.copy_from_slice(rest);
                }
                block_masks(&block)
            }
        };
        self.mask = lf;
        if high != 0 && self.high == usize::MAX {
            self.high = self.base + high.trailing_zeros() as usize;
        }
    }

    /// The next LF at or after `from` (which is at or after the previous LF handed out).
    #[inline]
    fn next_lf(&mut self, from: usize) -> Option<usize> {
        loop {
            if from >= self.base {
                // Clear the LFs before `from` in this block.
                let skip = from - self.base;
                if skip >= 64 {
                    self.mask = 0;
                } else {
                    self.mask &= u64::MAX << skip;
                }
            }
            if self.mask != 0 {
                let at = self.base + self.mask.trailing_zeros() as usize;
                self.mask &= self.mask - 1;
                return Some(at);
            }
            self.base += 64;
            if self.base >= self.buf.len() {
                self.base = self.buf.len();
                return None;
            }
            self.load();
        }
    }

    /// From `from`: the end of the line's content (before CR LF or LF) and the start of the
    /// next line.
    #[inline]
    pub(crate) fn next_line(&mut self, from: usize) -> Option<(usize, usize)> {
        let lf = self.next_lf(from)?;
        let end = if lf > from && self.buf.get(lf - 1) == Some(&b'\r') {
            lf - 1
        } else {
            lf
        };
        Some((end, lf + 1))
    }

    /// Position of the first byte above 0x7f in the blocks scanned so far (every byte before
    /// the last line handed out was scanned); `usize::MAX` when there was none.
    pub(crate) fn first_high(&self) -> usize {
        self.high
    }
}

/// For a 64-byte block: a bit per LF byte, and a bit per byte above 0x7f.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut lf = 0u64;
    let mut high = 0u64;
    // SAFETY: SSE2 is enabled at compile time (cfg above); each load reads 16 bytes inside
    // `block` (offsets 0, 16, 32, 48 of 64), unaligned loads are allowed.
    unsafe {
        let nl = _mm_set1_epi8(b'\n' as i8);
        for i in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(i * 16).cast::<__m128i>());
            let l = _mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u32 as u64;
            let h = _mm_movemask_epi8(v) as u32 as u64;
            lf |= l << (i * 16);
            high |= h << (i * 16);
        }
    }
    (lf, high)
}

/// For a 64-byte block: a bit per LF byte, and a bit per byte above 0x7f.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    let mut lf = 0u64;
    let mut high = 0u64;
    for (i, &c) in block.iter().enumerate() {
        lf |= u64::from(c == b'\n') << i;
        high |= u64::from(c >= 0x80) << i;
    }
    (lf, high)
}

/// Walk the header lines from `from`, handing each complete header to `each`. Returns the
/// blank line's range (start, end) or `None` when the buffer ends first.
fn scan_headers(
    buf: &[u8],
    lines: &mut Lines<'_>,
    mut pos: usize,
    mut each: impl FnMut(HeaderIdx) -> Result<(), ParseError>,
) -> Result<Option<(usize, usize)>, ParseError> {
    // The header being collected: name, value start, end of its last line's content.
    let mut pending: Option<(Span, usize, usize, usize)> = None;
    loop {
        let Some((end, next)) = lines.next_line(pos) else {
            return Ok(None);
        };
        let first = buf.get(pos).copied();
        if matches!(first, Some(b' ' | b'\t')) && end > pos {
            let Some(p) = pending.as_mut() else {
                return Err(ParseError::new(
                    K::BadHeader,
                    "continuation line before any header",
                ));
            };
            p.2 = end;
        } else {
            if let Some((name, vstart, vend, lstart)) = pending.take() {
                each(finish(buf, name, vstart, vend, lstart, pos))?;
            }
            if end == pos {
                return Ok(Some((pos, next)));
            }
            let line = buf.get(pos..end).unwrap_or_default();
            let (name_len, colon) = header_name(line)?;
            pending = Some((Span::new(pos, pos + name_len), pos + colon + 1, end, pos));
        }
        pos = next;
    }
}

/// The length of the header name at the start of `line` and the position of its colon. The
/// common case (a token, optional SP/HT, `:`) is one pass over the name.
#[inline]
fn header_name(line: &[u8]) -> Result<(usize, usize), ParseError> {
    let n = line
        .iter()
        .position(|&c| !is_token_char(c))
        .unwrap_or(line.len());
    let mut c = n;
    while matches!(line.get(c), Some(b' ' | b'\t')) {
        c += 1;
    }
    if n > 0 && line.get(c) == Some(&b':') {
        return Ok((n, c));
    }
    header_name_error(line)
}

/// Why `line` has no valid header name (the slow path of [`header_name`]).
#[cold]
fn header_name_error(line: &[u8]) -> Result<(usize, usize), ParseError> {
    let colon =
        memchr(b':', line).ok_or(ParseError::new(K::BadHeader, "header line without colon"))?;
    let name = trim_end(line.get(..colon).unwrap_or_default());
    if name.is_empty() || !name.iter().all(|&c| is_token_char(c)) {
        return Err(ParseError::new(K::BadHeader, "bad header name"));
    }
    Ok((name.len(), colon))
}

fn finish(
    buf: &[u8],
    name: Span,
    vstart: usize,
    vend: usize,
    lstart: usize,
    lend: usize,
) -> HeaderIdx {
    let (mut s, mut e) = (vstart, vend.max(vstart));
    while s < e && buf.get(s).is_some_and(|c| is_lws(*c)) {
        s += 1;
    }
    while e > s && buf.get(e - 1).is_some_and(|c| is_lws(*c)) {
        e -= 1;
    }
    let kind = HeaderKind::from_bytes(buf.get(name.range()).unwrap_or_default());
    HeaderIdx {
        name,
        value: Span::new(s, e),
        line: Span::new(lstart, lend),
        kind,
    }
}

fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parse a Content-Length value and merge it with an earlier one (equal repeats are tolerated,
/// different ones are a framing error).
fn merge_content_length(seen: &mut Option<u32>, buf: &[u8], value: Span) -> Result<(), ParseError> {
    let v = buf.get(value.range()).unwrap_or_default();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::new(
            K::ContentLength,
            "Content-Length is not a number",
        ));
    }
    let n = v
        .iter()
        .try_fold(0u32, |n, &d| {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
        .ok_or(ParseError::new(
            K::ContentLength,
            "Content-Length too large",
        ))?;
    match *seen {
        Some(old) if old != n => Err(ParseError::new(
            K::ContentLength,
            "conflicting Content-Length values",
        )),
        _ => {
            *seen = Some(n);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every LF and the first high byte, by the plain definition.
    fn plain(buf: &[u8], from: usize) -> (Vec<usize>, usize) {
        let lfs = (from..buf.len()).filter(|&i| buf[i] == b'\n').collect();
        let high = (from..buf.len())
            .find(|&i| buf[i] >= 0x80)
            .unwrap_or(usize::MAX);
        (lfs, high)
    }

    #[test]
    fn the_lossy_view_replaces_each_invalid_octet_in_place() {
        let head = b"SIP/2.0 486 Occup\xe9\r\nX: a\xe9b \xc3\xa9 \xe2\x82 \xff\xfe \xf0\x9f\x98\x80\r\n\r\nbody\xff";
        let (idx, view) = index(head).expect("parses");
        let view = view.expect("not UTF-8");
        // Same length as the head, body excluded; every invalid octet is one SUB; valid
        // UTF-8 (é, the emoji) and ASCII stay.
        assert_eq!(view.len(), idx.body.start as usize);
        assert_eq!(
            std::str::from_utf8(&view).expect("the view is UTF-8"),
            "SIP/2.0 486 Occup\u{1a}\r\nX: a\u{1a}b \u{e9} \u{1a}\u{1a} \u{1a}\u{1a} \u{1f600}\r\n\r\n"
        );
        // A UTF-8 head has no view.
        assert!(index(b"OPTIONS sip:a@b SIP/2.0\r\nX: \xc3\xa9\r\n\r\n")
            .expect("parses")
            .1
            .is_none());
        // Not in a request line.
        let e = lossy_view(b"OPTIONS sip:a@b SIP/2.0\xe9\r\n\r\n", 28, 26, false);
        assert_eq!(e.map_err(|e| e.kind()), Err(K::NotUtf8));
    }

    #[test]
    fn lines_find_every_lf_and_the_first_high_byte() {
        // Lengths around the 64-byte blocks, LFs and high bytes at every position class.
        for len in [
            0usize, 1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200, 300,
        ] {
            for seed in 0..8usize {
                let mut b: Vec<u8> = (0..len)
                    .map(|i| match (i * 7 + seed * 13) % 11 {
                        0 => b'\n',
                        1 => b'\r',
                        _ => b'a' + (i % 26) as u8,
                    })
                    .collect();
                if seed % 3 == 1 && len > 0 {
                    let at = (seed * 37) % len;
                    b[at] = 0x80 | (seed as u8);
                }
                for from in [0usize, 1, 3, 64, 70].into_iter().filter(|&f| f <= len) {
                    let (want, high) = plain(&b, from);
                    let mut l = Lines::new(&b, from);
                    let mut got = Vec::new();
                    let mut pos = from;
                    while let Some(lf) = l.next_lf(pos) {
                        got.push(lf);
                        pos = lf + 1;
                    }
                    assert_eq!(got, want, "len {len} seed {seed} from {from}");
                    assert_eq!(l.first_high(), high, "len {len} seed {seed} from {from}");
                }
            }
        }
    }

    #[test]
    fn non_utf8_header_byte_marked_or_refused_wherever_it_is() {
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nl: 4\r\n\r\n";
        let head_end = msg.len();
        for at in 24..head_end - 4 {
            if msg[at] == b'\r' || msg[at] == b'\n' {
                continue;
            }
            let mut b = msg.to_vec();
            b[at] = 0xff;
            b.extend_from_slice(b"\xff\xfe\xfd\xfc");
            // Wherever the scan meets it: either a lossy view is made or the head is refused
            // (a header name that is not a token); never taken as UTF-8.
            if let Ok((_, view)) = index(&b) {
                assert!(view.is_some(), "high byte at {at} not marked");
            }
        }
        // A high byte in the body only is fine.
        let mut b = msg.to_vec();
        b.extend_from_slice(b"\xff\xfe\xfd\xfc");
        assert!(index(&b).is_ok_and(|(_, view)| view.is_none()));
    }
}
