//! The `auth` module (`KSR.auth.*`): Digest authentication (RFC 7616, RFC 2617) with MD5 and
//! SHA-256, challenges, and the password-from-the-script functions (`pv_*_authenticate`).
//! `auth_db` builds on [`authenticate`] with passwords from the store.
//!
//! Nonces are stateless ([`nonce`]): any worker, and any server with the same `secret`
//! modparam, verifies them. With `nonce_count` (and `qop`), a response must carry an `nc`
//! above the last one seen for its nonce; `one_time_nonce` allows each nonce once.
//!
//! Return codes are Kamailio's: 1 authenticated; -1 error (malformed credentials, a nonce that
//! is not ours); -2 wrong password; -3 unknown user (auth_db); -4 stale nonce; -5 no
//! credentials for the realm; -6 nonce reused; -8 auth user differs from From/To.
//!
//! Modparams (Kamailio's names): `secret`, `nonce_expire` (300), `nonce_auth_max_drift` (3),
//! `nonce_count`, `one_time_nonce`, `nc_array_size`/`nc_array_order`, `otn_in_flight_no`/
//! `otn_in_flight_order`, `qop`, `algorithm`, `realm_prefix`, `use_domain`,
//! `force_stateless_reply`; `nid_pool_no` is accepted and ignored (no pools are needed);
//! `auth_checks_register`/`auth_checks_no_dlg`/`auth_checks_in_dlg` and `add_authinfo_hdr`
//! are accepted only as 0 (not supported).

pub mod digest;
pub mod nonce;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::sip::HeaderKind;
use kemi_runtime::{kemi, SipMsg};

use crate::setup::{SetupCtx, SetupError};
use crate::view;
use digest::{Algorithm, Credentials};
use nonce::{NcCheck, NcTable, NonceCheck, Nonces};

/// Kamailio's return codes.
pub mod code {
    /// Authenticated.
    pub const OK: i32 = 1;
    /// Generic error.
    pub const ERROR: i32 = -1;
    /// Wrong password.
    pub const INVALID_PASSWORD: i32 = -2;
    /// Unknown user.
    pub const USER_UNKNOWN: i32 = -3;
    /// Stale nonce.
    pub const STALE_NONCE: i32 = -4;
    /// No credentials for the realm.
    pub const NO_CREDENTIALS: i32 = -5;
    /// Nonce reused.
    pub const NONCE_REUSED: i32 = -6;
    /// The auth user differs from the From/To user.
    pub const USER_MISMATCH: i32 = -8;
}

/// The auth module's shared state.
#[derive(Debug)]
pub struct AuthState {
    nonces: Nonces,
    nc: Option<NcTable>,
    otn: Option<NcTable>,
    /// 0: not set (MD5, not printed in challenges), 1: MD5, 2: SHA-256.
    algorithm: AtomicU8,
    /// Default qop of challenges whose flags ask for none (`qop` modparam).
    qop_default: i32,
    realm_prefix: String,
    use_domain: bool,
    force_stateless_reply: bool,
}

impl AuthState {
    /// A state with Kamailio's defaults and `secret`.
    pub fn new(secret: &[u8]) -> AuthState {
        AuthState {
            nonces: Nonces::new(secret, 300, 3, random_u32()),
            nc: None,
            otn: None,
            algorithm: AtomicU8::new(0),
            qop_default: 0,
            realm_prefix: String::new(),
            use_domain: false,
            force_stateless_reply: false,
        }
    }

    /// A new nonce, recorded in the nonce-count tables.
    pub fn new_nonce(&self) -> String {
        let (n, seq) = self.nonces.make(now_u32());
        if let Some(t) = &self.nc {
            t.issue(seq);
        }
        if let Some(t) = &self.otn {
            t.issue(seq);
        }
        n
    }

