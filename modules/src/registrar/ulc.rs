//! `reg_fetch_contacts`/`reg_free_contacts` and reading the fetched copy: `ulc_rget`,
//! `ulc_cget` and the `$ulc(profile=>attr)` PV (`$(ulc(profile=>attr)[i])` for contact `i`).
//!
//! As in Kamailio, a profile is a per-worker copy of one AoR's contacts that stays until it
//! is fetched again or freed (Kamailio keeps it per process).

use std::cell::RefCell;
use std::collections::HashMap;

use kemi_runtime::{kemi, SipMsg, Xval};

use super::table_of;
use super::usrloc::Contact;

/// One fetched record.
#[derive(Clone, Debug)]
struct Fetched {
    aor: String,
    domain: String,
    contacts: Vec<Contact>,
}

thread_local! {
    static PROFILES: RefCell<HashMap<String, Fetched>> = RefCell::new(HashMap::new());
}

/// A value read from a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UlcValue {
    /// No such profile, attribute or index.
    Null,
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}

impl UlcValue {
    fn into_xval(self) -> Xval {
        match self {
            UlcValue::Null => Xval::Null,
            UlcValue::Int(i) => i32::try_from(i).map_or(Xval::Long(i), Xval::Int),
            UlcValue::Str(s) => Xval::Str(s),
        }
    }
}

fn aor_hash(aor: &str) -> i64 {
    // Kamailio's core_hash is not reproduced; a stable 32-bit FNV-1a stands in.
    let mut h: u32 = 0x811c_9dc5;
    for b in aor.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i64::from(h)
}

fn record_attr(f: &Fetched, attr: &str) -> UlcValue {
    match attr {
        "aor" => UlcValue::Str(f.aor.clone()),
        "domain" => UlcValue::Str(f.domain.clone()),
        "aorhash" => UlcValue::Int(aor_hash(&f.aor)),
        "count" => UlcValue::Int(f.contacts.len() as i64),
        _ => UlcValue::Null,
    }
}

fn contact_attr(c: &Contact, attr: &str) -> UlcValue {
    let s = |v: &str| {
        if v.is_empty() {
            UlcValue::Null
        } else {
            UlcValue::Str(v.to_string())
        }
    };
    match attr {
        "addr" => s(&c.uri),
        "path" => s(&c.path),
        "received" => s(&c.received),
        "expires" => UlcValue::Int(c.expires),
        "callid" => s(&c.callid),
        "q" => UlcValue::Int(c.q.into()),
        "cseq" => UlcValue::Int(c.cseq.into()),
        "flags" => UlcValue::Int(c.flags.into()),
        "cflags" => UlcValue::Int(c.cflags.into()),
        "user_agent" => s(&c.user_agent),
        "socket" => s(&c.socket),
        "modified" => UlcValue::Int(c.last_modified),
        "methods" => UlcValue::Int(c.methods.into()),
        "ruid" => s(&c.ruid),
        "reg-id" | "regid" => UlcValue::Int(c.reg_id.into()),
        "instance" => s(&c.instance),
        "server_id" | "keepalive" => UlcValue::Int(0),
        "conid" => UlcValue::Int(-1),
        _ => UlcValue::Null,
    }
}

/// Read `attr` of `profile`: record attributes (`aor`, `domain`, `aorhash`, `count`) or an
/// attribute of contact `index` (`addr`, `path`, `received`, `expires`, `callid`, `q`, `cseq`,
/// `flags`, `cflags`, `user_agent`, `socket`, `modified`, `methods`, `ruid`, `reg-id`,
/// `instance`...). A negative index counts from the end.
pub fn get(profile: &str, attr: &str, index: i64) -> UlcValue {
    PROFILES.with(|p| {
        let p = p.borrow();
        let Some(f) = p.get(profile) else {
            return UlcValue::Null;
        };
        match record_attr(f, attr) {
            UlcValue::Null => {}
            v => return v,
        }
        let len = f.contacts.len() as i64;
        let i = if index < 0 { len + index } else { index };
        usize::try_from(i)
            .ok()
            .and_then(|i| f.contacts.get(i))
            .map_or(UlcValue::Null, |c| contact_attr(c, attr))
    })
}

/// The `$ulc(...)` PV: `inner` is `profile=>attr`, optionally followed by `[index]` (the
/// `$(ulc(profile=>attr)[index])` form). None when the name does not parse.
pub fn pv_get(inner: &str) -> Option<UlcValue> {
    let (name, index) = match inner.strip_suffix(']').and_then(|s| s.rsplit_once('[')) {
        Some((n, i)) => (n, i.trim().parse::<i64>().ok()?),
        None => (inner, 0),
    };
    let (profile, attr) = name.split_once("=>")?;
    Some(get(profile.trim(), attr.trim(), index))
}

