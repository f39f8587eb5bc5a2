//! Three sipd nodes sharing registrations through one real `redis-server` (`[db] url =
//! "redis://..."`), driven over UDP by plain sockets: a user registers at node 1 and is called
//! through nodes 2 and 3; unregisters at node 3 and is gone at node 1 within a second; node 1
//! stops and the others keep routing; Redis is killed for 5 s: every node keeps routing to the
//! users it holds, answers what it cannot know with 503 + Retry-After (lookups of unknown users,
//! REGISTERs), and once Redis is back (empty: no persistence) the nodes write their bindings
//! back, follow each other's changes again, and no binding is lost.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use sipd::config::Config;

use crate::support::proxy::{listen_on, Sipd};
use crate::support::redis::RedisServer;
use crate::support::sipp::LOCALHOST_V4 as LO;

const SCRIPT: &str = r#"
function ksr_request_route()
    if KSR.is_REGISTER() then
        -- save answers itself: 200, or 503 + Retry-After when the shared store is down
        if KSR.registrar.save("location", 0) < 0 then
            KSR.sl.sl_reply_error()
        end
        return 1
    end
    local rc = KSR.registrar.lookup("location")
    if rc == -3 then
        -- not in memory and Redis cannot say: do not claim the user is unknown
        KSR.hdr.append_to_reply("Retry-After: 5\r\n")
        KSR.sl.sl_send_reply(503, "Service Unavailable")
        return 1
    elseif rc < 0 then
        KSR.sl.sl_send_reply(404, "Not Found")
        return 1
    end
    KSR.forward()
end
"#;

const MODPARAMS: &str = r#"
[registrar]
min_expires = 1
"#;

/// One sipd node on UDP of 127.0.0.1 with the shared store `url`.
fn node(url: &str) -> Sipd {
    let url = url.to_string();
    Sipd::launch(
        "route.lua",
        SCRIPT,
        listen_on(LO, &[Proto::Udp]),
        2,
        move |c: &mut Config, _| {
            c.db_url = url;
            c.modparams = toml::from_str(MODPARAMS).expect("test modparams");
        },
    )
}

/// A UDP socket on 127.0.0.1 that reads with a short timeout.
fn socket() -> UdpSocket {
    let s = UdpSocket::bind((LO, 0)).expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    s
}

/// Wait up to `wait` for a datagram on `s`.
fn recv(s: &UdpSocket, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65_535];
    while Instant::now() < deadline {
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    None
}

/// Drain what is queued on `s`.
fn drain(s: &UdpSocket) {
    while recv(s, Duration::from_millis(1)).is_some() {}
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

fn request(
    method: &str,
    ruri: &str,
    user: &str,
    from: &UdpSocket,
    extra: &str,
) -> (String, String) {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let me = from.local_addr().expect("addr");
    let callid = format!("rc-{n}-{}", me.port());
    let msg = format!(
        "{method} {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-rc-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@sipd.test>;tag=t{n}\r\n\
         To: <sip:{user}@sipd.test>\r\n\
         Call-ID: {callid}\r\n\
         CSeq: {n} {method}\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    );
    (msg, callid)
}

/// REGISTER `user` with contact `ua` (Expires `expires`) at `node`; the final reply's first
/// line and the whole reply.
fn register(node: &Sipd, user: &str, ua: SocketAddr, expires: u32) -> String {
    let s = socket();
    let extra = format!("Contact: <sip:{user}@{ua}>\r\nExpires: {expires}\r\n");
    let (msg, _) = request("REGISTER", "sip:sipd.test", user, &s, &extra);
    s.send_to(msg.as_bytes(), node.addr(Proto::Udp))
        .expect("send");
    recv(&s, Duration::from_secs(3)).unwrap_or_default()
}

/// What an INVITE for `user` through `node` did: `Ok(())` when `ua` received it, else the
/// reply the caller got (or "" for nothing).
fn call(node: &Sipd, user: &str, ua: &UdpSocket) -> Result<(), String> {
    drain(ua);
    let caller = socket();
    let (msg, callid) = request(
        "INVITE",
        &format!("sip:{user}@sipd.test"),
        user,
        &caller,
        "",
    );
    caller
        .send_to(msg.as_bytes(), node.addr(Proto::Udp))
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(got) = recv(ua, Duration::from_millis(20)) {
            if got.starts_with("INVITE ") && got.contains(&callid) {
                return Ok(());
            }
        }
        if let Some(reply) = recv(&caller, Duration::from_millis(20)) {
            return Err(reply);
        }
    }
    Err(String::new())
}

fn status(reply: &str) -> &str {
    reply.lines().next().unwrap_or("")
}

/// Poll `f` every 50 ms until it is true or `limit` passed; how long it took.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn raw(redis: &RedisServer) -> redis::Connection {
    redis::Client::open(redis.url(0))
        .expect("url")
        .get_connection_with_timeout(Duration::from_secs(2))
        .expect("connect")
}