    /// The algorithm challenges announce (`None`: MD5 without an `algorithm` parameter).
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self.algorithm.load(Ordering::Relaxed) {
            1 => Some(Algorithm::Md5),
            2 => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    fn strip_realm<'r>(&self, realm: &'r str) -> &'r str {
        if self.realm_prefix.is_empty() {
            return realm;
        }
        realm.strip_prefix(&*self.realm_prefix).unwrap_or(realm)
    }

    /// The `WWW-Authenticate`/`Proxy-Authenticate` value for `realm` with challenge `flags`
    /// (1 qop=auth, 2 qop=auth-int, 16 stale=true); `stale` forces stale=true.
    pub fn challenge_value(&self, realm: &str, flags: i32, stale: bool) -> String {
        let mut v = String::with_capacity(128);
        self.challenge_into(&mut v, realm, flags, stale);
        v
    }

    /// [`AuthState::challenge_value`] appended to `v`.
    fn challenge_into(&self, v: &mut String, realm: &str, flags: i32, stale: bool) {
        let realm = self.strip_realm(realm);
        v.push_str("Digest realm=\"");
        for c in realm.chars() {
            if c == '"' || c == '\\' {
                v.push('\\');
            }
            if c != '\r' && c != '\n' {
                v.push(c);
            }
        }
        v.push_str("\", nonce=\"");
        v.push_str(&self.new_nonce());
        v.push('"');
        if stale || flags & 16 != 0 {
            v.push_str(", stale=true");
        }
        if let Some(a) = self.algorithm() {
            v.push_str(", algorithm=");
            v.push_str(a.name());
        }
        let qflags = if flags & 3 == 0 {
            self.qop_default
        } else {
            flags
        };
        if qflags & 2 != 0 {
            v.push_str(", qop=\"auth-int\"");
        } else if qflags & 1 != 0 {
            v.push_str(", qop=\"auth\"");
        }
    }
}

fn now_u32() -> u32 {
    u32::try_from(crate::store::now_unix()).unwrap_or(u32::MAX)
}

fn random_bytes() -> Vec<u8> {
    let mut b = vec![0u8; 32];
    if getrandom::getrandom(&mut b).is_err() {
        // No OS randomness: fall back to time and address entropy (logged at setup).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let addr = &b as *const _ as usize as u128;
        let seed = digest::Algorithm::Sha256.hash(&[&t.to_be_bytes(), &addr.to_be_bytes()]);
        b = seed.into_bytes();
    }
    b
}

fn random_u32() -> u32 {
    let b = random_bytes();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Set up `auth` from its modparams.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let p = ctx.params("auth");
    p.check_known(&[
        "secret",
        "nonce_expire",
        "nonce_auth_max_drift",
        "nonce_count",
        "one_time_nonce",
        "nid_pool_no",
        "nc_array_size",
        "nc_array_order",
        "otn_in_flight_no",
        "otn_in_flight_order",
        "qop",
        "algorithm",
        "realm_prefix",
        "use_domain",
        "force_stateless_reply",
        "auth_checks_register",
        "auth_checks_no_dlg",
        "auth_checks_in_dlg",
        "add_authinfo_hdr",
    ])?;
    for unsupported in [
        "auth_checks_register",
        "auth_checks_no_dlg",
        "auth_checks_in_dlg",
        "add_authinfo_hdr",
    ] {
        if p.int(unsupported, 0)? != 0 {
            return Err(p
                .error(unsupported, "not supported by sipd (only 0)")
                .into());
        }
    }
    let secret = match p.str("secret")? {
        Some(s) if s.is_empty() => return Err(p.error("secret", "must not be empty").into()),
        Some(s) => s.into_bytes(),
        None => random_bytes(),
    };
    let secs = |name: &str, default: i64| -> Result<u32, SetupError> {
        let v = p.int(name, default)?;
        u32::try_from(v)
            .ok()
            .filter(|v| *v > 0 || name == "nonce_auth_max_drift")
            .ok_or_else(|| p.error(name, "must be a positive number of seconds").into())
    };
    let expire = secs("nonce_expire", 300)?;
    let drift = secs("nonce_auth_max_drift", 3)?;
    let size = |n: &str, order: &str, default_order: i64| -> Result<usize, SetupError> {
        let o = p.int(order, default_order)?;
        if !(6..=26).contains(&o) {
            return Err(p.error(order, "must be 6..26").into());
        }
        let n = p.int(n, 1 << o)?;
        usize::try_from(n)
            .ok()
            .filter(|n| (1..=1 << 26).contains(n))
            .ok_or_else(|| p.error("nc_array_size", "must be 1..67108864").into())
    };
    let algorithm = match p.str("algorithm")?.as_deref() {
        None | Some("") => 0,
        Some(a) => match Algorithm::parse(a) {
            Some((Algorithm::Md5, false)) => 1,
            Some((Algorithm::Sha256, false)) => 2,
            _ => return Err(p.error("algorithm", "must be MD5 or SHA-256").into()),
        },
    };
    let qop_default = match p.str("qop")?.as_deref() {
        None | Some("") => 0,
        Some(q) if q.eq_ignore_ascii_case("auth") => 1,
        Some(q) if q.eq_ignore_ascii_case("auth-int") => 2,
        Some(_) => {
            return Err(p
                .error("qop", "must be \"auth\", \"auth-int\" or \"\"")
                .into())
        }
    };
    let _ = p.int("nid_pool_no", 1)?;
    let state = AuthState {
        nonces: Nonces::new(&secret, expire, drift, random_u32()),
        nc: if p.int("nonce_count", 0)? != 0 {
            Some(NcTable::new(size("nc_array_size", "nc_array_order", 20)?))
        } else {
            None
        },
        otn: if p.int("one_time_nonce", 0)? != 0 {
            Some(NcTable::new(size(
                "otn_in_flight_no",
                "otn_in_flight_order",
                20,
            )?))
        } else {
            None
        },
        algorithm: AtomicU8::new(algorithm),
        qop_default,
        realm_prefix: p.str("realm_prefix")?.unwrap_or_default(),
        use_domain: p.int("use_domain", 0)? != 0,
        force_stateless_reply: p.int("force_stateless_reply", 0)? != 0,
    };
    ctx.services.insert(Arc::new(state));
    Ok(())
}

