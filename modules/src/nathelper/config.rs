//! nathelper's module parameters (Kamailio's names) and its setup.
//!
//! Only `received_avp`, `alias_name` and `nat_addr_mode` change what the exports do. The NAT
//! pinging parameters (`natping_interval`, `sipping_*`, `keepalive_timeout`, ...) are accepted
//! and checked, but sipd sends no keepalives: setup says so once in the log when pinging is
//! switched on.

use std::sync::Arc;

use crate::modparam::{ModParams, ModparamError};
use crate::setup::{SetupCtx, SetupError};

/// Every parameter Kamailio 5.6's nathelper takes.
const KNOWN: &[&str] = &[
    "force_socket",
    "natping_interval",
    "ping_nated_only",
    "natping_processes",
    "natping_socket",
    "received_avp",
    "sipping_bflag",
    "sipping_from",
    "sipping_method",
    "natping_disable_bflag",
    "nortpproxy_str",
    "keepalive_timeout",
    "udpping_from_path",
    "append_sdp_oldmediaip",
    "filter_server_id",
    "nat_addr_mode",
    "alias_name",
];

/// Integer parameters (checked to be integers).
const INTS: &[&str] = &[
    "natping_interval",
    "ping_nated_only",
    "natping_processes",
    "sipping_bflag",
    "natping_disable_bflag",
    "keepalive_timeout",
    "udpping_from_path",
    "append_sdp_oldmediaip",
    "filter_server_id",
    "nat_addr_mode",
];

/// nathelper's settings, shared by every worker through `Services`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NathelperConfig {
    /// The AVP `fix_nated_register` writes (`received_avp`, by name; `None`: disabled).
    pub received_avp: Option<String>,
    /// The Contact/R-URI parameter of `set_contact_alias` and `handle_ruri_alias` (`alias_name`).
    pub alias_name: String,
    /// `nat_addr_mode`: 1 also counts 192.0.0.0/24 as private.
    pub nat_addr_mode: i64,
}

impl Default for NathelperConfig {
    /// sipd's defaults: `received_avp` is `$avp(RECEIVED)` (the name Kamailio's examples and
    /// sipd's registrar use), `alias_name` is `alias`, `nat_addr_mode` is 1.
    fn default() -> Self {
        NathelperConfig {
            received_avp: Some("RECEIVED".to_string()),
            alias_name: "alias".to_string(),
            nat_addr_mode: 1,
        }
    }
}

/// The name inside `$avp(name)`, as `KSR.pv` names it; `None` when `spec` is not an AVP.
pub fn avp_name(spec: &str) -> Option<&str> {
    let name = spec.trim().strip_prefix("$avp(")?.strip_suffix(')')?;
    (!name.is_empty() && !name.contains(['(', ')', '$', ' ', '\t', '[', ']'])).then_some(name)
}

impl NathelperConfig {
    /// Read and check `params` (module `nathelper`).
    pub fn from_params(params: &ModParams) -> Result<NathelperConfig, ModparamError> {
        params.check_known(KNOWN)?;
        for name in INTS {
            params.int(name, 0)?;
        }
        for name in [
            "force_socket",
            "natping_socket",
            "sipping_from",
            "sipping_method",
            "nortpproxy_str",
        ] {
            params.str(name)?;
        }
        let mut cfg = NathelperConfig::default();
        if let Some(spec) = params.str("received_avp")? {
            cfg.received_avp = if spec.trim().is_empty() {
                None
            } else {
                Some(
                    avp_name(&spec)
                        .ok_or_else(|| {
                            params.error(
                                "received_avp",
                                format!("`{spec}` is not an AVP (write it as $avp(name))"),
                            )
                        })?
                        .to_string(),
                )
            };
        }
        if let Some(name) = params.str("alias_name")? {
            if !name.is_empty() {
                if !name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
                {
                    return Err(params.error(
                        "alias_name",
                        format!("`{name}` is not a URI parameter name"),
                    ));
                }
                cfg.alias_name = name;
            }
        }
        cfg.nat_addr_mode = params.int("nat_addr_mode", 1)?;
        Ok(cfg)
    }
}

/// Setup of `nathelper`: check the parameters, register the settings, and say once that NAT
/// pinging is not done when it is switched on.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let params = ctx.params("nathelper");
    let cfg = NathelperConfig::from_params(&params)?;
    let interval = params.int("natping_interval", 0)?;
    let keepalive = params.int("keepalive_timeout", 0)?;
    if interval > 0 || keepalive > 0 {
        tracing::warn!(
            natping_interval = interval,
            keepalive_timeout = keepalive,
            "nathelper: NAT pinging (OPTIONS/UDP keepalives) is not implemented in sipd; \
             no keepalives are sent"
        );
    }
    ctx.services.insert(Arc::new(cfg));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modparam::ParamValue;

    fn p(pairs: &[(&str, ParamValue)]) -> ModParams {
        pairs.iter().fold(ModParams::new("nathelper"), |p, (k, v)| {
            p.with(k, v.clone())
        })
    }

    #[test]
    fn reads_kamailio_params() {
        let cfg = NathelperConfig::from_params(&p(&[
            ("natping_interval", ParamValue::Int(30)),
            ("ping_nated_only", ParamValue::Int(1)),
            ("sipping_bflag", ParamValue::Int(7)),
            (
                "sipping_from",
                ParamValue::Str("sip:pinger@kamailio.org".into()),
            ),
            ("received_avp", ParamValue::Str("$avp(RCV)".into())),
            ("alias_name", ParamValue::Str("saddr".into())),
        ]))
        .unwrap();
        assert_eq!(cfg.received_avp.as_deref(), Some("RCV"));
        assert_eq!(cfg.alias_name, "saddr");
        assert_eq!(
            NathelperConfig::default().received_avp.as_deref(),
            Some("RECEIVED")
        );
        let off = NathelperConfig::from_params(&p(&[("received_avp", ParamValue::Str("".into()))]));
        assert_eq!(off.unwrap().received_avp, None);
    }

    #[test]
    fn refuses_bad_params() {
        for bad in [
            p(&[("natping_intervall", ParamValue::Int(1))]),
            p(&[("natping_interval", ParamValue::Str("often".into()))]),
            p(&[("received_avp", ParamValue::Str("$var(x)".into()))]),
            p(&[("alias_name", ParamValue::Str("a;b".into()))]),
        ] {
            assert!(NathelperConfig::from_params(&bad).is_err(), "{bad:?}");
        }
    }
}
