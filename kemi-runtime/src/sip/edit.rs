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

    /// Headers with edits, blank line, body.
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
        for h in self.headers() {
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
                    // Keep the values after the first one, if any, under the name as written.
                    if let Some(comma) = find_outside_quotes(h.value, b',') {
                        let rest = h.value.get(comma + 1..).unwrap_or_default().trim_start();
                        out.extend_from_slice(self.wire(h.name));
                        out.extend_from_slice(b": ");
                        out.extend_from_slice(self.wire(rest));
                        out.extend_from_slice(b"\r\n");
                    }
                } else {
                    out.extend_from_slice(self.wire(h.line));
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
        out.extend_from_slice(self.raw(self.index().blank()));
        out.extend_from_slice(self.body());
    }
}
