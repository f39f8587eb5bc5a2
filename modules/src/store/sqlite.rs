//! The embedded SQLite backend (rusqlite with SQLite bundled: nothing to install).
//!
//! Tables have Kamailio's SQLite schema shapes and are created on first use, with a row in
//! Kamailio's `version` table. Times (`location.expires`, `last_modified`) are SQLite
//! `DATETIME` text in UTC, as Kamailio's `db_sqlite` writes them; `htable.expires` is Unix
//! seconds. The database runs in WAL mode with a busy timeout, so `sipd user add` can write
//! while sipd runs.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    check_table, AddressRow, DispatcherRow, HtableRow, HtableValue, LocationRow, Store, StoreError,
    Subscriber,
};

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// A SQLite database file (or an in-memory database).
#[derive(Debug)]
pub struct SqliteStore {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// Tables already created or checked in this process.
    ready: HashSet<String>,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        backend: "sqlite",
        message: e.to_string(),
    }
}

/// What a table is, for creating it.
#[derive(Clone, Copy)]
enum Kind {
    Location,
    Subscriber,
    Address,
    Htable,
    Dispatcher,
}

impl Kind {
    fn schema(self, t: &str) -> String {
        match self {
            Kind::Location => format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                id INTEGER PRIMARY KEY NOT NULL,
                ruid VARCHAR(64) DEFAULT '' NOT NULL,
                username VARCHAR(64) DEFAULT '' NOT NULL,
                domain VARCHAR(64) DEFAULT NULL,
                contact VARCHAR(512) DEFAULT '' NOT NULL,
                received VARCHAR(128) DEFAULT NULL,
                path VARCHAR(512) DEFAULT NULL,
                expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
                q REAL DEFAULT 1.0 NOT NULL,
                callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
                cseq INTEGER DEFAULT 1 NOT NULL,
                last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
                flags INTEGER DEFAULT 0 NOT NULL,
                cflags INTEGER DEFAULT 0 NOT NULL,
                user_agent VARCHAR(255) DEFAULT '' NOT NULL,
                socket VARCHAR(64) DEFAULT NULL,
                methods INTEGER DEFAULT NULL,
                instance VARCHAR(255) DEFAULT NULL,
                reg_id INTEGER DEFAULT 0 NOT NULL,
                server_id INTEGER DEFAULT 0 NOT NULL,
                connection_id INTEGER DEFAULT 0 NOT NULL,
                keepalive INTEGER DEFAULT 0 NOT NULL,
                partition INTEGER DEFAULT 0 NOT NULL,
                CONSTRAINT {t}_ruid_idx UNIQUE (ruid))"
            ),
            Kind::Subscriber => format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                id INTEGER PRIMARY KEY NOT NULL,
                username VARCHAR(64) DEFAULT '' NOT NULL,
                domain VARCHAR(64) DEFAULT '' NOT NULL,
                password VARCHAR(64) DEFAULT '' NOT NULL,
                ha1 VARCHAR(128) DEFAULT '' NOT NULL,
                ha1b VARCHAR(128) DEFAULT '' NOT NULL,
                CONSTRAINT {t}_account_idx UNIQUE (username, domain))"
            ),
            Kind::Address => format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                id INTEGER PRIMARY KEY NOT NULL,
                grp INTEGER DEFAULT 1 NOT NULL,
                ip_addr VARCHAR(50) NOT NULL,
                mask INTEGER DEFAULT 32 NOT NULL,
                port SMALLINT DEFAULT 0 NOT NULL,
                tag VARCHAR(64))"
            ),
            Kind::Dispatcher => format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                id INTEGER PRIMARY KEY NOT NULL,
                setid INTEGER DEFAULT 0 NOT NULL,
                destination VARCHAR(192) DEFAULT '' NOT NULL,
                flags INTEGER DEFAULT 0 NOT NULL,
                priority INTEGER DEFAULT 0 NOT NULL,
                attrs VARCHAR(198) DEFAULT '' NOT NULL,
                description VARCHAR(64) DEFAULT '' NOT NULL);"
            ),
            Kind::Htable => format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                id INTEGER PRIMARY KEY NOT NULL,
                key_name VARCHAR(64) DEFAULT '' NOT NULL,
                key_type INTEGER DEFAULT 0 NOT NULL,
                value_type INTEGER DEFAULT 0 NOT NULL,
                key_value VARCHAR(128) DEFAULT '' NOT NULL,
                expires INTEGER DEFAULT 0 NOT NULL)"
            ),
        }
    }

    /// Kamailio's schema version of the table.
    fn version(self) -> i64 {
        match self {
            Kind::Location => 9,
            Kind::Subscriber => 7,
            Kind::Address => 6,
            Kind::Htable => 2,
            Kind::Dispatcher => 4,
        }
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path`, and check that it is writable now.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(|e| StoreError::Backend {
            backend: "sqlite",
            message: format!("{}: {e}", path.display()),
        })?;
        SqliteStore::init(conn).map_err(|e| match e {
            StoreError::Backend { backend, message } => StoreError::Backend {
                backend,
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })
    }

    /// A private in-memory database.
    pub fn memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::init(Connection::open_in_memory().map_err(err)?)
    }

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // WAL lets the CLI write while sipd reads; an in-memory database stays "memory".
        let _mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS version (
                id INTEGER PRIMARY KEY NOT NULL,
                table_name VARCHAR(32) NOT NULL,
                table_version INTEGER DEFAULT 0 NOT NULL,
                CONSTRAINT version_t_name_idx UNIQUE (table_name));
             BEGIN IMMEDIATE; COMMIT;",
        )
        .map_err(err)?;
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                ready: HashSet::new(),
            }),
        })
    }

    /// Run `f` on the connection once table `table` of `kind` exists.
    fn with<T>(
        &self,
        table: &str,
        kind: Kind,
        f: impl FnOnce(&Connection, &str) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let table = check_table(table)?;
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if !inner.ready.contains(table) {
            inner.conn.execute_batch(&kind.schema(table)).map_err(err)?;
            inner
                .conn
                .execute(
                    "INSERT OR IGNORE INTO version (table_name, table_version) VALUES (?1, ?2)",
                    params![table, kind.version()],
                )
                .map_err(err)?;
            inner.ready.insert(table.to_string());
        }
        f(&inner.conn, table).map_err(err)
    }
}

fn subscriber_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscriber> {
    Ok(Subscriber {
        username: r.get(0)?,
        domain: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        password: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        ha1: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        ha1b: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
    })
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn dispatcher_rows(&self, table: &str) -> Result<Vec<DispatcherRow>, StoreError> {
        self.with(table, Kind::Dispatcher, |c, t| {
            let mut st = c.prepare(&format!(
                "SELECT setid, destination, flags, priority, attrs FROM {t} ORDER BY id"
            ))?;
            let rows = st.query_map([], |r| {
                Ok(DispatcherRow {
                    setid: r.get(0)?,
                    destination: r.get(1)?,
                    flags: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                    priority: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                    attrs: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
    }

    fn locations(&self, table: &str) -> Result<Vec<LocationRow>, StoreError> {
        self.with(table, Kind::Location, |c, t| {
            let mut st = c.prepare(&format!(
                "SELECT ruid, username, domain, contact, received, path,
                        CAST(strftime('%s', expires) AS INTEGER), q, callid, cseq,
                        CAST(strftime('%s', last_modified) AS INTEGER), flags, cflags,
                        user_agent, socket, methods, instance, reg_id FROM {t}"
            ))?;
            let rows = st.query_map([], |r| {
                let q: f64 = r.get(7)?;
                Ok(LocationRow {
                    ruid: r.get(0)?,
                    username: r.get(1)?,
                    domain: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    contact: r.get(3)?,
                    received: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    path: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    expires: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                    q: if q < 0.0 {
                        -1
                    } else {
                        (q * 1000.0).round() as i32
                    },
                    callid: r.get(8)?,
                    cseq: r.get(9)?,
                    last_modified: r.get::<_, Option<i64>>(10)?.unwrap_or(0),
                    flags: r.get(11)?,
                    cflags: r.get(12)?,
                    user_agent: r.get(13)?,
                    socket: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
                    methods: r.get::<_, Option<i32>>(15)?.unwrap_or(-1),
                    instance: r.get::<_, Option<String>>(16)?.unwrap_or_default(),
                    reg_id: r.get(17)?,
                })
            })?;
            rows.collect()
        })
    }

    fn put_location(&self, table: &str, row: &LocationRow) -> Result<(), StoreError> {
        self.with(table, Kind::Location, |c, t| {
            let q = if row.q < 0 {
                -1.0
            } else {
                f64::from(row.q) / 1000.0
            };
            c.prepare_cached(&format!(
                "INSERT INTO {t} (ruid, username, domain, contact, received, path, expires,
                        q, callid, cseq, last_modified, flags, cflags, user_agent, socket,
                        methods, instance, reg_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, datetime(?7, 'unixepoch'), ?8, ?9, ?10,
                        datetime(?11, 'unixepoch'), ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                     ON CONFLICT(ruid) DO UPDATE SET username=excluded.username,
                        domain=excluded.domain, contact=excluded.contact,
                        received=excluded.received, path=excluded.path,
                        expires=excluded.expires, q=excluded.q, callid=excluded.callid,
                        cseq=excluded.cseq, last_modified=excluded.last_modified,
                        flags=excluded.flags, cflags=excluded.cflags,
                        user_agent=excluded.user_agent, socket=excluded.socket,
                        methods=excluded.methods, instance=excluded.instance,
                        reg_id=excluded.reg_id"
            ))?
            .execute(params![
                row.ruid,
                row.username,
                row.domain,
                row.contact,
                row.received,
                row.path,
                row.expires,
                q,
                row.callid,
                row.cseq,
                row.last_modified,
                row.flags,
                row.cflags,
                row.user_agent,
                row.socket,
                row.methods,
                row.instance,
                row.reg_id
            ])
            .map(drop)
        })
    }

    fn delete_location(&self, table: &str, ruid: &str) -> Result<(), StoreError> {
        self.with(table, Kind::Location, |c, t| {
            c.prepare_cached(&format!("DELETE FROM {t} WHERE ruid = ?1"))?
                .execute([ruid])
                .map(drop)
        })
    }

    fn subscriber(
        &self,
        table: &str,
        username: &str,
        domain: &str,
    ) -> Result<Option<Subscriber>, StoreError> {
        self.with(table, Kind::Subscriber, |c, t| {
            // The one read on the message path (auth_db): cached statements, parsed once (the
            // SQL text is only the cache's key; built without `format!`).
            let mut sql = String::with_capacity(128);
            sql.push_str("SELECT username, domain, password, ha1, ha1b FROM ");
            sql.push_str(t);
            if domain.is_empty() {
                sql.push_str(" WHERE username = ?1 LIMIT 1");
                c.prepare_cached(&sql)?
                    .query_row([username], subscriber_of)
                    .optional()
            } else {
                sql.push_str(" WHERE username = ?1 AND domain = ?2");
                c.prepare_cached(&sql)?
                    .query_row([username, domain], subscriber_of)
                    .optional()
            }
        })
    }

    fn put_subscriber(&self, table: &str, s: &Subscriber) -> Result<(), StoreError> {
        self.with(table, Kind::Subscriber, |c, t| {
            c.execute(
                &format!(
                    "INSERT INTO {t} (username, domain, password, ha1, ha1b)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(username, domain) DO UPDATE SET password=excluded.password,
                        ha1=excluded.ha1, ha1b=excluded.ha1b"
                ),
                params![s.username, s.domain, s.password, s.ha1, s.ha1b],
            )
            .map(drop)
        })
    }

    fn delete_subscriber(
        &self,
        table: &str,
        username: &str,
        domain: &str,
    ) -> Result<bool, StoreError> {
        self.with(table, Kind::Subscriber, |c, t| {
            c.execute(
                &format!("DELETE FROM {t} WHERE username = ?1 AND domain = ?2"),
                [username, domain],
            )
            .map(|n| n > 0)
        })
    }

    fn subscribers(&self, table: &str) -> Result<Vec<Subscriber>, StoreError> {
        self.with(table, Kind::Subscriber, |c, t| {
            let mut st = c.prepare(&format!(
                "SELECT username, domain, password, ha1, ha1b FROM {t} ORDER BY domain, username"
            ))?;
            let rows = st.query_map([], subscriber_of)?;
            rows.collect()
        })
    }

    fn addresses(&self, table: &str) -> Result<Vec<AddressRow>, StoreError> {
        self.with(table, Kind::Address, |c, t| {
            let mut st = c.prepare(&format!(
                "SELECT grp, ip_addr, mask, port, tag FROM {t} ORDER BY grp, id"
            ))?;
            let rows = st.query_map([], |r| {
                Ok(AddressRow {
                    grp: r.get(0)?,
                    ip_addr: r.get(1)?,
                    mask: r.get(2)?,
                    port: r.get(3)?,
                    tag: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
    }

    fn add_address(&self, table: &str, row: &AddressRow) -> Result<(), StoreError> {
        self.with(table, Kind::Address, |c, t| {
            c.execute(
                &format!(
                    "INSERT INTO {t} (grp, ip_addr, mask, port, tag) VALUES (?1, ?2, ?3, ?4, ?5)"
                ),
                params![row.grp, row.ip_addr, row.mask, row.port, row.tag],
            )
            .map(drop)
        })
    }

    fn delete_address(&self, table: &str, row: &AddressRow) -> Result<usize, StoreError> {
        self.with(table, Kind::Address, |c, t| {
            c.execute(
                &format!(
                    "DELETE FROM {t} WHERE grp = ?1 AND ip_addr = ?2 AND mask = ?3 AND port = ?4"
                ),
                params![row.grp, row.ip_addr, row.mask, row.port],
            )
        })
    }

    fn htable_rows(&self, table: &str) -> Result<Vec<HtableRow>, StoreError> {
        self.with(table, Kind::Htable, |c, t| {
            let mut st = c.prepare(&format!(
                "SELECT key_name, value_type, key_value, expires FROM {t} ORDER BY id"
            ))?;
            let rows = st.query_map([], |r| {
                let kind: i64 = r.get(1)?;
                let text: String = r.get(2)?;
                let value = match (kind, text.trim().parse::<i64>()) {
                    (1, Ok(i)) => HtableValue::Int(i),
                    _ => HtableValue::Str(text),
                };
                Ok(HtableRow {
                    key_name: r.get(0)?,
                    value,
                    expires: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    fn put_htable(&self, table: &str, row: &HtableRow) -> Result<(), StoreError> {
        self.with(table, Kind::Htable, |c, t| {
            let (kind, text) = match &row.value {
                HtableValue::Str(s) => (0, s.clone()),
                HtableValue::Int(i) => (1, i.to_string()),
            };
            c.execute(
                &format!("DELETE FROM {t} WHERE key_name = ?1"),
                [&row.key_name],
            )?;
            c.execute(
                &format!(
                    "INSERT INTO {t} (key_name, key_type, value_type, key_value, expires)
                     VALUES (?1, 0, ?2, ?3, ?4)"
                ),
                params![row.key_name, kind, text, row.expires],
            )
            .map(drop)
        })
    }

    fn delete_htable(&self, table: &str, key: &str) -> Result<(), StoreError> {
        self.with(table, Kind::Htable, |c, t| {
            c.execute(&format!("DELETE FROM {t} WHERE key_name = ?1"), [key])
                .map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(ruid: &str) -> LocationRow {
        LocationRow {
            ruid: ruid.into(),
            username: "alice".into(),
            domain: "example.org".into(),
            contact: "sip:alice@127.0.0.1:5070".into(),
            expires: 2_000_000_000,
            q: 500,
            callid: "c1".into(),
            cseq: 7,
            last_modified: 1_700_000_000,
            methods: -1,
            ..LocationRow::default()
        }
    }

    #[test]
    fn location_round_trip() {
        let s = SqliteStore::memory().unwrap();
        s.put_location("location", &binding("r1")).unwrap();
        let mut b = binding("r1");
        b.cseq = 8;
        s.put_location("location", &b).unwrap();
        s.put_location("location", &binding("r2")).unwrap();
        let rows = s.locations("location").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], b);
        s.delete_location("location", "r1").unwrap();
        assert_eq!(s.locations("location").unwrap(), vec![binding("r2")]);
        assert!(s.locations("bad name").is_err());
    }

    #[test]
    fn subscribers_addresses_htable() {
        let s = SqliteStore::memory().unwrap();
        let sub = Subscriber {
            username: "bob".into(),
            domain: "d".into(),
            password: "pw".into(),
            ..Subscriber::default()
        };
        s.put_subscriber("subscriber", &sub).unwrap();
        assert_eq!(
            s.subscriber("subscriber", "bob", "d").unwrap(),
            Some(sub.clone())
        );
        assert_eq!(s.subscriber("subscriber", "bob", "").unwrap(), Some(sub));
        assert!(s.delete_subscriber("subscriber", "bob", "d").unwrap());
        assert!(s.subscriber("subscriber", "bob", "d").unwrap().is_none());

        let a = AddressRow {
            grp: 1,
            ip_addr: "10.0.0.0".into(),
            mask: 8,
            port: 0,
            tag: String::new(),
        };
        s.add_address("address", &a).unwrap();
        assert_eq!(s.addresses("address").unwrap(), vec![a.clone()]);
        assert_eq!(s.delete_address("address", &a).unwrap(), 1);

        let row = HtableRow {
            key_name: "k".into(),
            value: HtableValue::Int(3),
            expires: 0,
        };
        s.put_htable("htable", &row).unwrap();
        s.put_htable("htable", &row).unwrap();
        assert_eq!(s.htable_rows("htable").unwrap(), vec![row]);
        s.delete_htable("htable", "k").unwrap();
        assert!(s.htable_rows("htable").unwrap().is_empty());
    }

    #[test]
    fn survives_reopen() {
        let dir = std::env::temp_dir().join(format!("sipd-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let _ = std::fs::remove_file(&path);
        SqliteStore::open(&path)
            .unwrap()
            .put_location("location", &binding("r1"))
            .unwrap();
        let rows = SqliteStore::open(&path)
            .unwrap()
            .locations("location")
            .unwrap();
        assert_eq!(rows, vec![binding("r1")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
