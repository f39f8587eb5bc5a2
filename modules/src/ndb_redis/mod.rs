//! The `ndb_redis` module (`KSR.ndb_redis.*`, `$redis(res=>key)`): scripts run their own
//! commands on named Redis servers, as with Kamailio's ndb_redis.
//!
//! ```toml
//! [modparam.ndb_redis]
//! server = ["name=srv;addr=127.0.0.1;port=6379;db=0", "name=auth;addr=10.0.0.5;pass=s3cret"]
//! cmd_timeout = 1000       # ms, each command (Kamailio's default)
//! connect_timeout = 1000   # ms
//! init_without_redis = 0   # 0: a server that does not answer at startup is a startup error
//! ```
//!
//! A command is a hiredis format: words split on spaces, each `%s` replaced by the next
//! parameter (`redis_cmd_p1..p3`) as one argument, spaces included; `%%` is a `%`. Replies are
//! kept per worker under the name the script gives, until the next command with that name or
//! `redis_free`, and read through `$redis(name=>type|value|info|size)`, `value[n]`/`type[n]`
//! for array elements, chained for nested arrays (`$redis(r=>value[1]=>value[0])`). Types are
//! hiredis's: 1 string, 2 array, 3 integer, 4 nil, 5 status, 6 error.
//!
//! Return codes are Kamailio's KEMI ones: 0 when the server replied (an error reply too: its
//! type is 6 and `info` its text), -1 when the server is unknown, the command malformed, or the
//! server cannot be reached within the timeout. Each server has a small connection pool
//! (`store::redis::RedisStore`); during an outage commands fail at once and the outage is
//! logged once. Unlike most exports these wait on the network (bounded by `cmd_timeout`), as
//! Kamailio's do.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg};
use redis::Value;

use crate::modparam::ModParams;
use crate::setup::{SetupCtx, SetupError};
use crate::store::redis::RedisStore;
use crate::store::StoreError;

/// hiredis's reply types, as `$redis(r=>type)` gives them.
pub mod reply_type {
    /// A bulk string.
    pub const STRING: i64 = 1;
    /// An array.
    pub const ARRAY: i64 = 2;
    /// An integer.
    pub const INTEGER: i64 = 3;
    /// Nil.
    pub const NIL: i64 = 4;
    /// A status (`OK`).
    pub const STATUS: i64 = 5;
    /// An error reply.
    pub const ERROR: i64 = 6;
}

/// The configured servers of one sipd, by name.
#[derive(Debug, Default)]
pub struct NdbRedis {
    servers: HashMap<String, RedisStore>,
}

impl NdbRedis {
    /// The server `name`.
    pub fn server(&self, name: &str) -> Option<&RedisStore> {
        self.servers.get(name)
    }
}

/// A reply kept for `$redis`.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A string (bulk or verbatim; numbers too big for an integer).
    Str(String),
    /// An integer.
    Int(i64),
    /// An array (sets and maps flattened).
    Array(Vec<Reply>),
    /// Nil.
    Nil,
    /// A status (`OK`, `QUEUED`).
    Status(String),
    /// An error reply's text.
    Error(String),
}

impl Reply {
    fn of(v: Value) -> Reply {
        match v {
            Value::Nil => Reply::Nil,
            Value::Int(i) => Reply::Int(i),
            Value::BulkString(b) => Reply::Str(String::from_utf8_lossy(&b).into_owned()),
            Value::Array(items) | Value::Set(items) => {
                Reply::Array(items.into_iter().map(Reply::of).collect())
            }
            Value::Push { data, .. } => Reply::Array(data.into_iter().map(Reply::of).collect()),
            Value::Map(pairs) => Reply::Array(
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [Reply::of(k), Reply::of(v)])
                    .collect(),
            ),
            Value::SimpleString(s) => Reply::Status(s),
            Value::Okay => Reply::Status("OK".into()),
            Value::Double(d) => Reply::Str(d.to_string()),
            Value::Boolean(b) => Reply::Int(i64::from(b)),
            Value::VerbatimString { text, .. } => Reply::Str(text),
            Value::Attribute { data, .. } => Reply::of(*data),
            Value::ServerError(e) => Reply::Error(e.to_string()),
            other => Reply::Str(format!("{other:?}")),
        }
    }

    /// hiredis's type number.
    pub fn kind(&self) -> i64 {
        match self {
            Reply::Str(_) => reply_type::STRING,
            Reply::Array(_) => reply_type::ARRAY,
            Reply::Int(_) => reply_type::INTEGER,
            Reply::Nil => reply_type::NIL,
            Reply::Status(_) => reply_type::STATUS,
            Reply::Error(_) => reply_type::ERROR,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Reply::Str(s) | Reply::Status(s) | Reply::Error(s) => Some(s),
            _ => None,
        }
    }
}

