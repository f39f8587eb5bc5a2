//! The `registrar` sub-module (`KSR.registrar.*`) and the location service it uses (Kamailio's
//! `registrar` + `usrloc`).
//!
//! - [`usrloc`]: in-memory sharded location tables, written through to the store.
//! - [`contact`]: Contact/Expires parsing and the registrar's error codes.
//! - [`save`]: `save`, `save_uri`, `reg_send_reply`, `set_q_override`, `add_sock_hdr`.
//! - [`lookup`]: `lookup*`, `registered*`, `unregister*`.
//! - [`ulc`]: `reg_fetch_contacts`, `reg_free_contacts`, `ulc_rget`, `ulc_cget`, `$ulc(...)`.
//!
//! Setup ([`setup`]) reads the `usrloc` and `registrar` modparams, opens the store, loads the
//! `location` table (and the `preload` ones) and registers a sweep of expired contacts.

pub mod contact;
pub mod lookup;
pub mod save;
pub mod ulc;
pub mod usrloc;

use std::sync::Arc;
use std::time::Duration;

use kemi_runtime::SipMsg;

use crate::modparam::ModParams;
use crate::setup::{SetupCtx, SetupError};
use usrloc::{UlConfig, Usrloc};

/// Path handling (`path_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathMode {
    /// 0: store the Path, never echo it.
    Off,
    /// 1: store it, echo it when the UA supports `path`.
    Lazy,
    /// 2: store it, refuse (420) when the UA does not support `path`.
    Strict,
}

/// The registrar's configuration (its modparams, Kamailio's names and defaults).
#[derive(Clone, Debug)]
pub struct RegConfig {
    /// `default_expires` (3600).
    pub default_expires: u32,
    /// `min_expires` (60; 0 disables).
    pub min_expires: u32,
    /// `max_expires` (0: none).
    pub max_expires: u32,
    /// `min_expires_mode`: 0 raises a short expiry to `min_expires`, 1 answers 423.
    pub min_expires_mode: bool,
    /// `max_contacts` (0: unlimited).
    pub max_contacts: usize,
    /// `append_branches` (1): other contacts become branches at lookup.
    pub append_branches: bool,
    /// `method_filtering` (0).
    pub method_filtering: bool,
    /// `received_avp` AVP name (`$avp(RECEIVED)` gives `RECEIVED`).
    pub received_avp: Option<String>,
    /// `received_param` (`received`): the Contact parameter carrying it in the 200.
    pub received_param: String,
    /// `default_q` (-1: unspecified).
    pub default_q: i32,
    /// `case_sensitive` (0): AoRs compared (and stored) lowercased.
    pub case_sensitive: bool,
    /// `use_path` (0).
    pub use_path: bool,
    /// `path_mode` (2).
    pub path_mode: PathMode,
    /// `path_use_received` (0): take `received` from the first Path URI's `received` param.
    pub path_use_received: bool,
    /// `contact_max_size` (512).
    pub contact_max_size: usize,
    /// `retry_after` (0): Retry-After seconds on 5xx replies.
    pub retry_after: u32,
    /// `realm_prefix` (""): removed from the AoR domain.
    pub realm_prefix: String,
    /// `gruu_enabled` (accepted; GRUUs are not generated).
    pub gruu_enabled: bool,
}

/// The shared state of registrar + usrloc, found by exports in `Services`.
#[derive(Debug)]
pub struct Registrar {
    /// Registrar configuration.
    pub cfg: RegConfig,
    /// The location service.
    pub ul: Usrloc,
}

impl Registrar {
    /// The registrar of this message's server, if the module is set up.
    pub fn of(msg: &SipMsg) -> Option<Arc<Registrar>> {
        msg.env.services.get_arc::<Registrar>()
    }

    /// The AoR key for a URI: user (unescaped), `@domain` when domains are used, lowercased
    /// unless `case_sensitive`. None when the URI does not parse.
    pub fn aor_of(&self, uri: &str) -> Option<String> {
        self.aor_key(uri).map(|k| k.as_str().to_owned())
    }

