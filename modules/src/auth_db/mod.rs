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

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

type Key = (String, String, String);
type Shard = Mutex<HashMap<Key, (Instant, Option<Subscriber>)>>;

/// The auth_db state of one server.
#[derive(Debug)]
pub struct AuthDbState {
    writer: Arc<Writer>,
    calculate_ha1: bool,
    use_domain: bool,
    password_column: Column,
    password_column_2: Column,
    ttl: Duration,
    hasher: RandomState,
    cache: Box<[Shard]>,
}

impl AuthDbState {
    /// The subscriber `user`@`domain` of `table` ("" domain: any), through the cache.
    pub fn subscriber(
        &self,
        table: &str,
        user: &str,
        domain: &str,
    ) -> Result<Option<Subscriber>, crate::store::StoreError> {
        if self.ttl.is_zero() {
            return self.writer.store().subscriber(table, user, domain);
        }
        let key = (table.to_string(), user.to_string(), domain.to_string());
        let shard = &self.cache[self.hasher.hash_one(&key) as usize % SHARDS];
        let now = Instant::now();
        if let Some((at, v)) = shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            if now.duration_since(*at) < self.ttl {
                return Ok(v.clone());
            }
        }
        let v = self.writer.store().subscriber(table, user, domain)?;
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= SHARD_CAP {
            map.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            if map.len() >= SHARD_CAP {
                map.clear();
            }
        }
        map.insert(key, (now, v.clone()));
        Ok(v)
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
        hasher: RandomState::new(),
        cache: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
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

fn db_auth(msg: &mut SipMsg, realm: &str, table: &str, hf: Hf, method: Option<&str>) -> i32 {
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
    auth::authenticate(msg, realm, hf, method, &mut |c| {
        lookup(&st, table, realm, c)
    })
}

/// Check the `Authorization` credentials for `realm` against subscriber table `table`.
/// Returns 1 or a negative code (-1 error, -2 wrong password, -3 unknown user, -4 stale
/// nonce, -5 no credentials, -6 nonce reused).
#[kemi(module = "auth_db")]
pub fn www_authenticate(msg: &mut SipMsg, realm: &str, table: &str) -> i32 {
    db_auth(msg, realm, table, Hf::Www, None)
}

/// `www_authenticate` with `method` instead of the request's method in the digest.
#[kemi(module = "auth_db")]
pub fn www_authenticate_method(msg: &mut SipMsg, realm: &str, table: &str, method: &str) -> i32 {
    db_auth(msg, realm, table, Hf::Www, Some(method))
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
    let r = db_auth(msg, realm, table, hf, None);
    if r != code::OK || flags & 1 == 0 || !msg.message.is_request() {
        return r;
    }
    let method = view::method(&msg.message)
        .unwrap_or("")
        .to_ascii_uppercase();
    if matches!(method.as_str(), "ACK" | "CANCEL") {
        return r;
    }
    if flags & 2 != 0
        && matches!(
            method.as_str(),
            "INVITE" | "BYE" | "PRACK" | "UPDATE" | "MESSAGE"
        )
    {
        return r;
    }
    let Some(username) = auth::authorized_username(msg) else {
        return code::USER_MISMATCH;
    };
    let (user, _) = crate::pv::auth::split_username(&username);
    let mut uris: Vec<String> = Vec::new();
    let from = view::from_hdr(&msg.message).map(|p| p.uri.to_string());
    let to = view::to_hdr(&msg.message).map(|p| p.uri.to_string());
    match method.as_str() {
        "REGISTER" => uris.extend([to, from].into_iter().map(Option::unwrap_or_default)),
        "PUBLISH" => {
            uris.extend([to, from].into_iter().map(Option::unwrap_or_default));
            uris.push(view::current_ruri(msg).unwrap_or("").to_string());
        }
        _ => uris.push(from.unwrap_or_default()),
    }
    let ok = uris.iter().all(|u| {
        user_host(u).is_some_and(|(uu, host)| uu == user && host.eq_ignore_ascii_case(realm))
    });
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