/// Where the HA1 of a user comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// A plain-text password: HA1 is computed with the credentials' algorithm.
    Password(String),
    /// A stored HA1 (hex); it must be of the credentials' algorithm.
    Ha1(String),
    /// No such user (-3).
    UnknownUser,
    /// The lookup failed (-1).
    Error,
}

/// Which credentials header a function reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hf {
    /// `Authorization` (www_*: REGISTER and friends, challenged with 401).
    Www,
    /// `Proxy-Authorization` (proxy_*: challenged with 407).
    Proxy,
}

impl Hf {
    /// WWW for REGISTER, proxy for the rest (`auth_check`, `auth_challenge`).
    pub fn for_method(msg: &SipMsg) -> Hf {
        if view::method(&msg.message).is_some_and(|m| m.eq_ignore_ascii_case("REGISTER")) {
            Hf::Www
        } else {
            Hf::Proxy
        }
    }

    fn kind(self) -> HeaderKind {
        match self {
            Hf::Www => HeaderKind::Authorization,
            Hf::Proxy => HeaderKind::ProxyAuthorization,
        }
    }
}

fn is_ack_or_cancel(msg: &SipMsg) -> bool {
    matches!(view::method(&msg.message), Some("ACK" | "CANCEL"))
}

/// Authenticate the request's credentials for `realm` in header `hf`, with the HA1 source
/// `secret` gives for the credentials, and `method` (the request's when `None`). Returns
/// Kamailio's codes (see the module doc); on success marks the header for
/// `consume_credentials`, and on a stale or reused nonce with a right digest marks the
/// message so the next challenge says `stale=true`.
pub fn authenticate(
    msg: &mut SipMsg,
    realm: &str,
    hf: Hf,
    method: Option<&str>,
    secret: &mut dyn FnMut(&Credentials<'_>) -> Secret,
) -> i32 {
    if !msg.message.is_request() {
        return code::ERROR;
    }
    if is_ack_or_cancel(msg) {
        return code::OK;
    }
    let Some(env) = msg.env.services.get_arc::<AuthState>() else {
        msg.log(
            LogLevel::Err,
            "auth: module not set up (add it to `modules`)",
        );
        return code::ERROR;
    };
    let state = &*env;
    let realm = state.strip_realm(realm);
    // One parse per header; the credentials borrow the message (only `msg.route` and the
    // error paths need it mutably, after the last use of the credentials).
    let mut found = Err(None);
    for h in msg.message.find_kind(hf.kind()) {
        match digest::parse(h.value) {
            Ok(c) if c.realm.eq_ignore_ascii_case(realm) => {
                found = Ok((h.index, c));
                break;
            }
            Ok(_) | Err(digest::DigestError::NotDigest) => {}
            Err(e) => {
                found = Err(Some(e));
                break;
            }
        }
    }
    let (index, c) = match found {
        Ok(f) => f,
        Err(None) => return code::NO_CREDENTIALS,
        Err(Some(e)) => {
            msg.log(LogLevel::Err, &format!("auth: bad credentials: {e}"));
            crate::sl::sl_send_reply(msg, 400, "Bad Request");
            return code::ERROR;
        }
    };
    if c.username.is_empty() {
        msg.log(LogLevel::Err, "auth: empty username in credentials");
        crate::sl::sl_send_reply(msg, 400, "Bad Request");
        return code::ERROR;
    }
    let check = state.nonces.check(&c.nonce, now_u32());
    let seq = match check {
        NonceCheck::Invalid => {
            msg.log(LogLevel::Debug, "auth: nonce not issued by this server");
            return code::ERROR;
        }
        NonceCheck::Stale => None,
        NonceCheck::Fresh(seq) => Some(seq),
    };
    let (alg, _) = c.algorithm;
    let ha1 = match secret(&c) {
        Secret::Password(p) => digest::ha1(alg, &c.username, &c.realm, &p),
        Secret::Ha1(h) => h,
        Secret::UnknownUser if seq.is_none() => return code::STALE_NONCE,
        Secret::UnknownUser => return code::USER_UNKNOWN,
        Secret::Error => return code::ERROR,
    };
    let method = match method {
        Some(m) if !m.is_empty() => m,
        _ => view::method(&msg.message).unwrap_or(""),
    };
    let right = digest::response_ok(&c, &ha1, method, msg.message.body());
    let Some(seq) = seq else {
        if right {
            msg.route.auth_stale = true;
        }
        return code::STALE_NONCE;
    };
    if !right {
        return code::INVALID_PASSWORD;
    }
    let counted = match (&c.nc, &state.nc, &state.otn) {
        (Some((_, nc)), Some(t), _) => Some(t.check(seq, *nc)),
        (None, _, Some(t)) | (Some(_), None, Some(t)) => Some(t.check(seq, 1)),
        _ => None,
    };
    match counted {
        Some(NcCheck::Reused) => {
            msg.route.auth_stale = true;
            code::NONCE_REUSED
        }
        Some(NcCheck::Unknown) => {
            msg.route.auth_stale = true;
            code::STALE_NONCE
        }
        Some(NcCheck::Ok) | None => {
            msg.route.auth_cred = Some(index);
            code::OK
        }
    }
}

/// Whether the user part (and, with `use_domain`, the host) of `uri` matches the auth user.
pub fn uri_matches_user(uri: &str, c_user: &str, c_domain: Option<&str>, domain: bool) -> bool {
    let Ok(u) = kemi_runtime::sip::Uri::parse(uri) else {
        return false;
    };
    if u.user.unwrap_or("") != c_user {
        return false;
    }
    !domain || c_domain.is_none_or(|d| u.host_unbracketed().eq_ignore_ascii_case(d))
}

/// The credentials header authenticated in this message, parsed (`None` when none was).
pub fn authorized_username(msg: &SipMsg) -> Option<String> {
    let idx = msg.route.auth_cred?;
    let h = msg.message.header(idx)?;
    digest::parse(h.value).ok().map(|c| c.username.into_owned())
}

/// Send `code` `reason` with `header` (a full line), statefully when a transaction exists
/// (unless `force_stateless_reply`).
fn send_with(msg: &mut SipMsg, code: i32, reason: &str, header: Option<String>) -> i32 {
    let stateless = msg
        .env
        .services
        .get::<AuthState>()
        .is_none_or(|s| s.force_stateless_reply);
    let pushed = header.is_some();
    if let Some(h) = header {
        msg.route.reply_headers.push(h);
    }
    let r = if msg.tm.exists && !stateless {
        crate::tm::reply::t_reply(msg, code, reason)
    } else {
        crate::sl::sl_send_reply(msg, code, reason)
    };
    if pushed {
        msg.route.reply_headers.pop();
    }
    r
}

/// Challenge with a 401 (`Hf::Www`) or a 407 (`Hf::Proxy`): Kamailio's return codes (1 sent;
/// -1 bad realm; -3 the reply could not be sent).
fn challenge(msg: &mut SipMsg, realm: &str, flags: i32, hf: Hf) -> i32 {
    if is_ack_or_cancel(msg) {
        return 1;
    }
    let Some(state) = msg.env.services.get_arc::<AuthState>() else {
        msg.log(
            LogLevel::Err,
            "auth: module not set up (add it to `modules`)",
        );
        return -1;
    };
    if realm.is_empty() {
        msg.log(LogLevel::Err, "auth: empty realm");
        if flags & 4 == 0 {
            send_with(msg, 500, "Internal Server Error", None);
        }
        return -1;
    }
    let (name, code, reason) = match hf {
        Hf::Www => ("WWW-Authenticate: ", 401, "Unauthorized"),
        Hf::Proxy => ("Proxy-Authenticate: ", 407, "Proxy Authentication Required"),
    };
    let mut header = String::with_capacity(192);
    header.push_str(name);
    state.challenge_into(&mut header, realm, flags, msg.route.auth_stale);
    header.push_str("\r\n");
    if send_with(msg, code, reason, Some(header)) < 0 {
        return -3;
    }
    1
}

/// Challenge with `401 Unauthorized` and a `WWW-Authenticate` header for `realm`; `flags`: 1
/// qop=auth, 2 qop=auth-int, 4 no automatic 500 on errors, 16 stale=true. Returns 1, or -1.
#[kemi(module = "auth")]
pub fn www_challenge(msg: &mut SipMsg, realm: &str, flags: i32) -> i32 {
    challenge(msg, realm, flags, Hf::Www)
}

/// Challenge with `407 Proxy Authentication Required` and a `Proxy-Authenticate` header;
/// `flags` as `www_challenge`. Returns 1, or -1.
#[kemi(module = "auth")]
pub fn proxy_challenge(msg: &mut SipMsg, realm: &str, flags: i32) -> i32 {
    challenge(msg, realm, flags, Hf::Proxy)
}

/// `www_challenge` for REGISTER, `proxy_challenge` for the other requests. Returns 1 (also
/// for ACK and CANCEL, which are never challenged), or -1.
#[kemi(module = "auth")]
pub fn auth_challenge(msg: &mut SipMsg, realm: &str, flags: i32) -> i32 {
    let hf = Hf::for_method(msg);
    challenge(msg, realm, flags, hf)
}

/// Remove the credentials header that authenticated this request (after `www_authenticate`,
/// `auth_check`, ...), so it is not forwarded. Returns 1, or -1 when none did.
#[kemi(module = "auth")]
pub fn consume_credentials(msg: &mut SipMsg) -> i32 {
    match msg.route.auth_cred {
        Some(idx) => {
            msg.route
                .edits
                .push(kemi_runtime::sip::HeaderEdit::Remove(idx));
            1
        }
        None => {
            if !is_ack_or_cancel(msg) {
                msg.log(
                    LogLevel::Err,
                    "auth: no authorized credentials to consume (authenticate first)",
                );
            }
            -1
        }
    }
}

/// 1 when the request has an `Authorization` or `Proxy-Authorization` header with Digest
/// credentials for `realm`, -1 otherwise.
#[kemi(module = "auth")]
pub fn has_credentials(msg: &mut SipMsg, realm: &str) -> i32 {
    let m = &msg.message;
    let found = m
        .find_kind(HeaderKind::Authorization)
        .chain(m.find_kind(HeaderKind::ProxyAuthorization))
        .any(|h| {
            crate::pv::auth::digest_param(h.value, "realm")
                .is_some_and(|r| r.eq_ignore_ascii_case(realm))
        });
    if found {
        1
    } else {
        -1
    }
}

/// The secret a `pv_*` function was given: `flags & 1` means `passwd` is an HA1.
fn pv_secret(passwd: &str, flags: i32) -> Secret {
    if flags & 1 != 0 {
        Secret::Ha1(passwd.to_string())
    } else {
        Secret::Password(passwd.to_string())
    }
}

fn pv_auth(
    msg: &mut SipMsg,
    realm: &str,
    passwd: &str,
    flags: i32,
    hf: Hf,
    m: Option<&str>,
) -> i32 {
    if realm.is_empty() {
        msg.log(LogLevel::Err, "auth: empty realm");
        return code::ERROR;
    }
    authenticate(msg, realm, hf, m, &mut |_| pv_secret(passwd, flags))
}

/// Check the `Authorization` credentials for `realm` against `passwd` (an HA1 when `flags &
/// 1`). Returns 1 or a negative code (-1 error, -2 wrong password, -4 stale nonce, -5 no
/// credentials, -6 nonce reused). The challenge-building flags (2, 4, 8, 16) are ignored.
#[kemi(module = "auth")]
pub fn pv_www_authenticate(msg: &mut SipMsg, realm: &str, passwd: &str, flags: i32) -> i32 {
    pv_auth(msg, realm, passwd, flags, Hf::Www, None)
}

/// `pv_www_authenticate` with `method` instead of the request's method in the digest.
#[kemi(module = "auth")]
pub fn pv_www_authenticate_method(
    msg: &mut SipMsg,
    realm: &str,
    passwd: &str,
    flags: i32,
    method: &str,
) -> i32 {
    pv_auth(msg, realm, passwd, flags, Hf::Www, Some(method))
}

/// Like `pv_www_authenticate`, with the `Proxy-Authorization` credentials.
#[kemi(module = "auth")]
pub fn pv_proxy_authenticate(msg: &mut SipMsg, realm: &str, passwd: &str, flags: i32) -> i32 {
    pv_auth(msg, realm, passwd, flags, Hf::Proxy, None)
}

/// `pv_www_authenticate` for REGISTER, `pv_proxy_authenticate` otherwise; with `checks & 1`,
/// the auth user must also be the To user (REGISTER) or the From user (others), else -8.
#[kemi(module = "auth")]
pub fn pv_auth_check(msg: &mut SipMsg, realm: &str, passwd: &str, flags: i32, checks: i32) -> i32 {
    let hf = Hf::for_method(msg);
    let r = pv_auth(msg, realm, passwd, flags, hf, None);
    if r != code::OK || checks & 1 == 0 || is_ack_or_cancel(msg) {
        return r;
    }
    let use_domain = msg
        .env
        .services
        .get::<AuthState>()
        .is_some_and(|s| s.use_domain);
    let Some(username) = authorized_username(msg) else {
        return code::USER_MISMATCH;
    };
    let (user, domain) = crate::pv::auth::split_username(&username);
    let party = if hf == Hf::Www {
        view::to_hdr(&msg.message)
    } else {
        view::from_hdr(&msg.message)
    };
    let domain = domain.or(Some(realm));
    match party {
        Some(p) if uri_matches_user(p.uri, user, domain, use_domain) => code::OK,
        _ => code::USER_MISMATCH,
    }
}

/// Build a `WWW-Authenticate` value for `realm` (`flags` as `www_challenge`) and store it in
/// the variable named `pvdest` (for example `$var(wauth)`). Returns 1, or -1.
#[kemi(module = "auth")]
pub fn auth_get_www_authenticate(msg: &mut SipMsg, realm: &str, flags: i32, pvdest: &str) -> i32 {
    let Some(state) = msg.env.services.get_arc::<AuthState>() else {
        msg.log(
            LogLevel::Err,
            "auth: module not set up (add it to `modules`)",
        );
        return -1;
    };
    if realm.is_empty() {
        return -1;
    }
    let v = format!(
        "WWW-Authenticate: {}\r\n",
        state.challenge_value(realm, flags, false)
    );
    if crate::pv::sets(msg, pvdest, &v) {
        1
    } else {
        -1
    }
}

/// Set the algorithm challenges announce: `MD5` or `SHA-256` (for every worker). Returns 1,
/// or -1 for another name.
#[kemi(module = "auth")]
pub fn auth_algorithm(msg: &mut SipMsg, alg: &str) -> i32 {
    let Some(state) = msg.env.services.get_arc::<AuthState>() else {
        msg.log(
            LogLevel::Err,
            "auth: module not set up (add it to `modules`)",
        );
        return -1;
    };
    let v = match Algorithm::parse(alg) {
        Some((Algorithm::Md5, false)) => 1,
        Some((Algorithm::Sha256, false)) => 2,
        _ => {
            msg.log(
                LogLevel::Err,
                &format!("auth: unsupported algorithm `{alg}`"),
            );
            return -1;
        }
    };
    state.algorithm.store(v, Ordering::Relaxed);
    1
}
