//! Parsing what a REGISTER says about its bindings: the Contact values (or `*`), their
//! `expires`/`q`/`+sip.instance`/`reg-id`/`methods`/`received` parameters, the Expires header,
//! and the registrar's error codes (Kamailio's `rerrno` with its reply code and
//! `P-Registrar-Error` text).

use kemi_runtime::sip::{HeaderKind, Message, Uri};

/// Why a registrar operation failed: Kamailio's `rerrno`, with the reply it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegError {
    /// A location-table operation failed (`R_UL_*`).
    #[error("usrloc operation failed")]
    Usrloc,
    /// CSeq missing a number, or lower than the stored one for this Call-ID (`R_INV_CSEQ`).
    #[error("Invalid CSeq number")]
    InvalidCseq,
    /// The To URI has no user part (`R_TO_USER`).
    #[error("No username in To URI")]
    ToUser,
    /// The AoR could not be parsed (`R_AOR_PARSE`).
    #[error("Error while parsing AOR")]
    AorParse,
    /// A Contact `expires` parameter that is not a number (`R_INV_EXP`).
    #[error("Invalid expires param in contact")]
    InvalidExpiresParam,
    /// A bad `q` parameter (`R_INV_Q`).
    #[error("Invalid q param in contact")]
    InvalidQ,
    /// The message could not be parsed (`R_PARSE`).
    #[error("Message parse error")]
    Parse,
    /// No To header (`R_TO_MISS`).
    #[error("To header not found")]
    ToMissing,
    /// No Call-ID header (`R_CID_MISS`).
    #[error("Call-ID header not found")]
    CallIdMissing,
    /// No CSeq header (`R_CS_MISS`).
    #[error("CSeq header not found")]
    CseqMissing,
    /// The Expires header is not a number (`R_PARSE_EXP`).
    #[error("Expires parse error")]
    ExpiresParse,
    /// A Contact that does not parse (`R_PARSE_CONT`).
    #[error("Contact parse error")]
    ContactParse,
    /// `*` with a non-zero Expires (`R_STAR_EXP`).
    #[error("* used in contact and expires is not zero")]
    StarExpires,
    /// `*` with other contacts (`R_STAR_CONT`).
    #[error("* used in contact and more than 1 contact")]
    StarContacts,
    /// More contacts than `max_contacts` (`R_TOO_MANY`).
    #[error("Too many registered contacts")]
    TooMany,
    /// The location table holds `max_bindings` contacts (a sipd bound, no Kamailio code).
    #[error("Location table full")]
    TableFull,
    /// A Contact URI or received longer than allowed (`R_CONTACT_LEN`).
    #[error("Contact/received too long")]
    ContactLen,
    /// A Call-ID longer than 255 bytes (`R_CALLID_LEN`).
    #[error("Callid too long")]
    CallIdLen,
    /// A Path header that does not parse (`R_PARSE_PATH`).
    #[error("Path parse error")]
    PathParse,
    /// Path used but the UA does not support it, in strict path mode (`R_PATH_UNSUP`).
    #[error("No support for found Path indicated")]
    PathUnsupported,
    /// A bad `reg-id` (`R_INV_REGID`).
    #[error("Invalid Reg-Id number")]
    InvalidRegId,
    /// An expiry below `min_expires` with `min_expires_mode` 1 (`R_LOW_EXP`).
    #[error("Interval too brief")]
    LowExpires,
    /// The shared store (Redis) is unreachable: the change could not be shared with the
    /// other nodes, so it is refused (503 with Retry-After) rather than kept by this node only.
    #[error("Location store unavailable")]
    StoreDown,
}

impl RegError {
    /// The reply code and reason Kamailio's registrar sends for this error.
    pub fn reply(self) -> (u16, &'static str) {
        match self {
            RegError::Usrloc => (500, "Server Internal Error"),
            RegError::TooMany | RegError::StoreDown | RegError::TableFull => {
                (503, "Service Unavailable")
            }
            RegError::PathUnsupported => (420, "Bad Extension"),
            RegError::LowExpires => (423, "Interval Too Brief"),
            _ => (400, "Bad Request"),
        }
    }
}

/// Longest Call-ID kept (Kamailio's `CALLID_MAX_SIZE`).
pub const CALLID_MAX: usize = 255;
/// Longest `received` value kept (Kamailio's `RECEIVED_MAX_SIZE`).
pub const RECEIVED_MAX: usize = 255;

/// One Contact of a REGISTER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqContact<'a> {
    /// The URI (without `<>`).
    pub uri: &'a str,
    /// The `expires` parameter.
    pub expires: Option<u32>,
    /// The `q` parameter, times 1000.
    pub q: Option<i32>,
    /// `+sip.instance` (as written, quotes removed).
    pub instance: Option<&'a str>,
    /// `reg-id`.
    pub reg_id: Option<i32>,
    /// The `methods` parameter as a method bit mask.
    pub methods: Option<i32>,
    /// The `received` parameter (quotes removed).
    pub received: Option<&'a str>,
}

