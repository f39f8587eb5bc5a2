//! A real registrar proxy on the wire: sipd started in-process with scripts in the style of
//! Kamailio's basic KEMI example (`registrar/route.{lua,js,py}`), a SQLite store seeded with
//! subscribers and a trusted address, driven by real `sipp` UACs/UASs over UDP and TCP and, for
//! the flood, the trusted peer and the callee that only needs to receive, plain UDP sockets on
//! other loopback addresses (127.0.0.7 floods, 127.0.0.9 is trusted, 127.0.0.10 is not).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use modules::store::{self, AddressRow, Subscriber};
use sipd::config::Config;

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::{self, free_addr, Sipp, LOCALHOST_V4 as LO};

const TIMEOUT: Duration = Duration::from_secs(15);
const WALL: Duration = Duration::from_secs(25);
const DOMAIN: &str = "sipd.test";
const PASSWORD: &str = "s3cret-pw";
const TRUSTED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
const UNTRUSTED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));
const FLOODER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
const BYSTANDER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 8));

const LUA: &str = include_str!("registrar/route.lua");
const JS: &str = include_str!("registrar/route.js");
const PY: &str = include_str!("registrar/route.py");

const MODPARAMS: &str = r#"
[registrar]
min_expires = 1
max_expires = 3600
[htable]
htable = "ipban=>size=8;autoexpire=300;"
[pike]
sampling_time_unit = 2
reqs_density_per_unit = 16
remove_latency = 4
[auth_db]
calculate_ha1 = true
password_column = "password"
"#;

/// Subscribers alice..erin with [`PASSWORD`] and the trusted address in group 1.
fn seed(db: &Path) {
    let store = store::open(&format!("sqlite://{}", db.display()), Path::new("/"))
        .expect("opening the test store");
    for user in ["alice", "bob", "carol", "dave", "erin"] {
        store
            .put_subscriber(
                "subscriber",
                &Subscriber {
                    username: user.into(),
                    domain: DOMAIN.into(),
                    password: PASSWORD.into(),
                    ..Subscriber::default()
                },
            )
            .expect("adding a subscriber");
    }
    store
        .add_address(
            "address",
            &AddressRow {
                grp: 1,
                ip_addr: TRUSTED.to_string(),
                mask: 32,
                port: 0,
                tag: String::new(),
            },
        )
        .expect("adding a trusted address");
}

/// A temporary directory holding the seeded store, kept across sipd restarts.
struct Db {
    dir: tempfile::TempDir,
}

impl Db {
    fn new() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        seed(&dir.path().join("sipd.db"));
        Db { dir }
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("sipd.db").display())
    }
}

/// sipd on UDP and TCP of 127.0.0.1 routing with the registrar script `file` (`source`).
fn start(file: &str, source: &str, db: &Db) -> Sipd {
    let url = db.url();
    Sipd::launch(
        file,
        source,
        listen_on(LO, &[Proto::Udp, Proto::Tcp]),
        2,
        move |c: &mut Config, _| {
            c.aliases = vec![DOMAIN.into()];
            c.db_url = url;
            c.modparams = toml::from_str(MODPARAMS).expect("test modparams");
        },
    )
}

fn script(lang: &str) -> (&'static str, &'static str) {
    match lang {
        "lua" => ("route.lua", LUA),
        "js" => ("route.js", JS),
        _ => ("route.py", PY),
    }
}