    /// [`Registrar::aor_of`] without allocating (for keys up to 128 bytes whose user part has
    /// no escapes): what every lookup uses.
    pub fn aor_key(&self, uri: &str) -> Option<AorKey> {
        let u = kemi_runtime::sip::Uri::parse(uri.trim()).ok()?;
        let user = kemi_runtime::sip::uri::percent_decode(u.user.unwrap_or(""));
        let user = String::from_utf8_lossy(&user);
        let lower = !self.cfg.case_sensitive;
        Some(if self.ul.cfg.use_domain {
            let host = u.host_unbracketed();
            let host = host
                .strip_prefix(self.cfg.realm_prefix.as_str())
                .filter(|_| !self.cfg.realm_prefix.is_empty())
                .unwrap_or(host);
            if user.is_empty() {
                AorKey::new(&[host], lower)
            } else {
                AorKey::new(&[&user, "@", host], lower)
            }
        } else {
            AorKey::new(&[&user], lower)
        })
    }
}

/// Longest AoR an [`AorKey`] keeps inline.
const AOR_INLINE: usize = 128;

/// An AoR built on the stack when it is at most 128 bytes (else on the heap): the borrowed key
/// of a lookup.
#[derive(Clone, Debug)]
pub enum AorKey {
    /// Up to [`AOR_INLINE`] bytes in place.
    Inline {
        /// The bytes (UTF-8 up to `len`).
        buf: [u8; AOR_INLINE],
        /// Length used.
        len: u8,
    },
    /// A longer AoR.
    Heap(String),
}

impl AorKey {
    /// The concatenation of `parts`, ASCII-lowercased when `lower`.
    pub fn new(parts: &[&str], lower: bool) -> AorKey {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > AOR_INLINE {
            let mut s = parts.concat();
            if lower {
                s.make_ascii_lowercase();
            }
            return AorKey::Heap(s);
        }
        let mut buf = [0u8; AOR_INLINE];
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p.as_bytes());
            at += p.len();
        }
        if lower {
            buf[..at].make_ascii_lowercase();
        }
        AorKey::Inline { buf, len: at as u8 }
    }

    /// The AoR.
    pub fn as_str(&self) -> &str {
        match self {
            // Whole `&str` pieces, ASCII-lowercased: always UTF-8.
            AorKey::Inline { buf, len } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or_default()
            }
            AorKey::Heap(s) => s,
        }
    }
}

impl std::ops::Deref for AorKey {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

const USRLOC_PARAMS: &[&str] = &[
    "db_url",
    "max_bindings",
    "db_mode",
    "use_domain",
    "nat_bflag",
    "timer_interval",
    "preload",
    "desc_time_order",
    "cseq_delay",
    "matching_mode",
    "hash_size",
    "db_load",
    "db_insert_update",
    "timer_procs",
    "handle_lost_tcp",
    "close_expired_tcp",
    "skip_remote_socket",
    "db_update_as_insert",
    "db_check_update",
    "db_ops_ruid",
    "db_timer_clean",
    "rm_expired_delay",
    "version_table",
    "expires_type",
    "server_id_filter",
    "fetch_rows",
];

const REGISTRAR_PARAMS: &[&str] = &[
    "default_expires",
    "default_expires_range",
    "expires_range",
    "min_expires",
    "max_expires",
    "min_expires_mode",
    "max_contacts",
    "append_branches",
    "method_filtering",
    "received_avp",
    "received_param",
    "default_q",
    "case_sensitive",
    "use_path",
    "path_mode",
    "path_use_received",
    "path_check_local",
    "contact_max_size",
    "retry_after",
    "realm_prefix",
    "gruu_enabled",
    "outbound_mode",
    "regid_mode",
    "sock_flag",
    "sock_hdr_name",
    "sock_mode",
    "xavp_cfg",
    "xavp_rcd",
    "use_expired_contacts",
    "lookup_filter_mode",
    "flow_timer",
];

fn nonneg(p: &ModParams, name: &str, default: i64) -> Result<i64, SetupError> {
    let v = p.int(name, default)?;
    if v < 0 {
        return Err(p.error(name, "must not be negative").into());
    }
    Ok(v)
}

fn u32_param(p: &ModParams, name: &str, default: i64) -> Result<u32, SetupError> {
    let v = nonneg(p, name, default)?;
    u32::try_from(v).map_err(|_| p.error(name, "too large").into())
}

/// The AVP name of a `$avp(name)` spec (a bare name is taken as is).
fn avp_name(spec: &str) -> Option<String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return None;
    }
    let name = spec
        .strip_prefix("$avp(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(spec);
    let name = name.strip_prefix("s:").unwrap_or(name);
    Some(name.to_string())
}

