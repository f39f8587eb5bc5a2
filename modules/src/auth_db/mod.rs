//! The `auth_db` module (`KSR.auth_db.*`): Digest authentication against the subscribers of
//! the store (Kamailio's `subscriber` table: username, domain, password, ha1, ha1b), on top of
//! [`crate::auth`].
//!
//! Reading a subscriber is the one store read on the message path (Kamailio's auth_db does
//! one too). A small cache in front of it (16 shards, at most 4096 users, entries kept
//! `cache_ttl` seconds, 5 by default, 0 turns it off; unknown users are cached too) keeps a
//! REGISTER burst from queueing on the store; a password changed by `sipd user add` is used
//! at the latest `cache_ttl` seconds later.
//!
//! Modparams (Kamailio's names): `db_url`, `user_column` (`username`), `domain_column`
//! (`domain`), `password_column` (`ha1`), `password_column_2` (`ha1b`), `calculate_ha1` (0),
//! `use_domain` (0), `load_credentials` (only `""`), `version_table`, `force_generate_avps`
//! (accepted, no effect); sipd's own: `cache_ttl`. Column parameters must name columns of the
//! subscriber shape.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashTable};
use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};

use crate::auth::digest::Credentials;
use crate::auth::{self, code, Hf, Secret};
use crate::setup::{SetupCtx, SetupError};
use crate::store::{Subscriber, Writer};
use crate::view;

/// A column of the subscriber shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// `password` (plain text).
    Password,
    /// `ha1`.
    Ha1,
    /// `ha1b`.
    Ha1b,
}

impl Column {
    fn parse(s: &str) -> Option<Column> {
        match s {
            "password" => Some(Column::Password),
            "ha1" => Some(Column::Ha1),
            "ha1b" => Some(Column::Ha1b),
            _ => None,
        }
    }

    fn of(self, s: &Subscriber) -> &str {
        match self {
            Column::Password => &s.password,
            Column::Ha1 => &s.ha1,
            Column::Ha1b => &s.ha1b,
        }
    }
}

const SHARDS: usize = 16;
const SHARD_CAP: usize = 256;

