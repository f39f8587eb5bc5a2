//! The `rr` sub-module (`KSR.rr.*`): Record-Route and Route processing (RFC 3261 16.4, 16.6
//! steps 4-7, 16.12).
//!
//! - [`record`]: `record_route*` and `add_rr_param` record what the host is to insert
//!   (`msg.route.record_route`); the host writes the header(s) when it knows the outgoing
//!   socket ([`header_lines`]), two of them when the request leaves by another socket than it
//!   arrived on (Kamailio's double Record-Route).
//! - [`loose`]: `loose_route*`: our own Route entries removed, the next hop taken from the
//!   Route set, strict routers handled on both sides.
//! - [`params`]: `check_route_param`, `is_direction` on the Route entry that named us.
//! - [`route_set`]: the Route values of a message with their header positions.
//! - [`config`]: `[modparam.rr]` (`enable_full_lr`, `append_fromtag`, `enable_double_rr`,
//!   `add_username`), read at setup into [`RrConfig`].

pub mod config;
pub mod loose;
pub mod params;
pub mod record;
pub mod route_set;

use kemi_runtime::msg::{Proto, RecordRoute};

pub use config::{DoubleRr, RrConfig};

/// One socket a Record-Route entry names: its `host:port` and transport.
#[derive(Clone, Copy, Debug)]
pub struct RrSocket<'a> {
    /// `host:port` (IPv6 in brackets).
    pub sent_by: &'a str,
    /// Transport.
    pub proto: Proto,
}

/// What one Record-Route URI is written from: the script's request, the server's params and
/// the message's From tag and R-URI user.
struct UriParts<'a> {
    rr: &'a RecordRoute,
    cfg: &'a RrConfig,
    ftag: Option<&'a str>,
    user: Option<&'a str>,
}

fn write_uri(out: &mut String, parts: &UriParts<'_>, sock: RrSocket<'_>) {
    let UriParts { rr, cfg, .. } = parts;
    out.push_str("<sip:");
    if let Some(u) = parts.user.filter(|u| cfg.add_username && !u.is_empty()) {
        out.push_str(u);
        out.push('@');
    }
    match &rr.advertised {
        Some(a) => out.push_str(a),
        None => out.push_str(sock.sent_by),
    }
    if sock.proto != Proto::Udp || cfg.double_rr == DoubleRr::Always {
        out.push_str(";transport=");
        out.push_str(sock.proto.as_str());
    }
    out.push_str(if cfg.full_lr { ";lr=on" } else { ";lr" });
    if let Some(t) = parts.ftag.filter(|t| cfg.append_fromtag && !t.is_empty()) {
        out.push_str(";ftag=");
        out.push_str(t);
    }
    if !rr.params.is_empty() {
        if !rr.params.starts_with(';') {
            out.push(';');
        }
        out.push_str(&rr.params);
    }
    out.push('>');
}

/// The Record-Route header line(s) to insert for a request that arrived on `inbound` and
/// leaves by `outbound`, top first: with a preset, the preset value(s) as given; else our
/// URI (`;lr` or `;lr=on`, `;ftag=` the From tag when `append_fromtag`, the script's params;
/// `user` the R-URI user with `add_username`), twice (outbound first) when the sockets differ
/// and `enable_double_rr` is 1, always with 2, never with 0.
pub fn header_lines(
    rr: &RecordRoute,
    cfg: &RrConfig,
    inbound: RrSocket<'_>,
    outbound: RrSocket<'_>,
    from_tag: Option<&str>,
    user: Option<&str>,
) -> String {
    let mut out = String::with_capacity(160);
    if let Some((first, second)) = &rr.preset {
        for uri in [Some(first), second.as_ref()].into_iter().flatten() {
            out.push_str("Record-Route: <");
            out.push_str(uri.trim_start_matches('<').trim_end_matches('>'));
            out.push_str(">\r\n");
        }
        return out;
    }
    let double = match cfg.double_rr {
        DoubleRr::Never => false,
        DoubleRr::WhenNeeded => {
            inbound.sent_by != outbound.sent_by || inbound.proto != outbound.proto
        }
        DoubleRr::Always => true,
    };
    let socks = if double {
        [Some(outbound), Some(inbound)]
    } else {
        [Some(outbound), None]
    };
    let parts = UriParts {
        rr,
        cfg,
        ftag: from_tag,
        user,
    };
    for sock in socks.into_iter().flatten() {
        out.push_str("Record-Route: ");
        write_uri(&mut out, &parts, sock);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_double() {
        let d = RrConfig::default();
        let rr = RecordRoute::default();
        let a = RrSocket {
            sent_by: "10.0.0.1:5060",
            proto: Proto::Udp,
        };
        let b = RrSocket {
            sent_by: "10.0.0.1:5061",
            proto: Proto::Tcp,
        };
        assert_eq!(
            header_lines(&rr, &d, a, a, Some("f1"), None),
            "Record-Route: <sip:10.0.0.1:5060;lr;ftag=f1>\r\n"
        );
        assert_eq!(
            header_lines(&rr, &d, a, b, None, None),
            "Record-Route: <sip:10.0.0.1:5061;transport=tcp;lr>\r\nRecord-Route: <sip:10.0.0.1:5060;lr>\r\n"
        );
        let rr = RecordRoute {
            params: "nat=yes".into(),
            ..RecordRoute::default()
        };
        assert_eq!(
            header_lines(&rr, &d, a, a, None, None),
            "Record-Route: <sip:10.0.0.1:5060;lr;nat=yes>\r\n"
        );
    }

    #[test]
    fn honours_the_modparams() {
        let rr = RecordRoute::default();
        let a = RrSocket {
            sent_by: "127.0.0.1:5060",
            proto: Proto::Udp,
        };
        let b = RrSocket {
            sent_by: "127.0.0.1:5060",
            proto: Proto::Tcp,
        };
        // The basic example's enable_full_lr = 1, append_fromtag = 0.
        let basic = RrConfig {
            full_lr: true,
            append_fromtag: false,
            ..RrConfig::default()
        };
        assert_eq!(
            header_lines(&rr, &basic, a, a, Some("f1"), Some("bob")),
            "Record-Route: <sip:127.0.0.1:5060;lr=on>\r\n"
        );
        let never = RrConfig {
            double_rr: DoubleRr::Never,
            add_username: true,
            ..RrConfig::default()
        };
        assert_eq!(
            header_lines(&rr, &never, a, b, Some("f1"), Some("bob")),
            "Record-Route: <sip:bob@127.0.0.1:5060;transport=tcp;lr;ftag=f1>\r\n"
        );
        let always = RrConfig {
            double_rr: DoubleRr::Always,
            ..RrConfig::default()
        };
        assert_eq!(
            header_lines(&rr, &always, a, a, None, None),
            "Record-Route: <sip:127.0.0.1:5060;transport=udp;lr>\r\n\
             Record-Route: <sip:127.0.0.1:5060;transport=udp;lr>\r\n"
        );
    }
}
