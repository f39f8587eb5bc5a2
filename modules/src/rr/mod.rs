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

pub mod loose;
pub mod params;
pub mod record;
pub mod route_set;

use kemi_runtime::msg::{Proto, RecordRoute};

/// One socket a Record-Route entry names: its `host:port` and transport.
#[derive(Clone, Copy, Debug)]
pub struct RrSocket<'a> {
    /// `host:port` (IPv6 in brackets).
    pub sent_by: &'a str,
    /// Transport.
    pub proto: Proto,
}

fn write_uri(out: &mut String, rr: &RecordRoute, sock: RrSocket<'_>, ftag: Option<&str>) {
    out.push_str("<sip:");
    match &rr.advertised {
        Some(a) => out.push_str(a),
        None => out.push_str(sock.sent_by),
    }
    if sock.proto != Proto::Udp {
        out.push_str(";transport=");
        out.push_str(sock.proto.as_str());
    }
    out.push_str(";lr");
    if let Some(t) = ftag.filter(|t| !t.is_empty()) {
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
/// URI (`;lr`, `;ftag=` the From tag, the script's params), twice (outbound first) when the
/// sockets differ.
pub fn header_lines(
    rr: &RecordRoute,
    inbound: RrSocket<'_>,
    outbound: RrSocket<'_>,
    from_tag: Option<&str>,
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
    let double = inbound.sent_by != outbound.sent_by || inbound.proto != outbound.proto;
    let socks = if double {
        [Some(outbound), Some(inbound)]
    } else {
        [Some(outbound), None]
    };
    for sock in socks.into_iter().flatten() {
        out.push_str("Record-Route: ");
        write_uri(&mut out, rr, sock, from_tag);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_double() {
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
            header_lines(&rr, a, a, Some("f1")),
            "Record-Route: <sip:10.0.0.1:5060;lr;ftag=f1>\r\n"
        );
        assert_eq!(
            header_lines(&rr, a, b, None),
            "Record-Route: <sip:10.0.0.1:5061;transport=tcp;lr>\r\nRecord-Route: <sip:10.0.0.1:5060;lr>\r\n"
        );
        let rr = RecordRoute {
            params: "nat=yes".into(),
            ..RecordRoute::default()
        };
        assert_eq!(
            header_lines(&rr, a, a, None),
            "Record-Route: <sip:10.0.0.1:5060;lr;nat=yes>\r\n"
        );
    }
}
