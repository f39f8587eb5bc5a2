//! The `rr` module parameters (`[modparam.rr]`, Kamailio's names): how the Record-Route URI is
//! written. Read once at setup into [`RrConfig`], kept in the server's services; the host reads
//! it through [`RrConfig::of`] when it writes the header.
//!
//! Implemented: `enable_full_lr` (`;lr=on`), `append_fromtag` (`;ftag=`), `enable_double_rr`
//! (0 never, 1 when the request leaves by another socket or transport, 2 always, with
//! `;transport=` on both), `add_username` (the R-URI user in the URI). Accepted only with the
//! value sipd implements: `enable_socket_mismatch_warning = 0` (sipd never logs it),
//! `force_send_socket = 0`, `sockname_mode = 0`, `ignore_sips = 1` (sipd always writes `sip:`).
//! Anything else (`custom_user_avp`, other values) is refused at startup.

use std::sync::Arc;

use kemi_runtime::services::Services;

use crate::modparam::{ModParams, ModparamError};
use crate::setup::{SetupCtx, SetupError};

/// When two Record-Route headers are written (`enable_double_rr`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DoubleRr {
    /// 0: always one header (the outgoing socket).
    Never,
    /// 1 (Kamailio's default): two when the request leaves by another socket or transport than
    /// it arrived on.
    #[default]
    WhenNeeded,
    /// 2: always two, each with an explicit `;transport=`.
    Always,
}

/// The Record-Route parameters of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RrConfig {
    /// `enable_full_lr`: write `;lr=on` instead of `;lr`.
    pub full_lr: bool,
    /// `append_fromtag`: add `;ftag=<From tag>`.
    pub append_fromtag: bool,
    /// `enable_double_rr`.
    pub double_rr: DoubleRr,
    /// `add_username`: the R-URI user goes into the Record-Route URI.
    pub add_username: bool,
}

impl Default for RrConfig {
    /// Kamailio's defaults: `;lr`, with `ftag`, double when needed, no user.
    fn default() -> RrConfig {
        RrConfig {
            full_lr: false,
            append_fromtag: true,
            double_rr: DoubleRr::WhenNeeded,
            add_username: false,
        }
    }
}

/// Every parameter name accepted (Kamailio 5.6's rr parameters that sipd implements or whose
/// given value is what sipd does).
const KNOWN: &[&str] = &[
    "enable_full_lr",
    "append_fromtag",
    "enable_double_rr",
    "add_username",
    "enable_socket_mismatch_warning",
    "force_send_socket",
    "sockname_mode",
    "ignore_sips",
];

impl RrConfig {
    /// Read `[modparam.rr]`; unknown names and values sipd does not implement are errors.
    pub fn from_params(p: &ModParams) -> Result<RrConfig, ModparamError> {
        p.check_known(KNOWN)?;
        let flag = |name: &str, default: i64| -> Result<bool, ModparamError> {
            match p.int(name, default)? {
                0 => Ok(false),
                1 => Ok(true),
                v => Err(p.error(name, format!("expected 0 or 1, got {v}"))),
            }
        };
        let only = |name: &str, implemented: i64, what: &str| -> Result<(), ModparamError> {
            match p.int(name, implemented)? {
                v if v == implemented => Ok(()),
                v => Err(p.error(
                    name,
                    format!("{v} is not implemented in sipd (only {implemented}: {what})"),
                )),
            }
        };
        only(
            "enable_socket_mismatch_warning",
            0,
            "sipd never warns about a preset Record-Route naming another host",
        )?;
        only(
            "force_send_socket",
            0,
            "the outgoing socket is picked per destination",
        )?;
        only("sockname_mode", 0, "no socket names in Record-Route")?;
        only("ignore_sips", 1, "Record-Route URIs are always sip:")?;
        let double_rr = match p.int("enable_double_rr", 1)? {
            0 => DoubleRr::Never,
            1 => DoubleRr::WhenNeeded,
            2 => DoubleRr::Always,
            v => return Err(p.error("enable_double_rr", format!("expected 0, 1 or 2, got {v}"))),
        };
        Ok(RrConfig {
            full_lr: flag("enable_full_lr", 0)?,
            append_fromtag: flag("append_fromtag", 1)?,
            double_rr,
            add_username: flag("add_username", 0)?,
        })
    }

    /// The server's configuration, or Kamailio's defaults when `rr` was not set up.
    pub fn of(services: &Services) -> RrConfig {
        services.get::<RrConfig>().copied().unwrap_or_default()
    }
}

/// Setup of `rr`: read `[modparam.rr]` into the services.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let cfg = RrConfig::from_params(&ctx.params("rr"))?;
    ctx.services.insert(Arc::new(cfg));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modparam::ParamValue;

    fn params(pairs: &[(&str, i64)]) -> ModParams {
        pairs.iter().fold(ModParams::new("rr"), |p, (n, v)| {
            p.with(n, ParamValue::Int(*v))
        })
    }

    #[test]
    fn reads_kamailio_params() {
        assert_eq!(
            RrConfig::from_params(&params(&[])).unwrap(),
            RrConfig::default()
        );
        let c = RrConfig::from_params(&params(&[
            ("enable_full_lr", 1),
            ("append_fromtag", 0),
            ("enable_double_rr", 2),
            ("add_username", 1),
        ]))
        .unwrap();
        assert_eq!(
            c,
            RrConfig {
                full_lr: true,
                append_fromtag: false,
                double_rr: DoubleRr::Always,
                add_username: true,
            }
        );
    }

    #[test]
    fn refuses_what_sipd_does_not_do() {
        for bad in [
            ("enable_full_lr", 2),
            ("enable_double_rr", 3),
            ("force_send_socket", 1),
            ("ignore_sips", 0),
            ("enable_socket_mismatch_warning", 1),
            ("ignore_user", 1),
        ] {
            let e = RrConfig::from_params(&params(&[bad])).unwrap_err();
            assert_eq!(e.param, bad.0, "{e}");
        }
        let e = RrConfig::from_params(
            &ModParams::new("rr").with("custom_user_avp", ParamValue::Str("$avp(x)".into())),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown parameter"), "{e}");
    }
}
