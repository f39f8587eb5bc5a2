//! Header edits recorded by scripts ([`HeaderEdit`], Kamailio's lumps) and the serializers that
//! apply them at send time: [`Message::write_request`] and [`Message::write_response`]. Every
//! byte not touched by an edit is copied verbatim from the received buffer (the received
//! octets, not the lossy view of a non-UTF-8 head: [`Message::wire`]). Edit lines are text
//! (`String`): a line a script or sipd builds from a lossy view carries its substitutes.

use super::message::Message;
use super::params::find_outside_quotes;
use super::HeaderKind;

/// A header edit recorded by the script, applied when the message is serialized.
///
/// A "line" is a full header line (`"X-Foo: bar\r\n"`); a missing CRLF is added.
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

/// Append `line` to `out`, adding CRLF when it does not end with a line break.
pub(crate) fn push_line(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(line.as_bytes());
    if !line.ends_with('\n') {
        out.extend_from_slice(b"\r\n");
    }
}

impl Message {
    /// Serialize a request for forwarding: the request line (with `new_ruri` when given, single
    /// spaces, no trailing whitespace), then `top_via` (a full `Via:` line) when given, then the
    /// headers with `edits` applied in recorded order, then the blank line and the body.
    /// Content-Length is not recomputed: edits do not touch the body. Extra datagram bytes
    /// past Content-Length are not copied.
    ///
    /// ```
    /// use kemi_runtime::sip::{HeaderEdit, Message};
    /// let m = Message::parse("BYE sip:a@b SIP/2.0\r\nMax-Forwards: 70\r\nl: 0\r\n\r\n".into()).unwrap();
    /// let mut out = Vec::new();
    /// let edits = [HeaderEdit::Remove(0), HeaderEdit::InsertBefore(0, "Max-Forwards: 69".into())];
    /// m.write_request(&mut out, Some("sip:a@c"), &edits, Some("Via: SIP/2.0/UDP p;branch=z9hG4bK1\r\n"));
    /// assert_eq!(out, b"BYE sip:a@c SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\nMax-Forwards: 69\r\nl: 0\r\n\r\n");
    /// ```
    pub fn write_request(
        &self,
        out: &mut Vec<u8>,
        new_ruri: Option<&str>,
        edits: &[HeaderEdit],
        top_via: Option<&str>,
    ) {
        match (self.method_str(), self.ruri()) {
            (Some(method), Some(ruri)) => {
                out.reserve(self.as_bytes().len() + 128);
                out.extend_from_slice(self.wire(method));
                out.push(b' ');
                out.extend_from_slice(self.wire(new_ruri.unwrap_or(ruri)));
                out.push(b' ');
                out.extend_from_slice(self.wire(self.version()));
                out.extend_from_slice(b"\r\n");
            }
            _ => out.extend_from_slice(self.raw(self.index().start_line)),
        }
        if let Some(via) = top_via {
            push_line(out, via);
        }
        self.write_rest(out, edits, false);
    }

    /// Serialize a response for forwarding: the status line verbatim, the headers with `edits`
    /// applied (and the topmost Via value removed when `drop_top_via`: the whole header when it
    /// holds one value, else just its first value), then the blank line and the body.
    ///
    /// ```
    /// use kemi_runtime::sip::Message;
    /// let m = Message::parse("SIP/2.0 200 OK\r\nv: SIP/2.0/UDP p, SIP/2.0/UDP a\r\nl: 0\r\n\r\n".into()).unwrap();
    /// let mut out = Vec::new();
    /// m.write_response(&mut out, &[], true);
    /// assert_eq!(out, b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a\r\nl: 0\r\n\r\n");
    /// ```
    pub fn write_response(&self, out: &mut Vec<u8>, edits: &[HeaderEdit], drop_top_via: bool) {
        out.reserve(self.as_bytes().len());
        out.extend_from_slice(self.raw(self.index().start_line));
        self.write_rest(out, edits, drop_top_via);
    }

