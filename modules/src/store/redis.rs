//! The Redis backend: one Redis server (or a Sentinel-fronted primary reached by its address)
//! shared by several sipd nodes.
//!
//! `redis://[:password@]host[:port][/db]`, `rediss://...` (TLS by rustls, the system's roots;
//! `#insecure` skips verification), with `?timeout_ms=N` (the `[db] timeout_ms` setting, 200 by
//! default): every connect, read and write waits at most that long (`connect_timeout_ms`
//! sets the connect bound apart).
//!
//! **Keys** (in the URL's database; `<t>` is the table name):
//! - `sipd:loc:<t>:b:<ruid>`: a hash with one binding's columns (Kamailio's `location` names,
//!   plus `aor`), expiring natively at the binding's `expires` (`EXPIREAT`).
//! - `sipd:loc:<t>:a:<aor>`: the set of the AoR's ruids, expiring with its longest binding.
//! - `sipd:sub:<t>:<user>@<domain>`: a subscriber hash; `sipd:sub:<t>` the set of
//!   `user@domain`; `sipd:sub:<t>:u:<user>` the set of that user's domains.
//! - `sipd:addr:<t>`: a hash of trusted addresses by id (`sipd:addr:<t>:id` counts them).
//! - `sipd:ht:<t>`: a hash of `key_name` to `<type>:<expires>:<value>`.
//! - `sipd:gen`: a random generation, set by the first node that finds it missing: a node that
//!   reconnects and finds another knows Redis lost its data and writes its bindings back.
//!
//! **Sharing.** A binding's write and delete are one Lua script each, which also `PUBLISH`es
//! `<node> <table> <aor>` on the channel `sipd:<db>:usrloc` (pub/sub is not per database). Each
//! node subscribes from a thread of its own ([`Store::watch`]) and reloads that AoR; its own
//! messages (its node token) are skipped. Keyspace notifications were not used: they need a
//! server setting (`notify-keyspace-events`, often locked on managed Redis), fire once per
//! command (several per binding), and name a key, not the AoR.
//!
//! **Outages.** Connections come from a small pool; a command that fails drops its connection.
//! Once the server failed, commands fail at once (no wait) until a retry interval passed or the
//! listener reconnected, so a message path during an outage costs nothing. The outage is logged
//! once when it starts and once when it ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::{Client, Connection, Value};

use super::{
    check_table, AddressRow, Change, ChangeFn, HtableRow, HtableValue, LocationRow, Store,
    StoreError, Subscriber,
};

/// Default bound of every Redis call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// While the server is down, at most one connect attempt per this interval from commands.
const RETRY: Duration = Duration::from_millis(500);
/// Idle connections kept.
const POOL: usize = 8;
/// How long the listener waits for a message before checking whether to stop.
const LISTEN_TICK: Duration = Duration::from_millis(250);
/// Upper bound of SCAN rounds when loading a table (each returns up to 1,000 keys).
const SCAN_ROUNDS: usize = 1_000_000;

const PUT_LOCATION: &str = r"
local p, ruid, aor, exp = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local bkey, akey = p .. 'b:' .. ruid, p .. 'a:' .. aor
local old = redis.call('HGET', bkey, 'aor')
if old and old ~= aor then redis.call('SREM', p .. 'a:' .. old, ruid) end
redis.call('DEL', bkey)
redis.call('HSET', bkey, unpack(ARGV, 8))
local had = redis.call('EXISTS', akey)
local ttl = redis.call('TTL', akey)
redis.call('SADD', akey, ruid)
if exp == 0 then
  redis.call('PERSIST', akey)
else
  redis.call('EXPIREAT', bkey, exp)
  if had == 0 then redis.call('EXPIREAT', akey, exp)
  elseif ttl >= 0 then redis.call('EXPIREAT', akey, exp, 'GT') end
end
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ' ' .. ARGV[7] .. ' ' .. aor)
return 1
";