thread_local! {
    /// The replies of this worker, by name (Kamailio keeps them per process).
    static REPLIES: RefCell<HashMap<String, Reply>> = RefCell::new(HashMap::new());
}

/// The reply stored as `name` in this worker, if any.
pub fn reply(name: &str) -> Option<Reply> {
    REPLIES.with(|r| r.borrow().get(name).cloned())
}

/// What `$redis(...)` reads.
#[derive(Clone, Debug, PartialEq)]
pub enum PvValue {
    /// `$null`.
    Null,
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}

/// One `=>key` step: `type`, `value`, `info` or `size`, with an optional `[n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Type(Option<i64>),
    Value(Option<i64>),
    Info,
    Size,
}

fn parse_key(k: &str) -> Option<Key> {
    let k = k.trim();
    let (word, idx) = match k.split_once('[') {
        Some((w, rest)) => (w.trim(), Some(rest.strip_suffix(']')?.trim().parse().ok()?)),
        None => (k, None),
    };
    Some(match (word, idx) {
        ("type", i) => Key::Type(i),
        ("value", i) => Key::Value(i),
        ("info", None) => Key::Info,
        ("size", None) => Key::Size,
        _ => return None,
    })
}

/// `$redis(name=>key[=>key...])` from the text inside the parentheses; null when it does not
/// parse or there is no such reply.
pub fn pv_get(body: &str) -> PvValue {
    pv_get_in(body).unwrap_or(PvValue::Null)
}

fn pv_get_in(body: &str) -> Option<PvValue> {
    let mut parts = body.split("=>");
    let name = parts.next()?.trim();
    let keys: Vec<Key> = parts.map(parse_key).collect::<Option<_>>()?;
    let (last, path) = keys.split_last()?;
    REPLIES.with(|r| {
        let r = r.borrow();
        let mut reply = r.get(name)?;
        // Every key but the last picks an element of an array.
        for k in path {
            let (Key::Type(Some(i)) | Key::Value(Some(i))) = *k else {
                return None;
            };
            match reply {
                Reply::Array(items) => reply = items.get(usize::try_from(i).ok()?)?,
                _ => return None,
            }
        }
        let element = |i: i64| match reply {
            Reply::Array(items) => usize::try_from(i).ok().and_then(|i| items.get(i)),
            _ => None,
        };
        Some(match *last {
            Key::Type(None) => PvValue::Int(reply.kind()),
            Key::Type(Some(i)) => PvValue::Int(element(i)?.kind()),
            Key::Value(None) => match reply {
                Reply::Str(s) => PvValue::Str(s.clone()),
                Reply::Int(n) => PvValue::Int(*n),
                _ => PvValue::Null,
            },
            Key::Value(Some(i)) => match element(i)? {
                Reply::Str(s) => PvValue::Str(s.clone()),
                Reply::Int(n) => PvValue::Int(*n),
                _ => PvValue::Null,
            },
            Key::Info => reply
                .text()
                .map_or(PvValue::Null, |s| PvValue::Str(s.to_string())),
            Key::Size => match reply {
                Reply::Array(items) => PvValue::Int(items.len() as i64),
                _ => PvValue::Null,
            },
        })
    })
}