/// The `$ulc` PV from the text after `$`: `ulc(profile=>attr)` or `(ulc(profile=>attr)[i])`;
/// null when it does not parse.
pub fn pv_spec_get(spec: &str) -> UlcValue {
    let parsed = match spec.strip_prefix("(ulc(") {
        Some(rest) => rest
            .strip_suffix("])")
            .and_then(|r| r.split_once(")["))
            .and_then(|(name, idx)| pv_get(&format!("{name}[{idx}]"))),
        None => spec
            .strip_prefix("ulc(")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(pv_get),
    };
    parsed.unwrap_or(UlcValue::Null)
}

/// `KSR.registrar.reg_fetch_contacts(table, uri, profile)`: copy the valid contacts of `uri`'s
/// AoR into `profile` for `$ulc(profile=>attr)`. Returns 1, or -1 when there are none (the
/// profile is then empty).
#[kemi(module = "registrar", name = "reg_fetch_contacts")]
pub fn reg_fetch_contacts(msg: &mut SipMsg, table: &str, uri: &str, profile: &str) -> i32 {
    let Some((reg, t)) = table_of(msg, table) else {
        return -1;
    };
    let Some(aor) = reg.aor_of(uri) else {
        return -1;
    };
    let domain = kemi_runtime::sip::Uri::parse(uri.trim())
        .map(|u| u.host_unbracketed().to_string())
        .unwrap_or_default();
    let contacts = t.valid(&aor, crate::store::now_unix());
    let found = !contacts.is_empty();
    PROFILES.with(|p| {
        let mut p = p.borrow_mut();
        if found {
            p.insert(
                profile.to_string(),
                Fetched {
                    aor,
                    domain,
                    contacts,
                },
            );
        } else {
            p.remove(profile);
        }
    });
    if found {
        1
    } else {
        -1
    }
}

/// `KSR.registrar.reg_free_contacts(profile)`: drop the fetched copy. Returns 1.
#[kemi(module = "registrar", name = "reg_free_contacts")]
pub fn reg_free_contacts(msg: &mut SipMsg, profile: &str) -> i32 {
    let _ = msg;
    PROFILES.with(|p| p.borrow_mut().remove(profile));
    1
}

/// `KSR.registrar.ulc_rget(profile, attr)`: a record attribute of the fetched profile
/// (`aor`, `domain`, `aorhash`, `count`), null when absent.
#[kemi(module = "registrar", name = "ulc_rget")]
pub fn ulc_rget(msg: &mut SipMsg, profile: &str, attr: &str) -> Xval {
    let _ = msg;
    PROFILES
        .with(|p| {
            p.borrow()
                .get(profile)
                .map_or(UlcValue::Null, |f| record_attr(f, attr))
        })
        .into_xval()
}

/// `KSR.registrar.ulc_cget(profile, attr, index)`: attribute `attr` of contact `index` of the
/// fetched profile, null when absent.
#[kemi(module = "registrar", name = "ulc_cget")]
pub fn ulc_cget(msg: &mut SipMsg, profile: &str, attr: &str, index: i32) -> Xval {
    let _ = msg;
    get(profile, attr, index.into()).into_xval()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pv_names() {
        PROFILES.with(|p| {
            p.borrow_mut().insert(
                "caller".into(),
                Fetched {
                    aor: "alice".into(),
                    domain: "example.com".into(),
                    contacts: vec![
                        Contact {
                            uri: "sip:a@127.0.0.1".into(),
                            q: 500,
                            ..Contact::default()
                        },
                        Contact {
                            uri: "sip:a@127.0.0.2".into(),
                            ..Contact::default()
                        },
                    ],
                },
            )
        });
        assert_eq!(pv_get("caller=>count"), Some(UlcValue::Int(2)));
        assert_eq!(pv_get("caller=>aor"), Some(UlcValue::Str("alice".into())));
        assert_eq!(
            pv_get("caller=>addr"),
            Some(UlcValue::Str("sip:a@127.0.0.1".into()))
        );
        assert_eq!(
            pv_get("caller=>addr[1]"),
            Some(UlcValue::Str("sip:a@127.0.0.2".into()))
        );
        assert_eq!(
            pv_get("caller=>addr[-1]"),
            Some(UlcValue::Str("sip:a@127.0.0.2".into()))
        );
        assert_eq!(pv_get("caller=>q"), Some(UlcValue::Int(500)));
        assert_eq!(pv_get("caller=>addr[2]"), Some(UlcValue::Null));
        assert_eq!(pv_get("nobody=>count"), Some(UlcValue::Null));
        assert_eq!(pv_get("caller"), None);
        assert_eq!(pv_get("caller=>addr[x]"), None);
        assert_eq!(
            pv_spec_get("(ulc(caller=>addr)[1])"),
            UlcValue::Str("sip:a@127.0.0.2".into())
        );
        assert_eq!(pv_spec_get("ulc(caller=>count)"), UlcValue::Int(2));
        assert_eq!(pv_spec_get("ulc(caller)"), UlcValue::Null);
    }
}