const DELETE_LOCATION: &str = r"
local p, ruid = ARGV[1], ARGV[2]
local bkey = p .. 'b:' .. ruid
local aor = redis.call('HGET', bkey, 'aor')
redis.call('DEL', bkey)
if aor then
  redis.call('SREM', p .. 'a:' .. aor, ruid)
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. aor)
end
return 1
";

const READ_AOR: &str = r"
local p, aor = ARGV[1], ARGV[2]
local akey = p .. 'a:' .. aor
local out = {}
for _, r in ipairs(redis.call('SMEMBERS', akey)) do
  local h = redis.call('HGETALL', p .. 'b:' .. r)
  if #h == 0 then redis.call('SREM', akey, r) else out[#out + 1] = h end
end
return out
";

/// A Redis server as the store.
#[derive(Debug)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// The URL without its password, for logs.
    shown: String,
    db: i64,
    timeout: Duration,
    connect_timeout: Duration,
    pool: Mutex<Vec<Connection>>,
    /// Server unreachable since the last failure (until a command or the listener succeeds).
    down: AtomicBool,
    /// When a command last tried to connect during an outage.
    last_try: Mutex<Option<Instant>>,
    /// Outages so far.
    outages: AtomicU64,
    /// This store's token in change messages (its own are skipped).
    node: String,
    /// The generation last seen (`sipd:gen`).
    generation: Mutex<Option<String>>,
    stop: AtomicBool,
    put: redis::Script,
    delete: redis::Script,
    read_aor: redis::Script,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shown)
            .field("timeout", &self.timeout)
            .field("down", &self.down)
            .finish()
    }
}

fn backend(message: impl Into<String>) -> StoreError {
    StoreError::Backend {
        backend: "redis",
        message: message.into(),
    }
}

/// A location table's key prefix (`sipd:loc:<t>:`).
fn loc_prefix(table: &str) -> Result<String, StoreError> {
    Ok(format!("sipd:loc:{}:", check_table(table)?))
}

/// Split `timeout_ms` and `connect_timeout_ms` (default: the same) off the URL's query.
fn split_timeouts(url: &str) -> Result<(String, Duration, Option<Duration>), StoreError> {
    let bad = |reason: &str| StoreError::Url {
        url: redact(url),
        reason: reason.to_string(),
    };
    let (head, frag) = match url.split_once('#') {
        Some((h, f)) => (h, Some(f)),
        None => (url, None),
    };
    let Some((base, query)) = head.split_once('?') else {
        return Ok((url.to_string(), DEFAULT_TIMEOUT, None));
    };
    let mut timeout = DEFAULT_TIMEOUT;
    let mut connect = None;
    let mut rest = Vec::new();
    let ms = |name: &str, v: &str| -> Result<Duration, StoreError> {
        v.parse()
            .ok()
            .filter(|ms| (1..=60_000).contains(ms))
            .map(Duration::from_millis)
            .ok_or_else(|| bad(&format!("{name} must be 1..60000")))
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("timeout_ms", v)) => timeout = ms("timeout_ms", v)?,
            Some(("connect_timeout_ms", v)) => connect = Some(ms("connect_timeout_ms", v)?),
            _ => rest.push(pair),
        }
    }
    let mut out = base.to_string();
    if !rest.is_empty() {
        out.push('?');
        out.push_str(&rest.join("&"));
    }
    if let Some(f) = frag {
        out.push('#');
        out.push_str(f);
    }
    Ok((out, timeout, connect))
}

/// The URL with its password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let auth_end = rest.find('/').unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

fn client_of(url: &str) -> Result<(Client, Duration, Duration), StoreError> {
    let (clean, timeout, connect) = split_timeouts(url)?;
    let client = Client::open(clean.as_str()).map_err(|e| StoreError::Url {
        url: redact(url),
        reason: e.to_string(),
    })?;
    Ok((client, timeout, connect.unwrap_or(timeout)))
}