/// Why a command could not be built.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// No command word.
    #[error("empty command")]
    Empty,
    /// More `%s` than parameters.
    #[error("more %s than parameters")]
    MissingParam,
    /// Fewer `%s` than parameters.
    #[error("more parameters than %s")]
    ExtraParam,
    /// A specifier other than `%s` and `%%` (`%b` needs a length KEMI cannot give).
    #[error("unsupported specifier %{0}")]
    Specifier(char),
}

/// The arguments of hiredis format `fmt` with `params` in place of its `%s`.
pub fn format_command(fmt: &str, params: &[&str]) -> Result<Vec<String>, FormatError> {
    let mut args = Vec::new();
    let mut next = params.iter();
    for word in fmt.split(' ').filter(|w| !w.is_empty()) {
        let mut arg = String::with_capacity(word.len());
        let mut chars = word.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                arg.push(c);
                continue;
            }
            match chars.next() {
                Some('s') => arg.push_str(next.next().ok_or(FormatError::MissingParam)?),
                Some('%') => arg.push('%'),
                Some(other) => return Err(FormatError::Specifier(other)),
                None => arg.push('%'),
            }
        }
        args.push(arg);
    }
    if args.is_empty() {
        return Err(FormatError::Empty);
    }
    if next.next().is_some() {
        return Err(FormatError::ExtraParam);
    }
    Ok(args)
}

fn exec(msg: &mut SipMsg, srv: &str, fmt: &str, params: &[&str], res: &str) -> i32 {
    if res.is_empty() || srv.is_empty() {
        msg.log(LogLevel::Err, "redis_cmd: empty server or reply name");
        return -1;
    }
    let args = match format_command(fmt, params) {
        Ok(a) => a,
        Err(e) => {
            msg.log(LogLevel::Err, &format!("redis_cmd: [{fmt}]: {e}"));
            return -1;
        }
    };
    let Some(state) = msg.env.services.get_arc::<NdbRedis>() else {
        msg.log(LogLevel::Err, "ndb_redis: module not set up");
        return -1;
    };
    let Some(server) = state.server(srv) else {
        msg.log(
            LogLevel::Err,
            &format!("redis_cmd: no redis server named [{srv}]"),
        );
        return -1;
    };
    let mut cmd = redis::cmd(&args[0]);
    for a in &args[1..] {
        cmd.arg(a);
    }
    // The old reply goes first, as in Kamailio (a failed command leaves none).
    REPLIES.with(|r| r.borrow_mut().remove(res));
    let reply = match server.command(&cmd) {
        Ok(Ok(v)) => Reply::of(v),
        Ok(Err(text)) => Reply::Error(text),
        // The store logs the outage once; per command only at debug level.
        Err(e) => {
            msg.log(LogLevel::Debug, &format!("redis_cmd [{srv}]: {e}"));
            return -1;
        }
    };
    REPLIES.with(|r| r.borrow_mut().insert(res.to_string(), reply));
    0
}

/// `KSR.ndb_redis.redis_cmd(srv, cmd, res)`: run `cmd` (no `%s`) on server `srv`, keeping the
/// reply as `res`. 0 when the server replied, -1 otherwise.
#[kemi(module = "ndb_redis", name = "redis_cmd")]
pub fn redis_cmd(msg: &mut SipMsg, srv: &str, cmd: &str, res: &str) -> i32 {
    exec(msg, srv, cmd, &[], res)
}

/// `KSR.ndb_redis.redis_cmd_p1(srv, cmd, p1, res)`: `redis_cmd` with one `%s`.
#[kemi(module = "ndb_redis", name = "redis_cmd_p1")]
pub fn redis_cmd_p1(msg: &mut SipMsg, srv: &str, cmd: &str, p1: &str, res: &str) -> i32 {
    exec(msg, srv, cmd, &[p1], res)
}

/// `KSR.ndb_redis.redis_cmd_p2(srv, cmd, p1, p2, res)`: `redis_cmd` with two `%s`.
#[kemi(module = "ndb_redis", name = "redis_cmd_p2")]
pub fn redis_cmd_p2(msg: &mut SipMsg, srv: &str, cmd: &str, p1: &str, p2: &str, res: &str) -> i32 {
    exec(msg, srv, cmd, &[p1, p2], res)
}