    /// This message with its body replaced by `body` and Content-Length set to its length: the
    /// start line and every header as received, in place (a Content-Length header keeps its
    /// name as written; one is appended after the last header when there is none), so the
    /// header indices of recorded edits still hold. `None` when the result does not parse
    /// (a body over the size limit).
    ///
    /// ```
    /// use kemi_runtime::sip::Message;
    /// let m = Message::parse("SIP/2.0 200 OK\r\nl: 3\r\nX: y\r\n\r\nabc".into()).unwrap();
    /// let n = m.with_body(b"hello").unwrap();
    /// assert_eq!(n.as_bytes(), b"SIP/2.0 200 OK\r\nl: 5\r\nX: y\r\n\r\nhello");
    /// ```
    pub fn with_body(&self, body: &[u8]) -> Option<Message> {
        let idx = self.index();
        let bytes = self.as_bytes();
        let blank = idx.blank();
        let mut out = Vec::with_capacity(blank.end as usize + body.len() + 24);
        let len = body.len().to_string();
        let cl = idx
            .headers
            .iter()
            .find(|h| h.kind == HeaderKind::ContentLength);
        match cl {
            Some(h) => {
                out.extend_from_slice(bytes.get(..h.line.start as usize)?);
                out.extend_from_slice(self.raw(h.name));
                out.extend_from_slice(b": ");
                out.extend_from_slice(len.as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(bytes.get(h.line.end as usize..blank.start as usize)?);
            }
            None => {
                out.extend_from_slice(bytes.get(..blank.start as usize)?);
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(len.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        match self.raw(blank) {
            [] => out.extend_from_slice(b"\r\n"),
            b => out.extend_from_slice(b),
        }
        out.extend_from_slice(body);
        Message::parse(out.into()).ok()
    }

    /// Headers with edits, blank line, body. Header lines no edit touches lie next to each
    /// other in the buffer, up to the blank line and the body: each run of them is copied with
    /// one `extend_from_slice` (one copy for a message without edits).
    fn write_rest(&self, out: &mut Vec<u8>, edits: &[HeaderEdit], drop_top_via: bool) {
        for e in edits {
            if let HeaderEdit::Prepend(line) = e {
                push_line(out, line);
            }
        }
        let top_via = if drop_top_via {
            self.first_kind(HeaderKind::Via).map(|h| h.index)
        } else {
            None
        };
        let idx = self.index();
        // Start of the run of untouched lines not yet copied.
        let mut run: Option<usize> = None;
        for (i, h) in idx.headers.iter().enumerate() {
            let touched = top_via == Some(i)
                || edits.iter().any(|e| {
                    matches!(e, HeaderEdit::InsertBefore(j, _) | HeaderEdit::Remove(j)
                        | HeaderEdit::AppendAfter(j, _) if *j == i)
                });
            if !touched {
                run.get_or_insert(h.line.start as usize);
                continue;
            }
            if let Some(start) = run.take() {
                out.extend_from_slice(
                    self.as_bytes()
                        .get(start..h.line.start as usize)
                        .unwrap_or_default(),
                );
            }
            for e in edits {
                if let HeaderEdit::InsertBefore(j, line) = e {
                    if *j == i {
                        push_line(out, line);
                    }
                }
            }
            let removed = edits
                .iter()
                .any(|e| matches!(e, HeaderEdit::Remove(j) if *j == i));
            if !removed {
                if top_via == Some(i) {
                    // Keep the values after the first one, if any, under the name as written.
                    let value = self.span_text(h.value);
                    if let Some(comma) = find_outside_quotes(value, b',') {
                        let rest = value.get(comma + 1..).unwrap_or_default().trim_start();
                        out.extend_from_slice(self.raw(h.name));
                        out.extend_from_slice(b": ");
                        out.extend_from_slice(self.wire(rest));
                        out.extend_from_slice(b"\r\n");
                    }
                } else {
                    out.extend_from_slice(self.raw(h.line));
                }
            }
            for e in edits {
                if let HeaderEdit::AppendAfter(j, line) = e {
                    if *j == i {
                        push_line(out, line);
                    }
                }
            }
        }
        let appends = edits.iter().any(|e| matches!(e, HeaderEdit::Append(_)));
        match run {
            // The untouched tail, the blank line and the body are one slice when nothing is
            // appended after the last header.
            Some(start) if !appends => {
                out.extend_from_slice(
                    self.as_bytes()
                        .get(start..idx.body.end as usize)
                        .unwrap_or_default(),
                );
                return;
            }
            Some(start) => out.extend_from_slice(
                self.as_bytes()
                    .get(start..idx.blank().start as usize)
                    .unwrap_or_default(),
            ),
            None => {}
        }
        for e in edits {
            if let HeaderEdit::Append(line) = e {
                push_line(out, line);
            }
        }
        out.extend_from_slice(self.raw(idx.blank()));
        out.extend_from_slice(self.body());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_body_keeps_headers_and_sets_content_length() {
        let m = Message::parse(
            "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n".into(),
        )
        .unwrap();
        let n = m.with_body(b"v=0\r\no=x\r\n").unwrap();
        assert_eq!(
            n.as_bytes(),
            b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\no=x\r\n"
        );
        assert_eq!(n.headers().count(), 3);
        assert_eq!(n.content_length(), Some(10));
        let e = n.with_body(b"").unwrap();
        assert_eq!(e.content_length(), Some(0));
        assert!(e.body().is_empty());
        assert_eq!(e.headers().count(), 3);
    }

    /// The serializer as it was before runs were copied whole: one header at a time.
    fn write_rest_plain(m: &Message, out: &mut Vec<u8>, edits: &[HeaderEdit], drop_top_via: bool) {
        for e in edits {
            if let HeaderEdit::Prepend(line) = e {
                push_line(out, line);
            }
        }
        let top_via = if drop_top_via {
            m.first_kind(HeaderKind::Via).map(|h| h.index)
        } else {
            None
        };
        for h in m.headers() {
            for e in edits {
                if let HeaderEdit::InsertBefore(i, line) = e {
                    if *i == h.index {
                        push_line(out, line);
                    }
                }
            }
            let removed = edits
                .iter()
                .any(|e| matches!(e, HeaderEdit::Remove(i) if *i == h.index));
            if !removed {
                if top_via == Some(h.index) {
                    if let Some(comma) = find_outside_quotes(h.value, b',') {
                        let rest = h.value.get(comma + 1..).unwrap_or_default().trim_start();
                        out.extend_from_slice(m.wire(h.name));
                        out.extend_from_slice(b": ");
                        out.extend_from_slice(m.wire(rest));
                        out.extend_from_slice(b"\r\n");
                    }
                } else {
                    out.extend_from_slice(m.wire(h.line));
                }
            }
            for e in edits {
                if let HeaderEdit::AppendAfter(i, line) = e {
                    if *i == h.index {
                        push_line(out, line);
                    }
                }
            }
        }
        for e in edits {
            if let HeaderEdit::Append(line) = e {
                push_line(out, line);
            }
        }
        out.extend_from_slice(m.raw(m.index().blank()));
        out.extend_from_slice(m.body());
    }

    #[test]
    fn runs_copied_whole_give_the_same_bytes() {
        let msgs = [
            "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP p;branch=z9hG4bK1, SIP/2.0/UDP a\r\nVia: SIP/2.0/UDP b\r\nSubject: a\r\n  folded\r\nl: 4\r\n\r\nbodyEXTRA",
            "INVITE sip:a@b SIP/2.0\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\nMax-Forwards: 70\nFrom: <sip:x@y>;tag=1\nTo: <sip:a@b>\nCall-ID: c\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
            "\r\nSIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\nTo: t\r\n\r\n",
        ];
        let kinds = |n: usize, k: usize| -> Vec<HeaderEdit> {
            // Every combination of up to two edits at every index, from a small alphabet.
            let mut v = Vec::new();
            for (pick, at) in [(k % 6, k % n.max(1)), ((k / 6) % 6, (k / 36) % n.max(1))] {
                v.push(match pick {
                    0 => HeaderEdit::Remove(at),
                    1 => HeaderEdit::InsertBefore(at, "X-Before: 1".into()),
                    2 => HeaderEdit::AppendAfter(at, "X-After: 2\r\n".into()),
                    3 => HeaderEdit::Prepend("X-First: 3".into()),
                    4 => HeaderEdit::Append("X-Last: 4".into()),
                    _ => continue,
                });
            }
            v
        };
        for text in msgs {
            let m = Message::parse(text.as_bytes().to_vec().into()).unwrap();
            let n = m.header_count();
            for k in 0..(36 * n.max(1)) {
                let edits = kinds(n, k);
                for drop in [false, true] {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    m.write_rest(&mut a, &edits, drop);
                    write_rest_plain(&m, &mut b, &edits, drop);
                    assert_eq!(
                        String::from_utf8_lossy(&a),
                        String::from_utf8_lossy(&b),
                        "{text:?} {edits:?} {drop}"
                    );
                }
            }
        }
    }
}
