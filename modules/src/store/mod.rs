//! The store: where the stateful modules keep what must outlive a restart or be edited by the
//! operator (registrations, subscribers, trusted addresses, hash-table rows), behind one small
//! trait, [`Store`], with its backends here and nowhere else.
//!
//! Rows have the shapes of Kamailio's schema (`location`, `subscriber`, `address`, `htable`), so
//! an operator's existing tables fit. Modules reach the store only through [`Store`]; the message
//! path never waits on it except where Kamailio also does (auth_db's subscriber read): writes go
//! through a [`Writer`], a background thread with a bounded queue.
//!
//! - [`sqlite`]: the embedded default (`sqlite:///path/sipd.db`, `sqlite::memory:`).
//! - [`redis`]: a Redis server shared by several nodes (`redis://`, `rediss://`), which also
//!   tells each node what the others changed ([`Change`]).
//! - [`writer`]: write-behind queue and its flush.

pub mod redis;
pub mod sqlite;
pub mod writer;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use writer::Writer;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend this build has, or is malformed.
    #[error("database URL `{url}`: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A table name that is not a plain identifier.
    #[error("table name `{0}` is not a plain identifier")]
    TableName(String),
    /// The backend refused or failed.
    #[error("{backend}: {message}")]
    Backend {
        /// `sqlite`, `redis`...
        backend: &'static str,
        /// The backend's message.
        message: String,
    },
}

/// One registered contact: a row of Kamailio's `location` table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocationRow {
    /// Unique id of the record (Kamailio's `ruid`).
    pub ruid: String,
    /// AoR user part (or the whole AoR when domains are not used).
    pub username: String,
    /// AoR domain ("" when `use_domain` is off).
    pub domain: String,
    /// The Contact URI.
    pub contact: String,
    /// Where the REGISTER came from (`sip:ip:port;transport=...`), when NAT handling set it.
    pub received: String,
    /// The Path header value (RFC 3327), comma-joined.
    pub path: String,
    /// Absolute expiry, Unix seconds.
    pub expires: i64,
    /// q-value times 1000 (`q=0.5` is 500; -1 when none was given).
    pub q: i32,
    /// Call-ID of the REGISTER.
    pub callid: String,
    /// CSeq number of the REGISTER.
    pub cseq: i32,
    /// Unix seconds of the last change.
    pub last_modified: i64,
    /// usrloc flags.
    pub flags: i32,
    /// Branch flags saved with the contact.
    pub cflags: i32,
    /// User-Agent of the REGISTER.
    pub user_agent: String,
    /// Local socket it arrived on (`udp:127.0.0.1:5060`).
    pub socket: String,
    /// Methods the contact accepts (bit mask; -1 when unknown).
    pub methods: i32,
    /// `+sip.instance` (RFC 5626).
    pub instance: String,
    /// `reg-id` (RFC 5626), 0 when none.
    pub reg_id: i32,
}

/// A subscriber: a row of Kamailio's `subscriber` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscriber {
    /// User name.
    pub username: String,
    /// Domain (realm).
    pub domain: String,
    /// Plain-text password ("" when only the HA1 hashes are kept).
    pub password: String,
    /// MD5(username:domain:password).
    pub ha1: String,
    /// MD5(username@domain:domain:password).
    pub ha1b: String,
}

/// A trusted address: a row of Kamailio's `address` table (permissions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressRow {
    /// Group id.
    pub grp: i32,
    /// IP address (v4 or v6), or a host name.
    pub ip_addr: String,
    /// Prefix length (32 or 128 for one address).
    pub mask: i32,
    /// Port, 0 for any.
    pub port: i32,
    /// Free text returned in `$avp(tag)` by Kamailio.
    pub tag: String,
}

/// A hash-table item: a row of Kamailio's `htable` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtableRow {
    /// The key.
    pub key_name: String,
    /// The value.
    pub value: HtableValue,
    /// Absolute expiry, Unix seconds (0: never).
    pub expires: i64,
}