/// What the Contact headers of a REGISTER say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contacts<'a> {
    /// No Contact: a query for the current bindings.
    None,
    /// `*`: remove every binding (with `Expires: 0`).
    Star,
    /// These bindings.
    List(Vec<ReqContact<'a>>),
}

/// The value of the Expires header: `Ok(None)` when absent.
pub fn expires_header(m: &Message) -> Result<Option<u32>, RegError> {
    match m.first_kind(HeaderKind::Expires) {
        None => Ok(None),
        Some(h) => parse_delta(h.value.trim())
            .map(Some)
            .ok_or(RegError::ExpiresParse),
    }
}

/// A delta-seconds value: digits only; values past 2^32-1 saturate as RFC 3261 §20.19 allows.
pub fn parse_delta(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        s.parse::<u64>()
            .map_or(u32::MAX, |v| v.min(u64::from(u32::MAX)) as u32),
    )
}

/// A q-value (`0`, `0.5`, `1.000`) times 1000, or None when malformed.
pub fn parse_q(s: &str) -> Option<i32> {
    let s = s.trim();
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0i32;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += i32::from(b - b'0') * [100, 10, 1].get(i).copied()?;
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Write a q-value as Kamailio does (`0.5`, `1`, `0.125`).
pub fn q_text(q: i32) -> String {
    let mut s = String::new();
    push_q(&mut s, q);
    s
}

/// Append a q-value as [`q_text`] writes it (nothing for a negative one).
pub fn push_q(out: &mut String, q: i32) {
    match q {
        1000.. => out.push('1'),
        0 => out.push('0'),
        q if q < 0 => {}
        q => {
            out.push_str("0.");
            let digits = [q / 100, q / 10 % 10, q % 10];
            let used = if digits[2] != 0 {
                3
            } else if digits[1] != 0 {
                2
            } else {
                1
            };
            for d in &digits[..used] {
                out.push(char::from(b'0' + *d as u8));
            }
        }
    }
}

/// Kamailio's method bits (`METHOD_INVITE` = 1 ...); unknown methods are `METHOD_OTHER`.
pub fn method_bit(name: &str) -> i32 {
    const NAMES: [&str; 19] = [
        "INVITE",
        "CANCEL",
        "ACK",
        "BYE",
        "INFO",
        "REGISTER",
        "SUBSCRIBE",
        "NOTIFY",
        "MESSAGE",
        "OPTIONS",
        "PRACK",
        "UPDATE",
        "REFER",
        "PUBLISH",
        "KDMQ",
        "GET",
        "POST",
        "PUT",
        "DELETE",
    ];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name.trim()))
        .map_or(1 << 19, |i| 1 << i)
}

/// A comma-separated method list (`INVITE, BYE`) as a bit mask.
pub fn methods_mask(list: &str) -> i32 {
    list.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .fold(0, |acc, m| acc | method_bit(m))
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Parse and check every Contact of `m` (Kamailio's `parse_message` + `check_contacts`):
/// `*` only alone and with `Expires: 0`, every URI parsable and at most `max_size` bytes.
pub fn contacts(m: &Message, max_size: usize) -> Result<Contacts<'_>, RegError> {
    let mut list = Vec::new();
    let mut star = false;
    for c in m.contacts() {
        let c = c.map_err(|_| RegError::ContactParse)?;
        if c.is_star() {
            if star || !list.is_empty() {
                return Err(RegError::StarContacts);
            }
            star = true;
            continue;
        }
        if star {
            return Err(RegError::StarContacts);
        }
        if Uri::parse(c.uri).is_err() {
            return Err(RegError::ContactParse);
        }
        if c.uri.len() > max_size {
            return Err(RegError::ContactLen);
        }
        // One pass over the params; the first of each name counts.
        let (mut expires_p, mut q_p, mut received, mut instance_p, mut reg_id_p, mut methods_p) =
            (None, None, None, None, None, None);
        for p in c.params.iter() {
            let v = p.value.unwrap_or("");
            let slot = match p.name.len() {
                1 if p.name.eq_ignore_ascii_case("q") => &mut q_p,
                6 if p.name.eq_ignore_ascii_case("reg-id") => &mut reg_id_p,
                7 if p.name.eq_ignore_ascii_case("expires") => &mut expires_p,
                7 if p.name.eq_ignore_ascii_case("methods") => &mut methods_p,
                8 if p.name.eq_ignore_ascii_case("received") => &mut received,
                13 if p.name.eq_ignore_ascii_case("+sip.instance") => &mut instance_p,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v);
            }
        }
        let expires = match expires_p {
            None => None,
            Some(v) => Some(parse_delta(unquote(v.trim())).ok_or(RegError::InvalidExpiresParam)?),
        };
        let q = match q_p {
            None => None,
            Some(v) => Some(parse_q(v).ok_or(RegError::InvalidQ)?),
        };
        let received = received.map(unquote);
        if received.is_some_and(|r| r.len() > RECEIVED_MAX) {
            return Err(RegError::ContactLen);
        }
        let instance = instance_p.map(unquote).filter(|s| !s.is_empty());
        let reg_id = match reg_id_p {
            None => None,
            Some(v) => match v.trim().parse::<i32>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(RegError::InvalidRegId),
            },
        };
        let methods = methods_p.map(|v| methods_mask(unquote(v)));
        list.push(ReqContact {
            uri: c.uri,
            expires,
            q,
            instance,
            reg_id,
            methods,
            received,
        });
    }
    if star {
        if expires_header(m)? != Some(0) {
            return Err(RegError::StarExpires);
        }
        return Ok(Contacts::Star);
    }
    Ok(if list.is_empty() {
        Contacts::None
    } else {
        Contacts::List(list)
    })
}

