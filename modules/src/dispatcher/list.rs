//! Kamailio's dispatcher list file: one destination a line,
//! `setid destination [flags [priority [attrs]]]`, `#` starts a comment, blank lines are
//! skipped. `attrs` is Kamailio's `name=value;name=value` string (`duid`, `weight`, `maxload`,
//! `ping_from` are read; the whole string is kept as the body).

use kemi_runtime::msg::Proto;
use kemi_runtime::sip::Uri;

/// A destination's state bit: inactive (`I`).
pub const INACTIVE: u32 = 1;
/// Trying (`T`): probes failed, below `ds_probing_threshold`.
pub const TRYING: u32 = 2;
/// Disabled by the operator (`D`).
pub const DISABLED: u32 = 4;
/// Probing (`P`): the prober sends it keepalives.
pub const PROBING: u32 = 8;
/// Flag 16: do not resolve the host (kept, sipd resolves IP literals only at load anyway).
pub const NODNSARES: u32 = 16;
/// Flag 32: never probe.
pub const NOPING: u32 = 32;
/// The bits that make the state.
pub const STATES: u32 = INACTIVE | TRYING | DISABLED | PROBING;

/// The attributes Kamailio reads from the `attrs` column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    /// The string as written.
    pub body: String,
    /// `duid`: the destination's unique id (call-load algorithm).
    pub duid: String,
    /// `weight` (algorithm 9), 0..=100.
    pub weight: u32,
    /// `maxload`: most concurrent calls (algorithm 10), 0 = no limit.
    pub maxload: u32,
    /// `ping_from`: the From URI of this destination's probes.
    pub ping_from: String,
}

impl Attrs {
    /// Parse `name=value;...`; unknown names are kept in the body only. A bad number is an
    /// error naming it.
    pub fn parse(body: &str) -> Result<Attrs, String> {
        let mut a = Attrs {
            body: body.to_string(),
            ..Attrs::default()
        };
        for item in body.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item.split_once('=').unwrap_or((item, ""));
            let value = value.trim();
            let num = |what: &str| {
                value
                    .parse::<u32>()
                    .map_err(|_| format!("attribute {what}: `{value}` is not a number"))
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "duid" => a.duid = value.to_string(),
                "weight" => a.weight = num("weight")?.min(100),
                "maxload" => a.maxload = num("maxload")?,
                "ping_from" => a.ping_from = value.to_string(),
                _ => {}
            }
        }
        Ok(a)
    }
}

/// One line of the list: a destination of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The set id.
    pub set: i32,
    /// The destination SIP URI as written.
    pub uri: String,
    /// The flags column (state and probing bits).
    pub flags: u32,
    /// The priority column (higher first).
    pub priority: i32,
    /// The attributes column.
    pub attrs: Attrs,
    /// Host of the URI (IPv6 without brackets).
    pub host: String,
    /// Port of the URI (5060, 5061 for `sips`, when absent).
    pub port: u16,
    /// Transport: the `transport` parameter, TLS for `sips`, else UDP.
    pub proto: Proto,
    /// The `transport` parameter as written (`None` without one): what Kamailio's source
    /// matching compares (a destination without it matches no transport unless the match
    /// ignores transports).
    pub transport: Option<Proto>,
}

/// A line that is not a destination.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ListError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Host, port and transport of a SIP destination URI; `None` when it is not a `sip`/`sips`
/// URI with a host.
pub fn uri_target(uri: &str) -> Option<(String, u16, Proto)> {
    let u = Uri::parse(uri).ok()?;
    let scheme = u.scheme.to_ascii_lowercase();
    let secure = match scheme.as_str() {
        "sip" => false,
        "sips" => true,
        _ => return None,
    };
    let proto = match u.param("transport") {
        Some(t) => Proto::parse(t)?,
        None if secure => Proto::Tls,
        None => Proto::Udp,
    };
    let default_port = if secure || proto == Proto::Tls {
        5061
    } else {
        5060
    };
    let host = u.host_unbracketed();
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), u.port.unwrap_or(default_port), proto))
}