/// `KSR.ndb_redis.redis_cmd_p3(srv, cmd, p1, p2, p3, res)`: `redis_cmd` with three `%s`.
#[kemi(module = "ndb_redis", name = "redis_cmd_p3")]
pub fn redis_cmd_p3(
    msg: &mut SipMsg,
    srv: &str,
    cmd: &str,
    p1: &str,
    p2: &str,
    p3: &str,
    res: &str,
) -> i32 {
    exec(msg, srv, cmd, &[p1, p2, p3], res)
}

/// `KSR.ndb_redis.redis_free(res)`: forget reply `res`. 1, or -1 when there is none.
#[kemi(module = "ndb_redis", name = "redis_free")]
pub fn redis_free(msg: &mut SipMsg, res: &str) -> i32 {
    let _ = msg;
    if REPLIES.with(|r| r.borrow_mut().remove(res)).is_some() {
        1
    } else {
        -1
    }
}

const PARAMS: &[&str] = &[
    "server",
    "cmd_timeout",
    "connect_timeout",
    "init_without_redis",
];

/// A `server` modparam (`name=srv;addr=127.0.0.1;port=6379;db=0;pass=x`) as (name, URL).
pub fn server_url(
    spec: &str,
    cmd_timeout: Duration,
    connect_timeout: Duration,
) -> Result<(String, String), String> {
    let mut attrs: HashMap<&str, &str> = HashMap::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not name=value"))?;
        attrs.insert(k.trim(), v.trim());
    }
    let name = attrs
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or("no name=")?;
    if attrs.contains_key("unix") {
        return Err("unix= sockets are not supported by sipd (use addr= and port=)".into());
    }
    if let Some(k) = attrs
        .keys()
        .find(|k| !matches!(**k, "name" | "addr" | "port" | "db" | "pass"))
    {
        return Err(format!("unknown attribute `{k}`"));
    }
    let addr = attrs.get("addr").copied().unwrap_or("127.0.0.1");
    let host = if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    };
    let port: u16 = attrs
        .get("port")
        .map_or(Ok(6379), |p| p.parse())
        .map_err(|_| "port= must be a number")?;
    let db: u32 = attrs
        .get("db")
        .map_or(Ok(0), |d| d.parse())
        .map_err(|_| "db= must be a number")?;
    let auth = match attrs.get("pass") {
        Some(p) => format!(":{}@", percent(p)),
        None => String::new(),
    };
    Ok((
        name.to_string(),
        format!(
            "redis://{auth}{host}:{port}/{db}?timeout_ms={}&connect_timeout_ms={}",
            cmd_timeout.as_millis(),
            connect_timeout.as_millis()
        ),
    ))
}

/// `s` percent-encoded for the user-info part of a URL.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn timeout(p: &ModParams, name: &str) -> Result<Duration, SetupError> {
    let ms = p.int(name, 1000)?;
    if !(1..=60_000).contains(&ms) {
        return Err(p.error(name, "must be 1..60000 (ms)").into());
    }
    Ok(Duration::from_millis(ms.unsigned_abs()))
}