/// The option tags of every `Supported` header (`k` compact form included).
pub fn supports(m: &Message, tag: &str) -> bool {
    m.list(HeaderKind::Supported)
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

/// The first URI of a Path/Route set (`<sip:a;lr>, <sip:b>` gives `sip:a;lr`).
pub fn first_route_uri(path: &str) -> Option<&str> {
    let first = path.split(',').next()?.trim();
    let inner = first.strip_prefix('<')?;
    let end = inner.find('>')?;
    inner.get(..end).map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reg(extra: &str) -> Message {
        let text = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\n\
             CSeq: 1 REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text)).unwrap()
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("0"), Some(0));
        for bad in ["1.1", "2", "0.1234", "x", "", "-1", ".5"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
        assert_eq!(q_text(500), "0.5");
        assert_eq!(q_text(1000), "1");
        assert_eq!(q_text(125), "0.125");
        assert_eq!(q_text(-1), "");
        assert_eq!(q_text(10), "0.01");
        assert_eq!(q_text(1), "0.001");
        assert_eq!(q_text(100), "0.1");
        assert_eq!(q_text(999), "0.999");
    }

    #[test]
    fn deltas_and_methods() {
        assert_eq!(parse_delta("3600"), Some(3600));
        assert_eq!(parse_delta("99999999999"), Some(u32::MAX));
        assert_eq!(parse_delta("1h"), None);
        assert_eq!(parse_delta(""), None);
        assert_eq!(methods_mask("INVITE, bye"), 1 | 8);
        assert_eq!(method_bit("FOO"), 1 << 19);
    }

    #[test]
    fn contact_lists() {
        let m = reg("Contact: <sip:a@127.0.0.1:5070>;expires=60;q=0.7, sip:a@127.0.0.2\r\nContact: <sip:b@127.0.0.3>;+sip.instance=\"<urn:uuid:1>\";reg-id=1;methods=\"INVITE,BYE\"\r\n");
        let Contacts::List(l) = contacts(&m, 512).unwrap() else {
            panic!("not a list")
        };
        assert_eq!(l.len(), 3);
        assert_eq!((l[0].expires, l[0].q), (Some(60), Some(700)));
        assert_eq!(l[1].uri, "sip:a@127.0.0.2");
        assert_eq!(l[2].instance, Some("<urn:uuid:1>"));
        assert_eq!((l[2].reg_id, l[2].methods), (Some(1), Some(9)));
        assert_eq!(contacts(&reg(""), 512).unwrap(), Contacts::None);
        assert_eq!(
            contacts(&reg("Contact: *\r\nExpires: 0\r\n"), 512).unwrap(),
            Contacts::Star
        );
    }

    #[test]
    fn contact_errors() {
        let e = |extra: &str| contacts(&reg(extra), 512).unwrap_err();
        assert_eq!(e("Contact: *\r\n"), RegError::StarExpires);
        assert_eq!(e("Contact: *\r\nExpires: 5\r\n"), RegError::StarExpires);
        assert_eq!(
            e("Contact: *, <sip:a@b>\r\nExpires: 0\r\n"),
            RegError::StarContacts
        );
        assert_eq!(
            e("Contact: <sip:a@b>\r\nContact: *\r\n"),
            RegError::StarContacts
        );
        assert_eq!(e("Contact: <sip:a@b\r\n"), RegError::ContactParse);
        assert_eq!(e("Contact: <notauri>\r\n"), RegError::ContactParse);
        assert_eq!(
            e("Contact: <sip:a@b>;expires=soon\r\n"),
            RegError::InvalidExpiresParam
        );
        assert_eq!(e("Contact: <sip:a@b>;q=2\r\n"), RegError::InvalidQ);
        assert_eq!(e("Contact: <sip:a@b>;reg-id=0\r\n"), RegError::InvalidRegId);
        assert_eq!(
            contacts(&reg("Contact: <sip:aaaa@b>\r\n"), 8).unwrap_err(),
            RegError::ContactLen
        );
        assert_eq!(
            expires_header(&reg("Expires: abc\r\n")),
            Err(RegError::ExpiresParse)
        );
        assert_eq!(expires_header(&reg("Expires: 30\r\n")), Ok(Some(30)));
        assert_eq!(RegError::LowExpires.reply(), (423, "Interval Too Brief"));
    }

    #[test]
    fn routes() {
        assert_eq!(
            first_route_uri("<sip:p1.example.com;lr>, <sip:p2>"),
            Some("sip:p1.example.com;lr")
        );
        assert_eq!(first_route_uri("sip:x"), None);
    }
}