/// A string out of a reply value.
fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Okay => "OK".into(),
        _ => String::new(),
    }
}

/// A flat `[field, value, ...]` (or map) reply as a map.
fn fields(v: &Value) -> HashMap<String, String> {
    match v {
        Value::Array(items) => items
            .chunks_exact(2)
            .map(|kv| (text(&kv[0]), text(&kv[1])))
            .collect(),
        Value::Map(items) => items.iter().map(|(k, v)| (text(k), text(v))).collect(),
        _ => HashMap::new(),
    }
}

fn int<T: std::str::FromStr + Default>(m: &HashMap<String, String>, k: &str) -> T {
    m.get(k).and_then(|v| v.parse().ok()).unwrap_or_default()
}

fn location_of(m: &HashMap<String, String>) -> Option<LocationRow> {
    let s = |k: &str| m.get(k).cloned().unwrap_or_default();
    let ruid = s("ruid");
    if ruid.is_empty() {
        return None;
    }
    Some(LocationRow {
        ruid,
        username: s("username"),
        domain: s("domain"),
        contact: s("contact"),
        received: s("received"),
        path: s("path"),
        expires: int(m, "expires"),
        q: m.get("q").and_then(|v| v.parse().ok()).unwrap_or(-1),
        callid: s("callid"),
        cseq: int(m, "cseq"),
        last_modified: int(m, "last_modified"),
        flags: int(m, "flags"),
        cflags: int(m, "cflags"),
        user_agent: s("user_agent"),
        socket: s("socket"),
        methods: m.get("methods").and_then(|v| v.parse().ok()).unwrap_or(-1),
        instance: s("instance"),
        reg_id: int(m, "reg_id"),
    })
}

/// Attempts after a signal interrupted a call.
const INTERRUPTED_RETRIES: usize = 3;

/// Whether a signal interrupted the call (EINTR). redis-rs keeps its I/O error private, so its
/// text is the one way to tell.
fn interrupted(e: &redis::RedisError) -> bool {
    e.is_io_error() && e.to_string().contains("(os error 4)")
}

/// Whether a command failed the way a connection closed by the server fails.
fn pooled_is_stale<T>(r: &redis::RedisResult<T>) -> bool {
    r.as_ref()
        .err()
        .is_some_and(|e| e.is_connection_dropped() || e.is_io_error() && !e.is_timeout())
}

impl RedisStore {
    /// A store on the server at `url`. Nothing is sent yet: an unreachable server is an
    /// outage, not a startup error (the first read, at setup, reports it).
    pub fn open(url: &str) -> Result<RedisStore, StoreError> {
        let (client, timeout, connect_timeout) = client_of(url)?;
        let db = client.get_connection_info().redis_settings().db();
        let mut token = [0u8; 8];
        let _ = getrandom::getrandom(&mut token);
        let node = token.iter().map(|b| format!("{b:02x}")).collect();
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                shown: redact(url),
                db,
                timeout,
                connect_timeout,
                pool: Mutex::new(Vec::new()),
                down: AtomicBool::new(false),
                last_try: Mutex::new(None),
                outages: AtomicU64::new(0),
                node,
                generation: Mutex::new(None),
                stop: AtomicBool::new(false),
                put: redis::Script::new(PUT_LOCATION),
                delete: redis::Script::new(DELETE_LOCATION),
                read_aor: redis::Script::new(READ_AOR),
            }),
        })
    }

    /// Check a `redis://` or `rediss://` URL without connecting.
    pub fn check_url(url: &str) -> Result<(), StoreError> {
        client_of(url).map(drop)
    }

    /// The channel where changes are published (`sipd:<db>:usrloc`).
    pub fn channel(&self) -> String {
        self.inner.channel()
    }

    /// The bound of every call.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Outages seen so far.
    pub fn outages(&self) -> u64 {
        self.inner.outages.load(Ordering::Relaxed)
    }

    /// Run one command on the pool (bounded by the timeout, failing at once during an
    /// outage), for `KSR.ndb_redis`: the outer error is "the server cannot be reached", the
    /// inner one the server's error reply (`ERR unknown command ...`).
    pub fn command(&self, cmd: &redis::Cmd) -> Result<Result<Value, String>, StoreError> {
        // Not retried after a signal: the command may have run (INCR twice is wrong).
        self.inner.run_opts(false, |c| match cmd.query::<Value>(c) {
            Ok(v) => Ok(Ok(v)),
            Err(e) if e.code().is_some() => Ok(Err(match (e.code(), e.detail()) {
                (Some(code), Some(detail)) => format!("{code} {detail}"),
                _ => e.to_string(),
            })),
            Err(e) => Err(e),
        })
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
    }
}