/// Table slots for usrloc's `hash_size`: `2^hash_size`, 512 for 1 or less (as Kamailio);
/// capped at `2^20`.
fn hash_slots(hash_size: i64) -> usize {
    if hash_size <= 1 {
        512
    } else {
        1 << hash_size.min(20)
    }
}

/// Read the registrar's configuration from the `usrloc` and `registrar` modparams.
pub fn config(ul: &ModParams, reg: &ModParams) -> Result<(UlConfig, RegConfig), SetupError> {
    ul.check_known(USRLOC_PARAMS)?;
    reg.check_known(REGISTRAR_PARAMS)?;
    let db_mode = ul.int("db_mode", 2)?;
    if !(0..=3).contains(&db_mode) {
        return Err(ul.error("db_mode", "must be 0, 1, 2 or 3").into());
    }
    let matching = ul.int("matching_mode", 0)?;
    if matching != 0 {
        return Err(ul
            .error(
                "matching_mode",
                "only 0 (match by contact URI) is supported",
            )
            .into());
    }
    let ulc = UlConfig {
        use_domain: ul.int("use_domain", 0)? != 0,
        db_mode,
        desc_time_order: ul.int("desc_time_order", 0)? != 0,
        nat_bflag: ul.int("nat_bflag", -1)?,
        cseq_delay: nonneg(ul, "cseq_delay", 20)?,
        slots: hash_slots(ul.int("hash_size", 10)?),
        max_bindings: usize::try_from(nonneg(ul, "max_bindings", 0)?).unwrap_or(usize::MAX),
    };
    let path_mode = match reg.int("path_mode", 2)? {
        0 => PathMode::Off,
        1 => PathMode::Lazy,
        2 => PathMode::Strict,
        _ => return Err(reg.error("path_mode", "must be 0, 1 or 2").into()),
    };
    let default_q = reg.int("default_q", -1)?;
    let default_q = if default_q < 0 {
        -1
    } else {
        default_q.min(1000) as i32
    };
    for unsupported in ["outbound_mode", "xavp_cfg", "use_expired_contacts"] {
        let set = match reg.str(unsupported)? {
            Some(v) => !v.is_empty() && v != "0",
            None => false,
        };
        if set {
            return Err(reg
                .error(unsupported, "not supported by sipd (leave unset or 0)")
                .into());
        }
    }
    let regc = RegConfig {
        default_expires: u32_param(reg, "default_expires", 3600)?,
        min_expires: u32_param(reg, "min_expires", 60)?,
        max_expires: u32_param(reg, "max_expires", 0)?,
        min_expires_mode: reg.int("min_expires_mode", 0)? != 0,
        max_contacts: usize::try_from(nonneg(reg, "max_contacts", 0)?).unwrap_or(usize::MAX),
        append_branches: reg.int("append_branches", 1)? != 0,
        method_filtering: reg.int("method_filtering", 0)? != 0,
        received_avp: match reg.str("received_avp")? {
            Some(s) => avp_name(&s),
            None => Some("RECEIVED".to_string()),
        },
        received_param: reg
            .str("received_param")?
            .unwrap_or_else(|| "received".into()),
        default_q,
        case_sensitive: reg.int("case_sensitive", 0)? != 0,
        use_path: reg.int("use_path", 0)? != 0,
        path_mode,
        path_use_received: reg.int("path_use_received", 0)? != 0,
        contact_max_size: usize::try_from(nonneg(reg, "contact_max_size", 512)?)
            .unwrap_or(usize::MAX),
        retry_after: u32_param(reg, "retry_after", 0)?,
        realm_prefix: reg.str("realm_prefix")?.unwrap_or_default(),
        gruu_enabled: reg.int("gruu_enabled", 1)? != 0,
    };
    Ok((ulc, regc))
}