/// A sipp UAC running `sf` once through `sipd` over `t` as `user` with `password`.
fn uac(sf: &str, sipd: &Sipd, t: &str, user: &str, password: &str, keys: &[(&str, &str)]) -> Sipp {
    let mut args: Vec<String> = vec![
        "-key".into(),
        "user".into(),
        user.into(),
        "-key".into(),
        "domain".into(),
        DOMAIN.into(),
        "-au".into(),
        user.into(),
        "-ap".into(),
        password.into(),
    ];
    for (k, v) in keys {
        args.extend(["-key".to_string(), k.to_string(), v.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Sipp::uac("uac", sf, free_addr(LO), t, 1, sipd.addr(sipp::proto(t)))
        .timeout(TIMEOUT)
        .wall(WALL)
        .args(&args)
        .spawn()
}

/// Register `user` with its contact at 127.0.0.1:`cport` for `expires` seconds (auth
/// challenge, credentials, 200 listing the binding).
fn register(sipd: &Sipd, t: &str, user: &str, cport: u16, expires: u32) {
    uac(
        "reg_auth_uac.xml",
        sipd,
        t,
        user,
        PASSWORD,
        &[
            ("cport", &cport.to_string()),
            ("expires", &expires.to_string()),
        ],
    )
    .expect_all_ok();
}

/// REGISTER → 401 → REGISTER with credentials → 200, then a record-routed call from alice to
/// the registered bob with proxy auth and a BYE in dialog, over `t`, routed by `lang`.
fn register_and_call(lang: &str, t: &str) {
    let db = Db::new();
    let (file, source) = script(lang);
    let sipd = start(file, source, &db);
    let uas_port = sipp::free_port(LO);
    let uas_addr = SocketAddr::new(LO, uas_port);
    let mut uas = Sipp::uas("uas", "tm_uas.xml", uas_addr, t, 1)
        .timeout(TIMEOUT)
        .wall(WALL)
        .args(&["-d", "10"])
        .spawn();
    uas.wait_bound(uas_addr, t);
    register(&sipd, t, "bob", uas_port, 600);
    uac(
        "call_auth_uac.xml",
        &sipd,
        t,
        "alice",
        PASSWORD,
        &[("callee", "bob")],
    )
    .expect_all_ok();
    uas.expect_all_ok();
}

#[test]
fn lua_register_and_call_udp() {
    register_and_call("lua", "u1");
}

#[test]
fn lua_register_and_call_tcp() {
    register_and_call("lua", "t1");
}

#[test]
fn js_register_and_call_udp() {
    register_and_call("js", "u1");
}

#[test]
fn js_register_and_call_tcp() {
    register_and_call("js", "t1");
}

#[test]
fn python_register_and_call_udp() {
    register_and_call("py", "u1");
}

#[test]
fn python_register_and_call_tcp() {
    register_and_call("py", "t1");
}

/// 404 for an INVITE to a user with no binding; a wrong password is challenged again.
fn refusals(lang: &str, t: &str) {
    let db = Db::new();
    let (file, source) = script(lang);
    let sipd = start(file, source, &db);
    uac(
        "call_404_uac.xml",
        &sipd,
        t,
        "alice",
        PASSWORD,
        &[("callee", "nobody")],
    )
    .expect_all_ok();
    uac(
        "reg_badpw_uac.xml",
        &sipd,
        t,
        "carol",
        "not-the-password",
        &[("cport", "5999")],
    )
    .expect_all_ok();
}

#[test]
fn lua_refusals_udp() {
    refusals("lua", "u1");
}

#[test]
fn lua_refusals_tcp() {
    refusals("lua", "t1");
}

#[test]
fn js_refusals_udp() {
    refusals("js", "u1");
}

#[test]
fn python_refusals_udp() {
    refusals("py", "u1");
}

/// A UDP socket on `ip` (port chosen by the system) with a short read timeout.
fn socket_on(ip: IpAddr) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("binding UDP on {ip}: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    s
}

/// A request `method` to `ruri` from `sock`, with `from` as the From URI.
fn request(sock: &UdpSocket, method: &str, ruri: &str, from: &str, n: u32) -> String {
    let local = sock.local_addr().expect("local addr");
    format!(
        "{method} {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-reg-{n}-{}\r\n\
         Max-Forwards: 70\r\n\
         From: <{from}>;tag=f{n}\r\n\
         To: <{ruri}>\r\n\
         Call-ID: reg-test-{n}-{}@{}\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:peer@{local}>\r\n\
         Content-Length: 0\r\n\r\n",
        local.port(),
        local.port(),
        local.ip()
    )
}

/// Every datagram `sock` receives until `quiet` passes without one (at most `limit` overall).
fn drain(sock: &UdpSocket, quiet: Duration, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut last = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_535];
    while start.elapsed() < limit && last.elapsed() < quiet {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            last = Instant::now();
        }
    }
    got
}

/// The status codes among `msgs`.
fn codes(msgs: &[String]) -> Vec<u16> {
    msgs.iter()
        .filter_map(|m| m.strip_prefix("SIP/2.0 "))
        .filter_map(|r| r.get(..3)?.parse().ok())
        .collect()
}

/// Send `text` from `sock` to `to` and collect what comes back within `wait`.
fn exchange(sock: &UdpSocket, to: SocketAddr, text: &str, wait: Duration) -> Vec<String> {
    sock.send_to(text.as_bytes(), to).expect("send");
    drain(sock, wait, wait * 4)
}

/// A request whose method is `method` arrives at `callee` within `wait`.
fn arrives(callee: &UdpSocket, method: &str, wait: Duration) -> bool {
    drain(callee, wait, wait * 4)
        .iter()
        .any(|m| m.starts_with(&format!("{method} ")))
}

/// Register `user` at a plain UDP socket (the callee) through sipp; returns the callee socket.
fn register_at_socket(sipd: &Sipd, user: &str, expires: u32) -> UdpSocket {
    let callee = socket_on(LO);
    let port = callee.local_addr().expect("addr").port();
    register(sipd, "u1", user, port, expires);
    callee
}

#[test]
fn trusted_address_skips_auth_and_others_are_challenged() {
    let db = Db::new();
    let sipd = start("route.lua", LUA, &db);
    let callee = register_at_socket(&sipd, "bob", 600);
    let to = sipd.addr(Proto::Udp);
    let ruri = format!("sip:bob@{DOMAIN}");

    let untrusted = socket_on(UNTRUSTED);
    let got = exchange(
        &untrusted,
        to,
        &request(
            &untrusted,
            "MESSAGE",
            &ruri,
            &format!("sip:alice@{DOMAIN}"),
            1,
        ),
        Duration::from_millis(400),
    );
    assert_eq!(
        codes(&got),
        vec![407],
        "a local From from an untrusted address is challenged: {got:?}"
    );
    assert!(!arrives(&callee, "MESSAGE", Duration::from_millis(200)));

    let trusted = socket_on(TRUSTED);
    trusted
        .send_to(
            request(&trusted, "MESSAGE", &ruri, "sip:gateway@carrier.example", 2).as_bytes(),
            to,
        )
        .expect("send");
    assert!(
        arrives(&callee, "MESSAGE", Duration::from_millis(500)),
        "the trusted address reaches the registered user without credentials"
    );
}

#[test]
fn expired_binding_is_gone() {
    let db = Db::new();
    let sipd = start("route.lua", LUA, &db);
    let callee = register_at_socket(&sipd, "carol", 2);
    let to = sipd.addr(Proto::Udp);
    let ruri = format!("sip:carol@{DOMAIN}");
    let trusted = socket_on(TRUSTED);
    trusted
        .send_to(
            request(&trusted, "MESSAGE", &ruri, "sip:gw@carrier.example", 1).as_bytes(),
            to,
        )
        .expect("send");
    assert!(
        arrives(&callee, "MESSAGE", Duration::from_millis(500)),
        "registered: relayed"
    );
    std::thread::sleep(Duration::from_millis(3_200));
    let got = exchange(
        &trusted,
        to,
        &request(&trusted, "MESSAGE", &ruri, "sip:gw@carrier.example", 2),
        Duration::from_millis(500),
    );
    assert!(codes(&got).contains(&404), "expired: 404, got {got:?}");
    // The first MESSAGE may still be retransmitted by the transaction (the callee never
    // answers it); the second must not arrive.
    let second = drain(&callee, Duration::from_millis(200), Duration::from_secs(1));
    assert!(
        !second.iter().any(|m| m.contains("Call-ID: reg-test-2-")),
        "the expired binding was used: {second:?}"
    );
}

#[test]
fn flood_is_banned_by_pike_and_htable() {
    let db = Db::new();
    let sipd = start("route.lua", LUA, &db);
    let to = sipd.addr(Proto::Udp);
    let keepalive = format!("sip:{DOMAIN}");
    let flooder = socket_on(FLOODER);
    let sent = 80;
    for n in 0..sent {
        flooder
            .send_to(
                request(&flooder, "OPTIONS", &keepalive, "sip:scan@flood.example", n).as_bytes(),
                to,
            )
            .expect("send");
    }
    let answered = codes(&drain(
        &flooder,
        Duration::from_millis(500),
        Duration::from_secs(5),
    ));
    assert!(
        !answered.is_empty() && answered.len() < sent as usize,
        "pike answers the first requests of a flood and blocks the rest: {} of {sent} answered",
        answered.len()
    );
    let later = exchange(
        &flooder,
        to,
        &request(
            &flooder,
            "OPTIONS",
            &keepalive,
            "sip:scan@flood.example",
            999,
        ),
        Duration::from_millis(400),
    );
    assert!(
        later.is_empty(),
        "the banned address gets nothing: {later:?}"
    );
    let bystander = socket_on(BYSTANDER);
    let got = exchange(
        &bystander,
        to,
        &request(
            &bystander,
            "OPTIONS",
            &keepalive,
            "sip:ok@elsewhere.example",
            1,
        ),
        Duration::from_millis(400),
    );
    assert_eq!(codes(&got), vec![200], "another address is still answered");
}

#[test]
fn registrations_survive_a_restart() {
    let db = Db::new();
    let callee;
    {
        let sipd = start("route.lua", LUA, &db);
        callee = register_at_socket(&sipd, "dave", 600);
    }
    let sipd = start("route.lua", LUA, &db);
    let trusted = socket_on(TRUSTED);
    trusted
        .send_to(
            request(
                &trusted,
                "MESSAGE",
                &format!("sip:dave@{DOMAIN}"),
                "sip:gw@carrier.example",
                1,
            )
            .as_bytes(),
            sipd.addr(Proto::Udp),
        )
        .expect("send");
    assert!(
        arrives(&callee, "MESSAGE", Duration::from_millis(500)),
        "the binding saved before the restart is found after it"
    );
}

/// The error of starting sipd with the registrar on the store at `url`.
fn start_error(url: String) -> String {
    let script = crate::support::script("route.lua", LUA);
    let args = sipd::config::RunArgs {
        listen: listen_on(LO, &[Proto::Udp]),
        script: Some(script.path.clone()),
        workers: Some(1),
        log_level: Some("error".into()),
        ..sipd::config::RunArgs::default()
    };
    let mut config = Config::load(&args).expect("configuration");
    config.db_url = url;
    config.rpc = None;
    config.modparams = toml::from_str(MODPARAMS).expect("test modparams");
    match sipd::server::Server::start(config) {
        Ok(_) => panic!("sipd started on a store it cannot write"),
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

#[test]
fn a_locked_or_unwritable_store_stops_startup_with_a_clear_error() {
    let db = Db::new();
    let path = db.dir.path().join("sipd.db");
    let holder = rusqlite::Connection::open(&path).expect("open");
    holder
        .execute_batch("BEGIN EXCLUSIVE;")
        .expect("lock the database");
    let e = start_error(db.url());
    assert!(
        e.contains("locked") && e.contains(&path.display().to_string()),
        "names the file and the lock: {e}"
    );
    drop(holder);

    let missing = db.dir.path().join("no/such/dir/sipd.db");
    let e = start_error(format!("sqlite://{}", missing.display()));
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("open"),
        "names the file it cannot open: {e}"
    );
}

/// The README's first command: `examples/registrar.toml` is a registrar that challenges,
/// registers a subscriber, and relays nothing for strangers.
#[test]
fn the_shipped_registrar_example_registers_and_is_no_open_relay() {
    let db = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", db.path().join("sipd.db").display());
    let store = store::open(&url, Path::new("/")).expect("store");
    store
        .put_subscriber(
            "subscriber",
            &Subscriber {
                username: "alice".into(),
                domain: "localhost".into(),
                password: PASSWORD.into(),
                ..Subscriber::default()
            },
        )
        .expect("subscriber");
    let args = sipd::config::RunArgs {
        config: Some(crate::support::example("registrar.toml")),
        listen: listen_on(LO, &[Proto::Udp, Proto::Tcp]),
        log_level: Some("warn".into()),
        ..sipd::config::RunArgs::default()
    };
    let mut config = Config::load(&args).expect("examples/registrar.toml loads");
    config.db_url = url;
    config.rpc = None;
    let handle = sipd::server::Server::start(config).expect("the example starts");
    let proxy = handle.local_addr(Proto::Udp, false).expect("udp address");

    let reg = Sipp::uac("reg", "reg_auth_uac.xml", free_addr(LO), "u1", 1, proxy)
        .timeout(TIMEOUT)
        .wall(WALL)
        .args(&[
            "-key",
            "user",
            "alice",
            "-key",
            "domain",
            "localhost",
            "-key",
            "cport",
            "5999",
            "-key",
            "expires",
            "600",
            "-au",
            "alice",
            "-ap",
            PASSWORD,
        ])
        .spawn();
    reg.expect_all_ok();

    let stranger = socket_on(UNTRUSTED);
    let got = exchange(
        &stranger,
        proxy,
        &request(
            &stranger,
            "INVITE",
            "sip:someone@elsewhere.example",
            "sip:x@other.example",
            1,
        ),
        Duration::from_millis(500),
    );
    let finals: Vec<u16> = codes(&got).into_iter().filter(|c| *c >= 200).collect();
    assert_eq!(
        finals,
        vec![403],
        "a stranger relaying to a foreign domain is refused: {got:?}"
    );
}

/// Saves every REGISTER, nothing else.
const SAVE_ONLY: &str = r#"
function ksr_request_route()
    if KSR.is_REGISTER() then
        KSR.registrar.save("location", 0)
    end
end
"#;

/// A REGISTER of `user` binding `sock`'s address for `expires` seconds.
fn register_request(sock: &UdpSocket, user: &str, expires: u32, cseq: u32) -> String {
    let local = sock.local_addr().expect("local addr");
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-bound-{user}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{DOMAIN}>;tag=b{cseq}\r\n\
         To: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: bound-{user}@{}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@{local}>\r\n\
         Expires: {expires}\r\n\
         Content-Length: 0\r\n\r\n",
        local.ip()
    )
}

#[test]
fn registrations_beyond_max_bindings_get_503_with_retry_after() {
    let sipd = Sipd::launch(
        "route.lua",
        SAVE_ONLY,
        listen_on(LO, &[Proto::Udp]),
        1,
        |c: &mut Config, _| {
            c.aliases = vec![DOMAIN.into()];
            c.db_url = "sqlite::memory:".into();
            c.modparams = toml::from_str("[usrloc]\nmax_bindings = 2\n").expect("modparams");
        },
    );
    let to = sipd.addr(Proto::Udp);
    let sock = socket_on(LO);
    let wait = Duration::from_millis(300);
    let answer = |user: &str, expires: u32, cseq: u32| {
        let got = exchange(
            &sock,
            to,
            &register_request(&sock, user, expires, cseq),
            wait,
        );
        assert_eq!(got.len(), 1, "one answer to {user}'s REGISTER: {got:?}");
        got.into_iter().next().unwrap_or_default()
    };
    for user in ["ann", "ben"] {
        let r = answer(user, 600, 1);
        assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{user}: {r}");
    }
    // The third binding would pass the bound: 503, with Retry-After although the registrar's
    // retry_after is 0.
    let r = answer("cid", 600, 1);
    assert!(r.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{r}");
    assert!(r.contains("\r\nRetry-After: 5\r\n"), "{r}");
    assert!(
        r.contains("\r\nP-Registrar-Error: Location table full\r\n"),
        "{r}"
    );
    // A refresh adds nothing: still served.
    let r = answer("ann", 600, 2);
    assert!(
        r.starts_with("SIP/2.0 200 OK\r\n"),
        "refresh at the bound: {r}"
    );
    // Once a binding goes, there is room again.
    let r = answer("ben", 0, 2);
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "unregister: {r}");
    let r = answer("cid", 600, 2);
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "room again: {r}");
}