/// A hash-table value (`value_type` 0 is a string, 1 an integer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HtableValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
}

/// What another node changed in a shared store ([`Store::watch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The bindings of `aor` in location table `table` changed: read them again.
    Location {
        /// The location table.
        table: String,
        /// The AoR (`user` or `user@domain`, as usrloc keys it).
        aor: String,
    },
    /// The store is reachable again after an outage, or for the first time: changes may have
    /// been missed. `lost` is true when the store lost its data meanwhile (a Redis restarted
    /// without persistence): what the node holds should be written back before reading.
    Resync {
        /// The store came back empty (its generation changed).
        lost: bool,
    },
}

/// The callback of [`Store::watch`]; runs on the store's listener thread.
pub type ChangeFn = Arc<dyn Fn(Change) + Send + Sync>;

/// The AoR usrloc keys a location row by: `user@domain`, or `user` when the domain is empty.
pub fn row_aor(r: &LocationRow) -> String {
    if r.domain.is_empty() {
        r.username.clone()
    } else {
        format!("{}@{}", r.username, r.domain)
    }
}

/// A destination of Kamailio's `dispatcher` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DispatcherRow {
    /// The set id.
    pub setid: i32,
    /// The destination SIP URI.
    pub destination: String,
    /// The flags (state and probing bits).
    pub flags: i64,
    /// The priority (higher first).
    pub priority: i64,
    /// The attributes (`duid=...;weight=...`).
    pub attrs: String,
}

/// The storage every stateful module shares. Table names are Kamailio's defaults unless a
/// modparam or a function argument names another (`auth_check(realm, "subscriber", ...)`);
/// backends refuse names that are not plain identifiers.
pub trait Store: Send + Sync + fmt::Debug {
    /// The backend's name, for logs (`sqlite`).
    fn backend(&self) -> &'static str;

    /// Every contact of location table `table`.
    fn locations(&self, table: &str) -> Result<Vec<LocationRow>, StoreError>;
    /// Insert or replace the contact with `row.ruid`.
    fn put_location(&self, table: &str, row: &LocationRow) -> Result<(), StoreError>;
    /// Remove the contact `ruid`; absent is not an error.
    fn delete_location(&self, table: &str, ruid: &str) -> Result<(), StoreError>;

    /// The subscriber `username`@`domain` (domain "" matches any domain).
    fn subscriber(
        &self,
        table: &str,
        username: &str,
        domain: &str,
    ) -> Result<Option<Subscriber>, StoreError>;
    /// Insert or replace a subscriber.
    fn put_subscriber(&self, table: &str, s: &Subscriber) -> Result<(), StoreError>;
    /// Remove a subscriber; false when there was none.
    fn delete_subscriber(
        &self,
        table: &str,
        username: &str,
        domain: &str,
    ) -> Result<bool, StoreError>;
    /// Every subscriber.
    fn subscribers(&self, table: &str) -> Result<Vec<Subscriber>, StoreError>;

    /// Every trusted address.
    fn addresses(&self, table: &str) -> Result<Vec<AddressRow>, StoreError>;
    /// Add a trusted address.
    fn add_address(&self, table: &str, row: &AddressRow) -> Result<(), StoreError>;
    /// Remove trusted addresses equal to `row` (group, address, mask, port); how many went.
    fn delete_address(&self, table: &str, row: &AddressRow) -> Result<usize, StoreError>;

    /// Every row of hash-table table `table`.
    fn htable_rows(&self, table: &str) -> Result<Vec<HtableRow>, StoreError>;
    /// Insert or replace the row of `row.key_name`.
    fn put_htable(&self, table: &str, row: &HtableRow) -> Result<(), StoreError>;
    /// Remove the row of `key`.
    fn delete_htable(&self, table: &str, key: &str) -> Result<(), StoreError>;

    /// Whether other nodes share this store (so a node's memory may be missing what they
    /// wrote, and [`Store::watch`] tells about their changes). False for SQLite.
    fn shared(&self) -> bool {
        false
    }