/// Set up registrar + usrloc: read the modparams, open the store (unless `db_mode` is 0), load
/// `location` and the `preload` tables, and sweep expired contacts every `timer_interval`
/// seconds (60).
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let ulp = ctx.params("usrloc");
    let regp = ctx.params("registrar");
    let (ulc, regc) = config(&ulp, &regp)?;
    let interval = ulp.int("timer_interval", 60)?;
    if interval <= 0 {
        return Err(ulp.error("timer_interval", "must be positive").into());
    }
    let writer = if ulc.db_mode == 0 {
        None
    } else {
        Some(ctx.store(&ulp)?)
    };
    let ul = Usrloc::new(ulc, writer);
    let mut names = vec!["location".to_string()];
    names.extend(ulp.strs("preload")?);
    for name in &names {
        ul.table(name).map_err(SetupCtx::store_error("usrloc"))?;
    }
    let reg = Arc::new(Registrar { cfg: regc, ul });
    if let Some(w) = reg.ul.writer().filter(|w| w.store().shared()) {
        follow_shared_store(&reg, w).map_err(SetupCtx::store_error("usrloc"))?;
    }
    let sweeper = Arc::clone(&reg);
    ctx.services.insert(reg);
    ctx.services.every(
        "usrloc expired contacts",
        Duration::from_secs(interval.unsigned_abs()),
        move || {
            sweeper.ul.sweep(crate::store::now_unix());
        },
    );
    Ok(())
}

/// Keep the location tables of `reg` in step with the other nodes of a shared store: every
/// change the store reports is applied on the writer thread, behind this node's own writes.
/// The callback holds the registrar weakly, so it ends with the server.
fn follow_shared_store(
    reg: &Arc<Registrar>,
    w: &Arc<crate::store::Writer>,
) -> Result<(), crate::store::StoreError> {
    let weak = Arc::downgrade(reg);
    w.store().watch(Arc::new(move |change| {
        let Some(reg) = weak.upgrade() else { return };
        let Some(w) = reg.ul.writer().cloned() else {
            return;
        };
        w.submit("usrloc sync from the shared store", move |s| {
            reg.ul.apply_change(s, change)
        });
    }))
}

/// The registrar of `msg`'s server and table `name`, logging why not.
pub(crate) fn table_of(
    msg: &mut SipMsg,
    name: &str,
) -> Option<(Arc<Registrar>, Arc<usrloc::Table>)> {
    let Some(reg) = Registrar::of(msg) else {
        msg.log(
            kemi_runtime::msg::LogLevel::Err,
            "registrar: module not set up (enable `registrar` in `modules`)",
        );
        return None;
    };
    match reg.ul.table(name) {
        Ok(t) => Some((reg, t)),
        Err(e) => {
            msg.log(
                kemi_runtime::msg::LogLevel::Err,
                &format!("registrar: table `{name}`: {e}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AorKey;

    #[test]
    fn hash_size_slots() {
        assert_eq!(super::hash_slots(10), 1024);
        assert_eq!(super::hash_slots(12), 4096);
        assert_eq!(super::hash_slots(0), 512);
        assert_eq!(super::hash_slots(64), 1 << 20);
    }

    #[test]
    fn aor_key_inline_and_heap() {
        let k = AorKey::new(&["Alice", "@", "Example.COM"], true);
        assert!(matches!(k, AorKey::Inline { .. }));
        assert_eq!(&*k, "alice@example.com");
        assert_eq!(&*AorKey::new(&["Bob"], false), "Bob");
        assert_eq!(&*AorKey::new(&[], true), "");
        let long = "ü".repeat(100);
        let k = AorKey::new(&[&long, "@", "X"], true);
        assert!(matches!(k, AorKey::Heap(_)));
        assert_eq!(&*k, format!("{long}@x"));
        let edge = "a".repeat(128);
        assert!(matches!(
            AorKey::new(&[&edge], false),
            AorKey::Inline { .. }
        ));
        assert_eq!(&*AorKey::new(&[&edge], false), edge);
    }
}