/// A cached answer: (table, user, domain), when it was read, the row (`None`: no such user).
struct Entry {
    table: Box<str>,
    user: Box<str>,
    domain: Box<str>,
    at: Instant,
    row: Option<Arc<Subscriber>>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Entry")
            .field("table", &self.table)
            .field("user", &self.user)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

type Shard = Mutex<HashTable<Entry>>;

/// The auth_db state of one server.
#[derive(Debug)]
pub struct AuthDbState {
    writer: Arc<Writer>,
    calculate_ha1: bool,
    use_domain: bool,
    password_column: Column,
    password_column_2: Column,
    ttl: Duration,
    /// One hash per lookup picks the shard and the bucket.
    hasher: DefaultHashBuilder,
    cache: Box<[Shard]>,
    /// Check outcomes.
    pub stats: AuthStats,
}

impl AuthDbState {
    /// The subscriber `user`@`domain` of `table` ("" domain: any), through the cache.
    pub fn subscriber(
        &self,
        table: &str,
        user: &str,
        domain: &str,
    ) -> Result<Option<Arc<Subscriber>>, crate::store::StoreError> {
        if self.ttl.is_zero() {
            return Ok(self
                .writer
                .store()
                .subscriber(table, user, domain)?
                .map(Arc::new));
        }
        let hash = self.hasher.hash_one((table, user, domain));
        // Bits that neither the bucket index (low) nor the control byte (top 7) uses.
        let shard = &self.cache[(hash >> 32) as usize % SHARDS];
        let is = |e: &Entry| &*e.user == user && &*e.domain == domain && &*e.table == table;
        let now = Instant::now();
        if let Some(e) = shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .find(hash, is)
        {
            if now.duration_since(e.at) < self.ttl {
                return Ok(e.row.clone());
            }
        }
        let row = self
            .writer
            .store()
            .subscriber(table, user, domain)?
            .map(Arc::new);
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        match map.find_mut(hash, is) {
            Some(e) => {
                e.at = now;
                e.row = row.clone();
            }
            None => {
                if map.len() >= SHARD_CAP {
                    map.retain(|e| now.duration_since(e.at) < self.ttl);
                    if map.len() >= SHARD_CAP {
                        map.clear();
                    }
                }
                let entry = Entry {
                    table: table.into(),
                    user: user.into(),
                    domain: domain.into(),
                    at: now,
                    row: row.clone(),
                };
                let hasher = &self.hasher;
                map.insert_unique(hash, entry, |e| {
                    hasher.hash_one((&*e.table, &*e.user, &*e.domain))
                });
            }
        }
        Ok(row)
    }
}

/// Set up `auth_db`: its modparams and its store.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let p = ctx.params("auth_db");
    p.check_known(&[
        "db_url",
        "user_column",
        "domain_column",
        "password_column",
        "password_column_2",
        "calculate_ha1",
        "use_domain",
        "load_credentials",
        "version_table",
        "force_generate_avps",
        "cache_ttl",
    ])?;
    for (name, want) in [("user_column", "username"), ("domain_column", "domain")] {
        if let Some(v) = p.str(name)? {
            if v != want {
                return Err(p
                    .error(name, format!("sipd's subscriber table names it `{want}`"))
                    .into());
            }
        }
    }
    let column = |name: &str, default: Column| -> Result<Column, SetupError> {
        match p.str(name)? {
            None => Ok(default),
            Some(c) => Column::parse(&c).ok_or_else(|| {
                p.error(
                    name,
                    "must be `password`, `ha1` or `ha1b` (the subscriber shape)",
                )
                .into()
            }),
        }
    };
    let password_column = column("password_column", Column::Ha1)?;
    let password_column_2 = column("password_column_2", Column::Ha1b)?;
    if let Some(l) = p.str("load_credentials")? {
        if !l.trim().is_empty() {
            return Err(p
                .error(
                    "load_credentials",
                    "loading columns into AVPs is not supported",
                )
                .into());
        }
    }
    let _ = p.int("version_table", 1)?;
    let _ = p.int("force_generate_avps", 0)?;
    let ttl = p.int("cache_ttl", 5)?;
    let ttl = u64::try_from(ttl)
        .map_err(|_| p.error("cache_ttl", "must be 0 or a positive number of seconds"))?;
    let writer = ctx.store(&p)?;
    // Create the table now (and fail at startup, not on the first REGISTER, if we cannot).
    writer
        .store()
        .subscriber("subscriber", "", "")
        .map_err(SetupCtx::store_error("auth_db"))?;
    let state = AuthDbState {
        writer,
        calculate_ha1: p.int("calculate_ha1", 0)? != 0,
        use_domain: p.int("use_domain", 0)? != 0,
        password_column,
        password_column_2,
        ttl: Duration::from_secs(ttl),
        hasher: DefaultHashBuilder::default(),
        cache: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
        stats: AuthStats::default(),
    };
    ctx.services.insert(Arc::new(state));
    Ok(())
}

/// The HA1 source for credentials `c` in `realm`, as Kamailio's auth_db reads it.
fn lookup(st: &AuthDbState, table: &str, realm: &str, c: &Credentials<'_>) -> Secret {
    let domain = if st.use_domain { realm } else { "" };
    let row = match st.subscriber(table, c.user(), domain) {
        Ok(Some(row)) => row,
        Ok(None) => return Secret::UnknownUser,
        Err(e) => {
            tracing::error!("auth_db: subscriber read from `{table}`: {e}");
            return Secret::Error;
        }
    };
    if st.calculate_ha1 {
        Secret::Password(st.password_column.of(&row).to_string())
    } else if c.user_domain().is_some() {
        Secret::Ha1(st.password_column_2.of(&row).to_ascii_lowercase())
    } else {
        Secret::Ha1(st.password_column.of(&row).to_ascii_lowercase())
    }
}

/// Authenticate against `table`; `user` receives the user part of the credentials that were
/// checked (the authenticated user when the result is 1).
fn db_auth(
    msg: &mut SipMsg,
    realm: &str,
    table: &str,
    hf: Hf,
    method: Option<&str>,
    user: Option<&mut String>,
) -> i32 {
    let Some(st) = msg.env.services.get_arc::<AuthDbState>() else {
        msg.log(
            LogLevel::Err,
            "auth_db: module not set up (add it to `modules`)",
        );
        return code::ERROR;
    };
    if realm.is_empty() || crate::store::check_table(table).is_err() {
        msg.log(
            LogLevel::Err,
            &format!("auth_db: bad realm `{realm}` or table `{table}`"),
        );
        return code::ERROR;
    }
    let mut user = user;
    let r = auth::authenticate(msg, realm, hf, method, &mut |c| {
        if let Some(u) = user.as_deref_mut() {
            u.push_str(c.user());
        }
        lookup(&st, table, realm, c)
    });
    st.stats.count(r);
    r
}

/// Outcomes of the credential checks, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct AuthStats {
    success: AtomicU64,
    failure: AtomicU64,
}