impl Inner {
    fn channel(&self) -> String {
        format!("sipd:{}:usrloc", self.db)
    }

    /// A new connection with the timeouts set.
    fn connect(&self) -> redis::RedisResult<Connection> {
        let c = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        c.set_read_timeout(Some(self.timeout))?;
        c.set_write_timeout(Some(self.timeout))?;
        Ok(c)
    }

    /// Record a failure: the first of an outage is logged.
    fn failed(&self, e: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::Relaxed) {
            let n = self.outages.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                url = %self.shown,
                outage = n,
                "redis unreachable: {e}; serving from memory until it returns"
            );
        }
        *self.last_try.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// Record a success: the end of an outage is logged.
    fn succeeded(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::warn!(url = %self.shown, "redis reachable again");
        }
    }

    /// Run `f` on a pooled connection (retried after a signal interrupted it: every store
    /// command is idempotent).
    fn run<T>(
        &self,
        f: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        self.run_opts(true, f)
    }

    /// Run `f` on a pooled connection. During an outage this fails at once unless a retry
    /// is due; a connection whose command failed is dropped. A call a signal interrupted
    /// (EINTR: a socket with a timeout is not restarted by `SA_RESTART`, and sipd's script
    /// watchdog signals workers) is no outage; it is run again on a new connection when
    /// `retry_interrupted` (the command is idempotent), else it fails.
    fn run_opts<T>(
        &self,
        retry_interrupted: bool,
        mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        if self.down.load(Ordering::Relaxed) {
            let mut last = self.last_try.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < RETRY) {
                return Err(backend(format!("{}: unreachable (outage)", self.shown)));
            }
            *last = Some(Instant::now());
        }
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let fresh = || {
            let mut r = self.connect();
            for _ in 0..INTERRUPTED_RETRIES {
                match &r {
                    Err(e) if interrupted(e) => r = self.connect(),
                    _ => break,
                }
            }
            r.map_err(|e| {
                if !interrupted(&e) {
                    self.failed(&e);
                }
                backend(format!("{}: {e}", self.shown))
            })
        };
        let was_pooled = pooled.is_some();
        let mut con = match pooled {
            Some(c) => c,
            None => fresh()?,
        };
        let mut result = f(&mut con);
        if was_pooled && pooled_is_stale(&result) && !result.as_ref().err().is_some_and(interrupted)
        {
            // An idle pooled connection the server closed (it restarted): once more, on a new
            // one.
            self.clear_pool();
            con = fresh()?;
            result = f(&mut con);
        }
        for _ in 0..INTERRUPTED_RETRIES {
            if !(retry_interrupted && result.as_ref().err().is_some_and(interrupted)) {
                break;
            }
            con = fresh()?;
            result = f(&mut con);
        }
        match result {
            Ok(v) => {
                self.succeeded();
                let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
                if pool.len() < POOL {
                    pool.push(con);
                }
                Ok(v)
            }
            Err(e) => {
                if interrupted(&e) {
                    // The connection's state is unknown: dropped; no outage.
                } else if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                {
                    self.failed(&e);
                    self.clear_pool();
                } else if e.is_unrecoverable_error() {
                    // Dropped below; the pool keeps the others.
                } else {
                    let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
                    if pool.len() < POOL {
                        pool.push(con);
                    }
                }
                Err(backend(format!("{}: {e}", self.shown)))
            }
        }
    }

    /// Drop every idle connection (they predate an outage).
    fn clear_pool(&self) {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Read the generation, setting a new one when there is none. True when it differs from
    /// the one seen before (the server lost its data).
    fn check_generation(&self, con: &mut Connection) -> redis::RedisResult<bool> {
        let mut token = [0u8; 8];
        let _ = getrandom::getrandom(&mut token);
        let fresh: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let _: Value = redis::cmd("SET")
            .arg("sipd:gen")
            .arg(&fresh)
            .arg("NX")
            .query(con)?;
        let now: Option<String> = redis::cmd("GET").arg("sipd:gen").query(con)?;
        let mut seen = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let lost = seen.is_some() && *seen != now;
        *seen = now;
        Ok(lost)
    }

    /// The listener: subscribe, report, reconnect; until the store is dropped.
    fn listen(self: &Arc<Self>, f: &ChangeFn) {
        let channel = self.channel();
        while !self.stop.load(Ordering::Relaxed) {
            let mut con = match self.connect() {
                Ok(c) => c,
                Err(e) => {
                    self.failed(&e);
                    std::thread::sleep(LISTEN_TICK);
                    continue;
                }
            };
            let lost = match self.check_generation(&mut con) {
                Ok(lost) => lost,
                Err(e) => {
                    self.failed(&e);
                    std::thread::sleep(LISTEN_TICK);
                    continue;
                }
            };
            let mut ps = con.as_pubsub();
            if let Err(e) = ps.subscribe(&channel) {
                self.failed(&e);
                std::thread::sleep(LISTEN_TICK);
                continue;
            }
            if ps.set_read_timeout(Some(LISTEN_TICK)).is_err() {
                continue;
            }
            self.clear_pool();
            self.succeeded();
            f(Change::Resync { lost });
            while !self.stop.load(Ordering::Relaxed) {
                match ps.get_message() {
                    Ok(m) => {
                        let payload = String::from_utf8_lossy(m.get_payload_bytes());
                        let mut parts = payload.splitn(3, ' ');
                        let (Some(node), Some(table), Some(aor)) =
                            (parts.next(), parts.next(), parts.next())
                        else {
                            continue;
                        };
                        if node != self.node {
                            f(Change::Location {
                                table: table.to_string(),
                                aor: aor.to_string(),
                            });
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(e) => {
                        self.failed(&e);
                        break;
                    }
                }
            }
        }
    }
}

impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn locations(&self, table: &str) -> Result<Vec<LocationRow>, StoreError> {
        let p = loc_prefix(table)?;
        self.inner.run(|c| {
            let pattern = format!("{p}b:*");
            let mut keys: Vec<String> = Vec::new();
            let mut cursor = 0u64;
            for _ in 0..SCAN_ROUNDS {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)?;
                keys.extend(batch);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            keys.sort();
            keys.dedup();
            let mut rows = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(500) {
                let mut pipe = redis::pipe();
                for k in chunk {
                    pipe.cmd("HGETALL").arg(k);
                }
                let replies: Vec<Value> = pipe.query(c)?;
                rows.extend(replies.iter().filter_map(|v| location_of(&fields(v))));
            }
            Ok(rows)
        })
    }

    fn put_location(&self, table: &str, row: &LocationRow) -> Result<(), StoreError> {
        let p = loc_prefix(table)?;
        let aor = super::row_aor(row);
        let i = |n: i64| n.to_string();
        let cols: [(&str, String); 19] = [
            ("ruid", row.ruid.clone()),
            ("aor", aor.clone()),
            ("username", row.username.clone()),
            ("domain", row.domain.clone()),
            ("contact", row.contact.clone()),
            ("received", row.received.clone()),
            ("path", row.path.clone()),
            ("expires", i(row.expires)),
            ("q", i(row.q.into())),
            ("callid", row.callid.clone()),
            ("cseq", i(row.cseq.into())),
            ("last_modified", i(row.last_modified)),
            ("flags", i(row.flags.into())),
            ("cflags", i(row.cflags.into())),
            ("user_agent", row.user_agent.clone()),
            ("socket", row.socket.clone()),
            ("methods", i(row.methods.into())),
            ("instance", row.instance.clone()),
            ("reg_id", i(row.reg_id.into())),
        ];
        let channel = self.inner.channel();
        self.inner.run(|c| {
            let mut inv = self.inner.put.prepare_invoke();
            inv.arg(&p)
                .arg(&row.ruid)
                .arg(&aor)
                .arg(row.expires)
                .arg(&channel)
                .arg(&self.inner.node)
                .arg(table);
            for (k, v) in &cols {
                inv.arg(*k).arg(v);
            }
            inv.invoke::<i64>(c).map(drop)
        })
    }

    fn delete_location(&self, table: &str, ruid: &str) -> Result<(), StoreError> {
        let p = loc_prefix(table)?;
        let channel = self.inner.channel();
        self.inner.run(|c| {
            self.inner
                .delete
                .prepare_invoke()
                .arg(&p)
                .arg(ruid)
                .arg(&channel)
                .arg(&self.inner.node)
                .arg(table)
                .invoke::<i64>(c)
                .map(drop)
        })
    }

    fn location_aor(&self, table: &str, aor: &str) -> Result<Vec<LocationRow>, StoreError> {
        let p = loc_prefix(table)?;
        self.inner.run(|c| {
            let v: Value = self
                .inner
                .read_aor
                .prepare_invoke()
                .arg(&p)
                .arg(aor)
                .invoke(c)?;
            Ok(match v {
                Value::Array(items) => items
                    .iter()
                    .filter_map(|h| location_of(&fields(h)))
                    .collect(),
                _ => Vec::new(),
            })
        })
    }

    fn subscriber(
        &self,
        table: &str,
        username: &str,
        domain: &str,
    ) -> Result<Option<Subscriber>, StoreError> {
        let t = check_table(table)?;
        self.inner.run(|c| {
            let domain = if domain.is_empty() {
                let mut ds: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(format!("sipd:sub:{t}:u:{username}"))
                    .query(c)?;
                ds.sort();
                match ds.into_iter().next() {
                    Some(d) => d,
                    None => return Ok(None),
                }
            } else {
                domain.to_string()
            };
            let v: Value = redis::cmd("HGETALL")
                .arg(format!("sipd:sub:{t}:{username}@{domain}"))
                .query(c)?;
            let m = fields(&v);
            if m.is_empty() {
                return Ok(None);
            }
            let s = |k: &str| m.get(k).cloned().unwrap_or_default();
            Ok(Some(Subscriber {
                username: s("username"),
                domain: s("domain"),
                password: s("password"),
                ha1: s("ha1"),
                ha1b: s("ha1b"),
            }))
        })
    }

    fn put_subscriber(&self, table: &str, s: &Subscriber) -> Result<(), StoreError> {
        let t = check_table(table)?;
        self.inner.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(format!("sipd:sub:{t}:{}@{}", s.username, s.domain))
                .arg("username")
                .arg(&s.username)
                .arg("domain")
                .arg(&s.domain)
                .arg("password")
                .arg(&s.password)
                .arg("ha1")
                .arg(&s.ha1)
                .arg("ha1b")
                .arg(&s.ha1b)
                .cmd("SADD")
                .arg(format!("sipd:sub:{t}"))
                .arg(format!("{}@{}", s.username, s.domain))
                .cmd("SADD")
                .arg(format!("sipd:sub:{t}:u:{}", s.username))
                .arg(&s.domain)
                .exec(c)
        })
    }

    fn delete_subscriber(
        &self,
        table: &str,
        username: &str,
        domain: &str,
    ) -> Result<bool, StoreError> {
        let t = check_table(table)?;
        self.inner.run(|c| {
            let (n, _, _): (i64, i64, i64) = redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(format!("sipd:sub:{t}:{username}@{domain}"))
                .cmd("SREM")
                .arg(format!("sipd:sub:{t}"))
                .arg(format!("{username}@{domain}"))
                .cmd("SREM")
                .arg(format!("sipd:sub:{t}:u:{username}"))
                .arg(domain)
                .query(c)?;
            Ok(n > 0)
        })
    }

    fn subscribers(&self, table: &str) -> Result<Vec<Subscriber>, StoreError> {
        let t = check_table(table)?;
        let names: Vec<String> = self
            .inner
            .run(|c| redis::cmd("SMEMBERS").arg(format!("sipd:sub:{t}")).query(c))?;
        let mut out = Vec::new();
        for n in names {
            let (u, d) = n.rsplit_once('@').unwrap_or((&n, ""));
            if let Some(s) = self.subscriber(table, u, d)? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| (&a.domain, &a.username).cmp(&(&b.domain, &b.username)));
        Ok(out)
    }

    fn addresses(&self, table: &str) -> Result<Vec<AddressRow>, StoreError> {
        let t = check_table(table)?;
        let v: Value = self
            .inner
            .run(|c| redis::cmd("HGETALL").arg(format!("sipd:addr:{t}")).query(c))?;
        let mut rows: Vec<(i32, i64, AddressRow)> = fields(&v)
            .into_iter()
            .filter_map(|(id, line)| {
                let mut f = line.splitn(5, '\t');
                let row = AddressRow {
                    grp: f.next()?.parse().ok()?,
                    ip_addr: f.next()?.to_string(),
                    mask: f.next()?.parse().ok()?,
                    port: f.next()?.parse().ok()?,
                    tag: f.next().unwrap_or("").to_string(),
                };
                Some((row.grp, id.parse().unwrap_or(0), row))
            })
            .collect();
        rows.sort_by_key(|r| (r.0, r.1));
        Ok(rows.into_iter().map(|r| r.2).collect())
    }

    fn add_address(&self, table: &str, row: &AddressRow) -> Result<(), StoreError> {
        let t = check_table(table)?;
        let line = format!(
            "{}\t{}\t{}\t{}\t{}",
            row.grp, row.ip_addr, row.mask, row.port, row.tag
        );
        self.inner.run(|c| {
            let id: i64 = redis::cmd("INCR")
                .arg(format!("sipd:addr:{t}:id"))
                .query(c)?;
            redis::cmd("HSET")
                .arg(format!("sipd:addr:{t}"))
                .arg(id)
                .arg(&line)
                .exec(c)
        })
    }

    fn delete_address(&self, table: &str, row: &AddressRow) -> Result<usize, StoreError> {
        let t = check_table(table)?;
        let key = format!("sipd:addr:{t}");
        let want = format!("{}\t{}\t{}\t{}\t", row.grp, row.ip_addr, row.mask, row.port);
        self.inner.run(|c| {
            let v: Value = redis::cmd("HGETALL").arg(&key).query(c)?;
            let ids: Vec<String> = fields(&v)
                .into_iter()
                .filter(|(_, line)| line.starts_with(&want))
                .map(|(id, _)| id)
                .collect();
            if ids.is_empty() {
                return Ok(0);
            }
            let n: usize = redis::cmd("HDEL").arg(&key).arg(&ids).query(c)?;
            Ok(n)
        })
    }

    fn htable_rows(&self, table: &str) -> Result<Vec<HtableRow>, StoreError> {
        let t = check_table(table)?;
        let v: Value = self
            .inner
            .run(|c| redis::cmd("HGETALL").arg(format!("sipd:ht:{t}")).query(c))?;
        let mut rows: Vec<HtableRow> = fields(&v)
            .into_iter()
            .filter_map(|(key_name, enc)| {
                let mut f = enc.splitn(3, ':');
                let kind = f.next()?;
                let expires = f.next()?.parse().ok()?;
                let text = f.next()?;
                let value = match (kind, text.parse::<i64>()) {
                    ("1", Ok(i)) => HtableValue::Int(i),
                    _ => HtableValue::Str(text.to_string()),
                };
                Some(HtableRow {
                    key_name,
                    value,
                    expires,
                })
            })
            .collect();
        rows.sort_by(|a, b| a.key_name.cmp(&b.key_name));
        Ok(rows)
    }

    fn put_htable(&self, table: &str, row: &HtableRow) -> Result<(), StoreError> {
        let t = check_table(table)?;
        let enc = match &row.value {
            HtableValue::Str(s) => format!("0:{}:{s}", row.expires),
            HtableValue::Int(i) => format!("1:{}:{i}", row.expires),
        };
        self.inner.run(|c| {
            redis::cmd("HSET")
                .arg(format!("sipd:ht:{t}"))
                .arg(&row.key_name)
                .arg(&enc)
                .exec(c)
        })
    }

    fn delete_htable(&self, table: &str, key: &str) -> Result<(), StoreError> {
        let t = check_table(table)?;
        self.inner.run(|c| {
            redis::cmd("HDEL")
                .arg(format!("sipd:ht:{t}"))
                .arg(key)
                .exec(c)
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn available(&self) -> bool {
        if !self.inner.down.load(Ordering::Relaxed) {
            return true;
        }
        // During an outage, a retry when one is due (so a command path notices the return
        // even before the listener does).
        self.inner.run(|c| redis::cmd("PING").exec(c)).is_ok()
    }

    fn watch(&self, f: ChangeFn) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        std::thread::Builder::new()
            .name("sipd-redis-sub".into())
            .spawn(move || inner.listen(&f))
            .map(drop)
            .map_err(|e| backend(format!("listener thread: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_timeout(url: &str) -> Result<(String, Duration), StoreError> {
        split_timeouts(url).map(|(u, t, _)| (u, t))
    }

    #[test]
    fn urls_and_timeouts() {
        let (_, t, c) = split_timeouts("redis://h/0?timeout_ms=5&connect_timeout_ms=7").unwrap();
        assert_eq!(
            (t, c),
            (Duration::from_millis(5), Some(Duration::from_millis(7)))
        );
        let (u, t) = split_timeout("redis://127.0.0.1:6379/2?timeout_ms=50").unwrap();
        assert_eq!(
            (u.as_str(), t),
            ("redis://127.0.0.1:6379/2", Duration::from_millis(50))
        );
        let (u, t) = split_timeout("rediss://h/0?protocol=resp3&timeout_ms=9#insecure").unwrap();
        assert_eq!(u, "rediss://h/0?protocol=resp3#insecure");
        assert_eq!(t, Duration::from_millis(9));
        assert!(split_timeout("redis://h?timeout_ms=0").is_err());
        assert!(split_timeout("redis://h?timeout_ms=x").is_err());
        assert_eq!(
            redact("redis://:secret@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://h:1/0"), "redis://h:1/0");
        assert!(RedisStore::check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(RedisStore::check_url("redis://:pw@127.0.0.1:6379/3").is_ok());
        assert!(RedisStore::check_url("rediss://127.0.0.1:6380/0").is_ok());
        assert!(RedisStore::check_url("redis://127.0.0.1:6379/notanumber").is_err());
        let s = RedisStore::open("redis://127.0.0.1:1/5").unwrap();
        assert_eq!(s.channel(), "sipd:5:usrloc");
    }
}