impl Entry {
    /// An entry from its columns (a list line or a `dispatcher` table row).
    pub fn new(
        set: i32,
        uri: &str,
        flags: u32,
        priority: i32,
        attrs: &str,
    ) -> Result<Entry, String> {
        let (host, port, proto) =
            uri_target(uri).ok_or_else(|| format!("`{uri}` is not a sip/sips URI with a host"))?;
        Ok(Entry {
            set,
            uri: uri.to_string(),
            flags,
            priority,
            attrs: Attrs::parse(attrs)?,
            host,
            port,
            proto,
            transport: transport_param(uri),
        })
    }
}

/// The `transport` parameter of `uri`, if it has a known one.
pub fn transport_param(uri: &str) -> Option<Proto> {
    Uri::parse(uri)
        .ok()?
        .param("transport")
        .and_then(Proto::parse)
}

/// Parse one line (`None` for a blank or comment line).
pub fn parse_line(text: &str, line: usize) -> Result<Option<Entry>, ListError> {
    let err = |message: String| ListError { line, message };
    let text = text.split('#').next().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    let mut cols = text.splitn(5, |c: char| c.is_ascii_whitespace());
    let mut next = || cols.next().map(str::trim).filter(|s| !s.is_empty());
    let set = next().unwrap_or("");
    let set: i32 = set
        .parse()
        .map_err(|_| err(format!("set id `{set}` is not an integer")))?;
    let uri = next().ok_or_else(|| err("no destination".into()))?;
    let flags = match next() {
        Some(f) => f
            .parse::<u32>()
            .map_err(|_| err(format!("flags `{f}` is not an integer")))?,
        None => 0,
    };
    let priority = match next() {
        Some(p) => p
            .parse::<i32>()
            .map_err(|_| err(format!("priority `{p}` is not an integer")))?,
        None => 0,
    };
    let attrs = next().unwrap_or("");
    Entry::new(set, uri, flags, priority, attrs)
        .map(Some)
        .map_err(err)
}

/// Parse a whole list file: every error at once (the first one is returned with the count).
pub fn parse(text: &str) -> Result<Vec<Entry>, ListError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(e) = parse_line(line, i + 1)? {
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kamailio_lines() {
        let text = "# a comment\n\
                    \n\
                    1 sip:127.0.0.1:5080\n\
                    1 sip:127.0.0.1:5081 8 5 duid=b;weight=30;maxload=10 # trailing\n\
                    2 sip:[::1]:5090;transport=tcp 0 0\n\
                    3 sips:gw.example\n";
        let list = parse(text).unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[0].set, 1);
        assert_eq!(list[0].uri, "sip:127.0.0.1:5080");
        assert_eq!((list[0].flags, list[0].priority), (0, 0));
        assert_eq!(list[1].flags, 8);
        assert_eq!(list[1].priority, 5);
        assert_eq!(list[1].attrs.duid, "b");
        assert_eq!(list[1].attrs.weight, 30);
        assert_eq!(list[1].attrs.maxload, 10);
        assert_eq!(list[1].attrs.body, "duid=b;weight=30;maxload=10");
        assert_eq!(list[2].host, "::1");
        assert_eq!(list[2].proto, Proto::Tcp);
        assert_eq!((list[3].port, list[3].proto), (5061, Proto::Tls));
    }

    #[test]
    fn refuses_bad_lines_with_their_number() {
        assert_eq!(parse("x sip:a").unwrap_err().line, 1);
        assert_eq!(parse("\n1").unwrap_err().line, 2);
        assert!(parse("1 tel:+123").is_err());
        assert!(parse("1 sip:a x").is_err());
        assert!(parse("1 sip:a 0 y").is_err());
        assert!(parse("1 sip:a 0 0 weight=heavy").is_err());
        assert!(parse("1 sip:a;transport=carrier-pigeon").is_err());
    }
}
