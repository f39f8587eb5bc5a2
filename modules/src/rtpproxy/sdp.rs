//! The little SDP work the rtpproxy protocol needs: find each media stream's address and port,
//! and write the relay's address and ports back (`c=` lines, `m=` ports, `a=rtcp:` ports).
//! Lines are kept as they are otherwise, with their line ends.

/// One `m=` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    /// Index of the `m=` line among the body's lines.
    pub mline: usize,
    /// Its port (0: disabled).
    pub port: u16,
    /// The connection address in effect (the media `c=`, else the session `c=`).
    pub addr: String,
    /// Whether that address is IPv6 (`IN IP6`).
    pub ipv6: bool,
}

/// Why an SDP body cannot be relayed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not UTF-8 text.
    #[error("SDP is not text")]
    NotText,
    /// No `m=` line with a port.
    #[error("SDP has no media stream")]
    NoMedia,
    /// A stream without a connection address.
    #[error("SDP stream {0} has no c= line")]
    NoConnection(usize),
    /// A malformed `m=` or `c=` line.
    #[error("malformed SDP line `{0}`")]
    Malformed(String),
}

/// The lines of `body`, each with its line end.
fn lines(body: &str) -> Vec<&str> {
    body.split_inclusive('\n').collect()
}

fn parse_c(line: &str) -> Result<(String, bool), SdpError> {
    let v = line.trim_end().strip_prefix("c=").unwrap_or_default();
    let mut it = v.split_whitespace();
    match (it.next(), it.next(), it.next()) {
        (Some("IN"), Some(t @ ("IP4" | "IP6")), Some(a)) => {
            // Multicast TTL/count suffixes are dropped.
            let a = a.split('/').next().unwrap_or(a);
            Ok((a.to_string(), t == "IP6"))
        }
        _ => Err(SdpError::Malformed(line.trim_end().to_string())),
    }
}

/// The media streams of `body`.
pub fn streams(body: &[u8]) -> Result<Vec<Stream>, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let ls = lines(text);
    let mut session: Option<(String, bool)> = None;
    let mut out: Vec<Stream> = Vec::new();
    let mut media_c: Vec<Option<(String, bool)>> = Vec::new();
    for (i, l) in ls.iter().enumerate() {
        if l.starts_with("m=") {
            let port = l
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| SdpError::Malformed(l.trim_end().to_string()))?;
            out.push(Stream {
                mline: i,
                port,
                addr: String::new(),
                ipv6: false,
            });
            media_c.push(None);
        } else if l.starts_with("c=") {
            let c = parse_c(l)?;
            match media_c.last_mut() {
                Some(slot) => *slot = Some(c),
                None => session = Some(c),
            }
        }
    }
    if out.is_empty() {
        return Err(SdpError::NoMedia);
    }
    for (n, (s, c)) in out.iter_mut().zip(media_c).enumerate() {
        let (addr, v6) = c
            .or_else(|| session.clone())
            .ok_or(SdpError::NoConnection(n + 1))?;
        s.addr = addr;
        s.ipv6 = v6;
    }
    Ok(out)
}

/// `body` with stream `i` (in `streams` order) moved to `relayed[i]` (address, port); a
/// `None` leaves that stream as it is. The session `c=` gets the first relayed address, and so
/// does the `o=` line when `origin` (Kamailio's `o` flag).
pub fn rewrite(
    body: &[u8],
    relayed: &[Option<(String, u16)>],
    origin: bool,
) -> Result<Vec<u8>, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let ls = lines(text);
    let first = relayed.iter().flatten().next().cloned();
    let mut out = String::with_capacity(text.len() + 32);
    // -1: session level; else the index of the current stream.
    let mut stream: Option<usize> = None;
    for l in ls {
        let end = &l[l.trim_end_matches(['\r', '\n']).len()..];
        let content = l.trim_end_matches(['\r', '\n']);
        if content.starts_with("m=") {
            stream = Some(stream.map_or(0, |s| s + 1));
        }
        let target = match stream {
            None => first.as_ref(),
            Some(s) => relayed.get(s).and_then(Option::as_ref),
        };
        let Some((addr, port)) = target else {
            out.push_str(l);
            continue;
        };
        let family = if addr.contains(':') { "IP6" } else { "IP4" };
        if content.starts_with("c=") {
            out.push_str(&format!("c=IN {family} {addr}{end}"));
        } else if origin && stream.is_none() && content.starts_with("o=") {
            // o=<user> <id> <version> IN <type> <addr>: the last two fields.
            let parts: Vec<&str> = content.split(' ').collect();
            if parts.len() == 6 {
                out.push_str(&format!("{} IN {family} {addr}{end}", parts[..3].join(" ")));
            } else {
                out.push_str(l);
            }
        } else if content.starts_with("m=") && stream.is_some() {
            let mut parts: Vec<&str> = content.split(' ').collect();
            let new_port = port.to_string();
            if let Some(p) = parts.get_mut(1) {
                *p = &new_port;
            }
            out.push_str(&parts.join(" "));
            out.push_str(end);
        } else if let Some(rest) = content.strip_prefix("a=rtcp:").filter(|_| stream.is_some()) {
            // `a=rtcp:<port> [IN IP4 <addr>]`: the relay's RTCP port is its RTP port + 1.
            let rtcp = port.saturating_add(1);
            if rest.split_whitespace().count() > 1 {
                out.push_str(&format!("a=rtcp:{rtcp} IN {family} {addr}{end}"));
            } else {
                out.push_str(&format!("a=rtcp:{rtcp}{end}"));
            }
        } else {
            out.push_str(l);
        }
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\na=rtcp:4001\r\nm=video 0 RTP/AVP 96\r\nm=audio 5000 RTP/AVP 8\r\nc=IN IP4 10.0.0.2\r\n";

    #[test]
    fn streams_and_rewrite() {
        let s = streams(SDP.as_bytes()).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].port, s[0].addr.as_str()), (4000, "10.0.0.1"));
        assert_eq!(s[1].port, 0);
        assert_eq!((s[2].port, s[2].addr.as_str()), (5000, "10.0.0.2"));
        let out = rewrite(
            SDP.as_bytes(),
            &[
                Some(("127.0.0.1".into(), 30000)),
                None,
                Some(("127.0.0.1".into(), 30002)),
            ],
            false,
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0\r\na=rtcp:30001\r\nm=video 0 RTP/AVP 96\r\nm=audio 30002 RTP/AVP 8\r\nc=IN IP4 127.0.0.1\r\n"
        );
        let o = rewrite(SDP.as_bytes(), &[Some(("127.0.0.2".into(), 30000))], true).unwrap();
        assert!(String::from_utf8(o)
            .unwrap()
            .starts_with("v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\n"));
    }

    #[test]
    fn bad_sdp_is_an_error() {
        assert_eq!(streams(b"v=0\r\n"), Err(SdpError::NoMedia));
        assert!(streams(b"m=audio x RTP/AVP 0\r\n").is_err());
        assert_eq!(
            streams(b"v=0\r\nm=audio 4 RTP/AVP 0\r\n"),
            Err(SdpError::NoConnection(1))
        );
        assert!(streams(b"c=IN XX 1\r\nm=audio 4 RTP/AVP 0\r\n").is_err());
        assert_eq!(streams(&[0xff, 0xfe]), Err(SdpError::NotText));
    }
}