    /// Whether the store answers now (false during an outage, without waiting).
    fn available(&self) -> bool {
        true
    }

    /// The contacts of one AoR (as [`row_aor`] names it) of location table `table`.
    fn location_aor(&self, table: &str, aor: &str) -> Result<Vec<LocationRow>, StoreError> {
        Ok(self
            .locations(table)?
            .into_iter()
            .filter(|r| row_aor(r) == aor)
            .collect())
    }

    /// Call `f` on every change another node makes (and on reconnects), from a thread of the
    /// store's, until the store is dropped. Stores that are not shared never call it.
    fn watch(&self, f: ChangeFn) -> Result<(), StoreError> {
        let _ = f;
        Ok(())
    }

    /// Every destination of dispatcher table `table`, in id order. Backends without it say so.
    fn dispatcher_rows(&self, table: &str) -> Result<Vec<DispatcherRow>, StoreError> {
        Err(StoreError::Backend {
            backend: self.backend(),
            message: format!("no dispatcher table `{table}` in this backend"),
        })
    }
}

/// The shared handle modules keep.
pub type StoreRef = Arc<dyn Store>;

/// Open the store named by `url`; a relative file path resolves against `base`.
///
/// - `sqlite:///abs/path.db`, `sqlite://relative/path.db`, `sqlite:path.db`
/// - `sqlite::memory:` (nothing survives the process; for tests and `route-test`)
pub fn open(url: &str, base: &Path) -> Result<StoreRef, StoreError> {
    let bad = |reason: &str| StoreError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| bad("expected scheme:location, e.g. sqlite:///var/lib/sipd/sipd.db"))?;
    match scheme {
        "sqlite" => {
            if rest == ":memory:" {
                return Ok(Arc::new(sqlite::SqliteStore::memory()?));
            }
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(bad("no file path"));
            }
            let path = Path::new(path);
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base.join(path)
            };
            Ok(Arc::new(sqlite::SqliteStore::open(&path)?))
        }
        "redis" | "rediss" => Ok(Arc::new(redis::RedisStore::open(url)?)),
        "mysql" | "postgres" => Err(bad("backend not built in (sqlite and redis only)")),
        _ => Err(bad("unknown scheme (known: sqlite, redis, rediss)")),
    }
}

/// Check the syntax of a store URL without opening anything (configuration checks).
pub fn open_check(url: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| StoreError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    match url.split_once(':') {
        Some(("sqlite", rest))
            if rest == ":memory:" || !rest.trim_start_matches('/').is_empty() =>
        {
            Ok(())
        }
        Some(("sqlite", _)) => Err(bad("no file path")),
        Some(("redis" | "rediss", _)) => redis::RedisStore::check_url(url),
        Some((other, _)) => Err(bad(&format!(
            "unknown scheme `{other}` (known: sqlite, redis, rediss)"
        ))),
        None => Err(bad(
            "expected scheme:location, e.g. sqlite:///var/lib/sipd/sipd.db",
        )),
    }
}

/// Refuse table names that are not `[A-Za-z_][A-Za-z0-9_]*` (they are pasted into SQL).
pub fn check_table(name: &str) -> Result<&str, StoreError> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') && name.len() <= 64 {
        Ok(name)
    } else {
        Err(StoreError::TableName(name.to_string()))
    }
}

/// The current time in Unix seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let base = Path::new("/tmp");
        assert!(open("sqlite::memory:", base).is_ok());
        assert!(matches!(
            open("nosuch://x", base),
            Err(StoreError::Url { .. })
        ));
        assert!(matches!(
            open("mysql://u:p@h/db", base),
            Err(StoreError::Url { .. })
        ));
        assert!(matches!(
            open("sqlite://", base),
            Err(StoreError::Url { .. })
        ));
        assert!(check_table("location").is_ok());
        assert!(check_table("loc; drop").is_err());
        assert!(check_table("").is_err());
    }
}
