//! SIP over WebSocket (RFC 7118): [`WsConfig`], the `[websocket]` settings, and
//! [`check_upgrade`], the decision on one HTTP upgrade request.
//!
//! sipd answers the upgrade itself (tokio-tungstenite, RFC 6455): the request must offer the
//! `sip` subprotocol (`Sec-WebSocket-Protocol`), which the answer selects, and, when
//! `allowed_origins` is set, carry one of those origins. A refused upgrade gets an HTTP error
//! and the connection closes. Afterwards every text or binary frame is one SIP message (RFC 7118
//! 5.2); sipd sends text frames. `wss:` is the same over a TLS session made with the `[tls]`
//! settings ([`super::tls::TlsContext`]).

use std::time::Duration;

/// Default for `handshake_timeout_ms`: the TCP accept to the end of the upgrade (and of the TLS
/// handshake before it on `wss:`).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for `ping_interval`: a ping frame on every connection this often.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
/// The subprotocol of RFC 7118.
pub const SUBPROTOCOL: &str = "sip";

/// The `[websocket]` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsConfig {
    /// Origins accepted (`https://host[:port]`, compared without case); empty: any origin, and
    /// requests without one.
    pub allowed_origins: Vec<String>,
    /// The largest frame (and message) accepted, in octets; a larger one closes the connection.
    pub max_frame_size: usize,
    /// How long the upgrade may take after the TCP accept.
    pub handshake_timeout: Duration,
    /// How often a ping frame goes to the client (zero: never).
    pub ping_interval: Duration,
}

impl WsConfig {
    /// The defaults, with frames up to `max_message_size`.
    pub fn with_max(max_message_size: usize) -> WsConfig {
        WsConfig {
            allowed_origins: Vec::new(),
            max_frame_size: max_message_size,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
        }
    }
}

/// Why an upgrade request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeRefusal {
    /// `Sec-WebSocket-Protocol` does not offer `sip`.
    #[error("the upgrade does not offer the sip subprotocol (Sec-WebSocket-Protocol: {0:?})")]
    Subprotocol(String),
    /// The Origin is not among `allowed_origins`.
    #[error("origin {0:?} is not allowed")]
    Origin(String),
}

impl UpgradeRefusal {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            UpgradeRefusal::Subprotocol(_) => 400,
            UpgradeRefusal::Origin(_) => 403,
        }
    }
}

/// Decide on an upgrade from its `Sec-WebSocket-Protocol` values (every header, each a
/// comma-separated list) and its `Origin`.
pub fn check_upgrade<'a>(
    cfg: &WsConfig,
    protocols: impl Iterator<Item = &'a str>,
    origin: Option<&str>,
) -> Result<(), UpgradeRefusal> {
    let mut offered = String::new();
    let mut sip = false;
    for value in protocols {
        if !offered.is_empty() {
            offered.push_str(", ");
        }
        offered.push_str(value);
        sip |= value
            .split(',')
            .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL));
    }
    if !sip {
        return Err(UpgradeRefusal::Subprotocol(offered));
    }
    if !cfg.allowed_origins.is_empty() {
        let origin = origin.unwrap_or("");
        if !cfg
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
        {
            return Err(UpgradeRefusal::Origin(origin.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subprotocol_and_origin() {
        let mut cfg = WsConfig::with_max(65535);
        assert_eq!(check_upgrade(&cfg, ["sip"].into_iter(), None), Ok(()));
        assert_eq!(
            check_upgrade(&cfg, ["chat, SIP"].into_iter(), Some("x")),
            Ok(())
        );
        let e = check_upgrade(&cfg, ["chat"].into_iter(), None).unwrap_err();
        assert_eq!(e, UpgradeRefusal::Subprotocol("chat".into()));
        assert_eq!(e.status(), 400);
        assert!(check_upgrade(&cfg, std::iter::empty(), None).is_err());
        cfg.allowed_origins = vec!["https://app.example".into()];
        assert_eq!(
            check_upgrade(&cfg, ["sip"].into_iter(), Some("https://APP.example")),
            Ok(())
        );
        let e = check_upgrade(&cfg, ["sip"].into_iter(), Some("https://evil.example")).unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(check_upgrade(&cfg, ["sip"].into_iter(), None).is_err());
    }
}