#[test]
fn three_nodes_share_registrations_and_survive_a_redis_outage() {
    let mut redis = RedisServer::start();
    let url = format!("{}?timeout_ms=200", redis.url(0));
    let mut n1 = node(&url);
    let n2 = node(&url);
    let n3 = node(&url);
    let alice = socket();
    let bob = socket();
    let alice_at = alice.local_addr().expect("addr");
    let bob_at = bob.local_addr().expect("addr");

    // Registered at node 1, called through nodes 2 and 3.
    let r = register(&n1, "alice", alice_at, 300);
    assert!(status(&r).contains("200"), "{r}");
    for n in [&n2, &n3] {
        let routed = within(Duration::from_secs(1), || call(n, "alice", &alice).is_ok());
        assert!(routed.is_some(), "alice not routed through another node");
    }
    assert!(status(&call(&n2, "nobody", &alice).unwrap_err()).contains("404"));

    // Unregistered at node 3: gone at node 1 within one second.
    let r = register(&n3, "alice", alice_at, 0);
    assert!(status(&r).contains("200"), "{r}");
    let gone = within(Duration::from_secs(1), || {
        call(&n1, "alice", &alice).is_err_and(|r| status(&r).contains("404"))
    });
    assert!(gone.is_some(), "node 1 still routes to alice after 1 s");

    // Registered again; node 1 stops; the others keep routing.
    assert!(status(&register(&n1, "alice", alice_at, 300)).contains("200"));
    assert!(status(&register(&n2, "bob", bob_at, 300)).contains("200"));
    for n in [&n2, &n3] {
        assert!(within(Duration::from_secs(1), || call(n, "alice", &alice).is_ok()).is_some());
        assert!(within(Duration::from_secs(1), || call(n, "bob", &bob).is_ok()).is_some());
    }
    n1.shutdown();
    assert_eq!(call(&n3, "alice", &alice), Ok(()));

    // A binding written by a node whose announcement was missed (keys only, no PUBLISH): a
    // node that does not hold it reads it from Redis at lookup.
    let mut c = raw(&redis);
    let carol_ua = socket();
    let carol_at = carol_ua.local_addr().expect("addr");
    let far = modules::store::now_unix() + 300;
    let _: () = redis::cmd("HSET")
        .arg("sipd:loc:location:b:foreign-1")
        .arg(&[
            ("ruid", "foreign-1".to_string()),
            ("aor", "carol".into()),
            ("username", "carol".into()),
            ("contact", format!("sip:carol@{carol_at}")),
            ("expires", far.to_string()),
            ("q", "-1".into()),
            ("callid", "x".into()),
            ("cseq", "1".into()),
            ("last_modified", far.to_string()),
            ("methods", "-1".into()),
        ])
        .query(&mut c)
        .expect("HSET");
    let _: () = redis::cmd("SADD")
        .arg("sipd:loc:location:a:carol")
        .arg("foreign-1")
        .query(&mut c)
        .expect("SADD");
    assert_eq!(call(&n2, "carol", &carol_ua), Ok(()));

    // Redis down for 5 s: cached users are routed, unknown ones and REGISTERs get 503.
    redis.stop();
    let outage = Instant::now();
    let mut rounds = 0;
    while outage.elapsed() < Duration::from_secs(5) {
        for n in [&n2, &n3] {
            assert_eq!(
                call(n, "alice", &alice),
                Ok(()),
                "cached lookup in the outage"
            );
            assert_eq!(call(n, "bob", &bob), Ok(()), "cached lookup in the outage");
            let r = call(n, "zed", &alice).unwrap_err();
            assert!(
                status(&r).contains("503"),
                "unknown user in the outage: {r}"
            );
            assert!(r.contains("Retry-After: 5"), "{r}");
        }
        let r = register(&n3, "dave", bob_at, 300);
        assert!(status(&r).contains("503"), "REGISTER in the outage: {r}");
        assert!(r.contains("Retry-After:"), "{r}");
        rounds += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(rounds >= 3, "only {rounds} rounds in the outage");

    // Back (empty): the nodes write their bindings back and follow each other again.
    redis.restart();
    let mut c = raw(&redis);
    let restored = within(Duration::from_secs(5), || {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("sipd:loc:location:a:*")
            .query(&mut c)
            .unwrap_or_default();
        ["alice", "bob", "carol"]
            .iter()
            .all(|u| keys.contains(&format!("sipd:loc:location:a:{u}")))
    });
    assert!(restored.is_some(), "bindings not written back to Redis");
    let dave = socket();
    let dave_at = dave.local_addr().expect("addr");
    let registered = within(Duration::from_secs(3), || {
        status(&register(&n3, "dave", dave_at, 300)).contains("200")
    });
    assert!(
        registered.is_some(),
        "REGISTER not accepted after Redis returned"
    );
    assert!(within(Duration::from_secs(1), || call(&n2, "dave", &dave).is_ok()).is_some());
    for n in [&n2, &n3] {
        assert_eq!(call(n, "alice", &alice), Ok(()));
        assert_eq!(call(n, "bob", &bob), Ok(()));
        assert_eq!(call(n, "carol", &carol_ua), Ok(()));
    }
    let r = register(&n2, "bob", bob_at, 0);
    assert!(status(&r).contains("200"), "{r}");
    assert!(within(Duration::from_secs(1), || {
        call(&n3, "bob", &bob).is_err_and(|r| status(&r).contains("404"))
    })
    .is_some());
}

const NDB_SCRIPT: &str = r#"
local function pv(name)
    local v = KSR.pv.get(name)
    if v == nil then return "<null>" end
    return tostring(v)
end

function ksr_request_route()
    local user = KSR.kx.get_ruser()
    local out = {}
    local function note(k, v) out[#out + 1] = k .. "=" .. tostring(v) end
    note("set", KSR.ndb_redis.redis_cmd_p2("srv", "SET sipd:test:%s %s", user, "hello world", "r"))
    note("set_type", pv("$redis(r=>type)"))
    note("set_info", pv("$redis(r=>info)"))
    KSR.ndb_redis.redis_cmd_p1("srv", "GET sipd:test:%s", user, "r")
    note("get", pv("$redis(r=>value)"))
    KSR.ndb_redis.redis_cmd("srv", "INCR sipd:counter", "n")
    note("incr", pv("$redis(n=>value)"))
    note("incr_type", pv("$redis(n=>type)"))
    KSR.ndb_redis.redis_cmd_p3("srv", "RPUSH sipd:list:%s %s %s", user, "a", "b c", "l")
    KSR.ndb_redis.redis_cmd_p1("srv", "LRANGE sipd:list:%s 0 -1", user, "l")
    note("size", pv("$redis(l=>size)"))
    note("v1", pv("$redis(l=>value[1])"))
    note("t0", pv("$redis(l=>type[0])"))
    note("bad", KSR.ndb_redis.redis_cmd("srv", "NOSUCHCMD x", "e"))
    note("bad_type", pv("$redis(e=>type)"))
    note("bad_info", pv("$redis(e=>info)"))
    KSR.ndb_redis.redis_cmd("srv", "GET sipd:absent", "z")
    note("nil_type", pv("$redis(z=>type)"))
    note("unknown_srv", KSR.ndb_redis.redis_cmd("nosuch", "PING", "x"))
    note("missing_param", KSR.ndb_redis.redis_cmd("srv", "GET %s", "x"))
    note("down", KSR.ndb_redis.redis_cmd("down", "PING", "d"))
    note("free", KSR.ndb_redis.redis_free("r"))
    note("free_again", KSR.ndb_redis.redis_free("r"))
    note("after_free", pv("$redis(r=>type)"))
    KSR.hdr.append_to_reply("X-Redis: " .. table.concat(out, ";") .. "\r\n")
    KSR.sl.sl_send_reply(200, "OK")
end
"#;

/// `KSR.ndb_redis` from a Lua script against a real redis-server, plus a server that does
/// not answer (-1, within the command timeout, every time).
#[test]
fn ndb_redis_commands_from_lua() {
    let redis = RedisServer::start();
    let dead = crate::support::sipp::free_port(LO);
    let port = redis.port;
    let sipd = Sipd::launch(
        "route.lua",
        NDB_SCRIPT,
        listen_on(LO, &[Proto::Udp]),
        1,
        move |c: &mut Config, _| {
            c.db_url = "sqlite::memory:".into();
            c.modparams = toml::from_str(&format!(
                "[ndb_redis]\nserver = [\"name=srv;addr=127.0.0.1;port={port};db=1\", \
                 \"name=down;addr=127.0.0.1;port={dead}\"]\n\
                 cmd_timeout = 200\nconnect_timeout = 200\ninit_without_redis = 1\n"
            ))
            .expect("modparams");
        },
    );
    for round in 1..=3 {
        let s = socket();
        let (msg, _) = request("OPTIONS", "sip:alice@sipd.test", "alice", &s, "");
        let start = Instant::now();
        s.send_to(msg.as_bytes(), sipd.addr(Proto::Udp))
            .expect("send");
        let reply = recv(&s, Duration::from_secs(3)).expect("a reply");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        let line = reply
            .lines()
            .find_map(|l| l.strip_prefix("X-Redis: "))
            .unwrap_or_else(|| panic!("{reply}"));
        let got: std::collections::HashMap<&str, &str> = line
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let want = [
            ("set", "0"),
            ("set_type", "5"),
            ("set_info", "OK"),
            ("get", "hello world"),
            ("incr", &round.to_string()),
            ("incr_type", "3"),
            ("size", &(2 * round).to_string()),
            ("v1", "b c"),
            ("t0", "1"),
            ("bad", "0"),
            ("bad_type", "6"),
            ("nil_type", "4"),
            ("unknown_srv", "-1"),
            ("missing_param", "-1"),
            ("down", "-1"),
            ("free", "1"),
            ("free_again", "-1"),
            ("after_free", "<null>"),
        ];
        for (k, v) in want {
            assert_eq!(got.get(k).copied(), Some(v), "{k} in {line}");
        }
        assert!(got["bad_info"].contains("unknown command"), "{line}");
    }
    let mut c = redis::Client::open(redis.url(1))
        .expect("url")
        .get_connection()
        .expect("connect");
    let v: String = redis::cmd("GET")
        .arg("sipd:test:alice")
        .query(&mut c)
        .expect("GET");
    assert_eq!(v, "hello world");
}