impl AuthStats {
    /// Count the result `r` of a check: 1 is a success; a wrong password, an unknown user, a
    /// stale or reused nonce are failures; no credentials (the first, unchallenged request)
    /// and errors are neither.
    fn count(&self, r: i32) {
        let slot = match r {
            code::OK => &self.success,
            -2 | -3 | -4 | -6 => &self.failure,
            _ => return,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    /// Credentials that checked out.
    pub fn successes(&self) -> u64 {
        self.success.load(Ordering::Relaxed)
    }

    /// Credentials that did not (wrong password, unknown user, stale or reused nonce).
    pub fn failures(&self) -> u64 {
        self.failure.load(Ordering::Relaxed)
    }
}

/// Check the `Authorization` credentials for `realm` against subscriber table `table`.
/// Returns 1 or a negative code (-1 error, -2 wrong password, -3 unknown user, -4 stale
/// nonce, -5 no credentials, -6 nonce reused).
#[kemi(module = "auth_db")]
pub fn www_authenticate(msg: &mut SipMsg, realm: &str, table: &str) -> i32 {
    db_auth(msg, realm, table, Hf::Www, None, None)
}

/// `www_authenticate` with `method` instead of the request's method in the digest.
#[kemi(module = "auth_db")]
pub fn www_authenticate_method(msg: &mut SipMsg, realm: &str, table: &str, method: &str) -> i32 {
    db_auth(msg, realm, table, Hf::Www, Some(method), None)
}

/// The user and host of `uri`.
fn user_host(uri: &str) -> Option<(String, String)> {
    let u = kemi_runtime::sip::Uri::parse(uri).ok()?;
    Some((u.user?.to_string(), u.host_unbracketed().to_string()))
}

/// `www_authenticate` for REGISTER, proxy authentication (`Proxy-Authorization`) for the
/// rest. With `flags & 1` the auth user must be the From and To user (REGISTER), the From, To
/// and R-URI user (PUBLISH), or the From user (others), each in domain `realm`, else -8;
/// `flags & 2` skips that check for INVITE, BYE, PRACK, UPDATE and MESSAGE.
#[kemi(module = "auth_db")]
pub fn auth_check(msg: &mut SipMsg, realm: &str, table: &str, flags: i32) -> i32 {
    let hf = Hf::for_method(msg);
    let mut user = String::new();
    let r = db_auth(msg, realm, table, hf, None, Some(&mut user));
    if r != code::OK || flags & 1 == 0 || !msg.message.is_request() {
        return r;
    }
    let m = &msg.message;
    let method = view::method(m).unwrap_or("");
    let is = |name: &str| method.eq_ignore_ascii_case(name);
    if is("ACK") || is("CANCEL") {
        return r;
    }
    if flags & 2 != 0
        && ["INVITE", "BYE", "PRACK", "UPDATE", "MESSAGE"]
            .into_iter()
            .any(is)
    {
        return r;
    }
    let user = user.as_str();
    let matches = |uri: Option<&str>| {
        uri.and_then(|u| kemi_runtime::sip::Uri::parse(u).ok())
            .is_some_and(|u| {
                u.user == Some(user) && u.host_unbracketed().eq_ignore_ascii_case(realm)
            })
    };
    let from = || matches(view::from_hdr(m).map(|p| p.uri));
    let to = || matches(view::to_hdr(m).map(|p| p.uri));
    let ok = if is("REGISTER") {
        to() && from()
    } else if is("PUBLISH") {
        to() && from() && matches(view::current_ruri(msg))
    } else {
        from()
    };
    if ok {
        r
    } else {
        code::USER_MISMATCH
    }
}

/// 1 when `uri`'s user is a subscriber of `table` (in `uri`'s domain when `flags & 1`), -1
/// otherwise or for a URI without a user.
#[kemi(module = "auth_db")]
pub fn is_subscriber(msg: &mut SipMsg, uri: &str, table: &str, flags: i32) -> i32 {
    let Some(st) = msg.env.services.get_arc::<AuthDbState>() else {
        msg.log(
            LogLevel::Err,
            "auth_db: module not set up (add it to `modules`)",
        );
        return -1;
    };
    let Some((user, host)) = user_host(uri) else {
        return -1;
    };
    let domain = if flags & 1 != 0 { host.as_str() } else { "" };
    match st.subscriber(table, &user, domain) {
        Ok(Some(_)) => 1,
        Ok(None) => -1,
        Err(e) => {
            msg.log(LogLevel::Err, &format!("auth_db: is_subscriber: {e}"));
            -1
        }
    }
}
