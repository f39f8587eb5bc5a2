//! Answering a request that did not parse. The message model refuses it as a whole, so the
//! reply is built from a lenient line scan: the Via, From, To, Call-ID and CSeq lines are
//! copied as written (continuation lines included). When one of them is missing no reply can
//! be built, and the message is dropped (RFC 3261 8.1.1 headers are what a client matches a
//! reply with).

/// The headers a reply needs, by long and compact name.
const NEEDED: [(&str, &str); 5] = [
    ("via", "v"),
    ("from", "f"),
    ("to", "t"),
    ("call-id", "i"),
    ("cseq", ""),
];

/// Write a `code reason` reply to the raw request `raw` into `out`; false (and `out`
/// untouched) when `raw` is not a request or lacks a needed header.
pub fn build_reply(raw: &[u8], code: u16, reason: &str, out: &mut Vec<u8>) -> bool {
    build_reply_with(raw, code, reason, "", out)
}

/// [`build_reply`] with `extra` (whole header lines, each ending in CRLF) before the
/// Content-Length.
pub fn build_reply_with(
    raw: &[u8],
    code: u16,
    reason: &str,
    extra: &str,
    out: &mut Vec<u8>,
) -> bool {
    let mut lines = raw
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .skip_while(|l| l.is_empty());
    let Some(start) = lines.next() else {
        return false;
    };
    if start.starts_with(b"SIP/") || !start.contains(&b' ') {
        return false;
    }
    let mut found = [false; NEEDED.len()];
    let mut copied: Vec<&[u8]> = Vec::with_capacity(8);
    let mut copying = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
            if copying {
                copied.push(line);
            }
            continue;
        }
        copying = false;
        let Some(colon) = line.iter().position(|c| *c == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii();
        if let Some(i) = NEEDED.iter().position(|(long, short)| {
            name.eq_ignore_ascii_case(long.as_bytes())
                || (!short.is_empty() && name.eq_ignore_ascii_case(short.as_bytes()))
        }) {
            if let Some(f) = found.get_mut(i) {
                *f = true;
            }
            copying = true;
            copied.push(line);
        }
    }
    if !found.iter().all(|f| *f) {
        return false;
    }
    out.extend_from_slice(format!("SIP/2.0 {code} {reason}\r\n").as_bytes());
    // Continuation lines follow their header's CRLF: folding is kept as written.
    for line in copied {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(extra.as_bytes());
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_the_needed_headers() {
        let raw = b"OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:x@y>;tag=1\r\n\
                    To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1\r\n OPTIONS\r\nX: y\r\n\r\n";
        let mut out = Vec::new();
        assert!(build_reply(raw, 505, "Version Not Supported", &mut out));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SIP/2.0 505 Version Not Supported\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:x@y>;tag=1\r\n\
             To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1\r\n OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn refuses_replies_and_incomplete_requests() {
        let mut out = Vec::new();
        assert!(!build_reply(
            b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n",
            400,
            "Bad",
            &mut out
        ));
        assert!(!build_reply(
            b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\nTo: y\r\n\r\n",
            400,
            "Bad",
            &mut out
        ));
        assert!(!build_reply(b"", 400, "Bad", &mut out));
        assert!(out.is_empty());
    }
}