/// Set up `ndb_redis`: read the servers; unless `init_without_redis` is 1, each must answer a
/// PING now.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let p = ctx.params("ndb_redis");
    p.check_known(PARAMS)?;
    let cmd_timeout = timeout(&p, "cmd_timeout")?;
    let connect_timeout = timeout(&p, "connect_timeout")?;
    let lazy = p.int("init_without_redis", 0)? != 0;
    let mut servers = HashMap::new();
    for spec in p.strs("server")? {
        let (name, url) = server_url(&spec, cmd_timeout, connect_timeout)
            .map_err(|e| p.error("server", format!("[{spec}]: {e}")))?;
        let store = RedisStore::open(&url).map_err(SetupCtx::store_error("ndb_redis"))?;
        if !lazy {
            match store.command(&redis::cmd("PING")) {
                Ok(_) => {}
                Err(e) => {
                    return Err(SetupError::Store {
                        module: "ndb_redis".into(),
                        source: StoreError::Backend {
                            backend: "redis",
                            message: format!(
                                "server {name}: {e} (set init_without_redis = 1 to start anyway)"
                            ),
                        },
                    })
                }
            }
        }
        if servers.insert(name.clone(), store).is_some() {
            return Err(p
                .error("server", format!("server name `{name}` given twice"))
                .into());
        }
    }
    ctx.services.insert(Arc::new(NdbRedis { servers }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_formatted_like_hiredis() {
        assert_eq!(
            format_command("SET  k%s %s", &["1", "a b"]).unwrap(),
            ["SET", "k1", "a b"]
        );
        assert_eq!(format_command("INCR 100%%", &[]).unwrap(), ["INCR", "100%"]);
        assert_eq!(
            format_command("GET %s", &[]),
            Err(FormatError::MissingParam)
        );
        assert_eq!(
            format_command("GET k", &["x"]),
            Err(FormatError::ExtraParam)
        );
        assert_eq!(
            format_command("GET %b", &["x"]),
            Err(FormatError::Specifier('b'))
        );
        assert_eq!(format_command("  ", &[]), Err(FormatError::Empty));
    }

    #[test]
    fn server_specs() {
        let t = Duration::from_millis(250);
        assert_eq!(
            server_url("name=srv;addr=127.0.0.1;port=6380;db=2", t, t).unwrap(),
            (
                "srv".into(),
                "redis://127.0.0.1:6380/2?timeout_ms=250&connect_timeout_ms=250".into()
            )
        );
        assert!(server_url("name=a;addr=::1;pass=p@ss;w", t, t).is_err());
        let (_, url) = server_url("name=a;addr=::1;pass=p@ss", t, t).unwrap();
        assert!(url.starts_with("redis://:p%40ss@[::1]:6379/0"), "{url}");
        assert!(server_url("addr=1.2.3.4", t, t).is_err());
        assert!(server_url("name=a;unix=/tmp/r.sock", t, t).is_err());
        assert!(server_url("name=a;port=x", t, t).is_err());
        assert!(server_url("name=a;tls=1", t, t).is_err());
    }

    #[test]
    fn pv_reads_nested_replies() {
        REPLIES.with(|r| {
            r.borrow_mut().insert(
                "r".into(),
                Reply::Array(vec![
                    Reply::Str("a".into()),
                    Reply::Int(7),
                    Reply::Array(vec![Reply::Nil, Reply::Str("deep".into())]),
                ]),
            );
            r.borrow_mut()
                .insert("e".into(), Reply::Error("ERR bad".into()));
        });
        assert_eq!(pv_get("r=>type"), PvValue::Int(2));
        assert_eq!(pv_get("r=>size"), PvValue::Int(3));
        assert_eq!(pv_get("r=>value"), PvValue::Null);
        assert_eq!(pv_get("r=>value[0]"), PvValue::Str("a".into()));
        assert_eq!(pv_get("r=>value[1]"), PvValue::Int(7));
        assert_eq!(pv_get("r=>type[2]"), PvValue::Int(2));
        assert_eq!(pv_get("r=>value[2]=>value[1]"), PvValue::Str("deep".into()));
        assert_eq!(pv_get("r=>value[2]=>type[0]"), PvValue::Int(4));
        assert_eq!(pv_get("r=>value[9]"), PvValue::Null);
        assert_eq!(pv_get("r=>value[-1]"), PvValue::Null);
        assert_eq!(pv_get("e=>type"), PvValue::Int(6));
        assert_eq!(pv_get("e=>info"), PvValue::Str("ERR bad".into()));
        assert_eq!(pv_get("nosuch=>type"), PvValue::Null);
        assert_eq!(pv_get("r=>bogus"), PvValue::Null);
        assert_eq!(pv_get("r"), PvValue::Null);
    }
}
