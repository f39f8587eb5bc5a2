//! SIP over TLS with real peers: certificates made at test time (rcgen: a CA, a server
//! certificate for 127.0.0.1/localhost, client certificates), a TLS client on Python's `ssl`
//! module (OpenSSL) sending real SIP (`tests/tls/sip_tls_client.py`; Debian's sipp is built
//! without TLS), sipp UASs over UDP, and sipd both accepting and opening TLS connections.
//! Refused handshakes (wrong CA, plain TCP, a stalled client, a missing or expired client
//! certificate) are checked to be closed, logged and counted, with other connections served.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use sipd::config::{MetricsConfig, RpcConfig};
use sipd::endpoint::Endpoint;
use sipd::rpc::client;
use sipd::transport::tls::{ClientAuth, MinVersion, TlsConfig};

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::{self, Sipp};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A CA and what it signed, as PEM files in a temporary directory.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
}

/// One CA: its certificate and key, to sign more.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("CA key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).expect("CA certificate");
    Ca { cert, key }
}

impl Pki {
    /// `ca.pem`, `server.pem`/`server.key` (127.0.0.1, localhost), `client.pem`/`client.key`,
    /// `expired.pem`/`expired.key` (a client certificate that expired in 2001), and
    /// `other-ca.pem`, a CA that signed none of them.
    pub(crate) fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki { dir };
        let ca = ca("sipd test CA");
        pki.write("ca.pem", &ca.cert.pem());
        pki.issue(&ca, "server", &["127.0.0.1", "localhost"], false);
        pki.issue(&ca, "client", &["client.example"], false);
        pki.issue(&ca, "expired", &["client.example"], true);
        pki.write("other-ca.pem", &self::ca("another CA").cert.pem());
        pki
    }

    fn issue(&self, ca: &Ca, name: &str, sans: &[&str], expired: bool) {
        let key = KeyPair::generate().expect("key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(sans).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        if expired {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = p.signed_by(&key, &ca.cert, &ca.key).expect("sign");
        self.write(&format!("{name}.pem"), &cert.pem());
        self.write(&format!("{name}.key"), &key.serialize_pem());
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write PEM");
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `[tls]` with the server certificate, client certificates verified against the CA.
    pub(crate) fn config(&self) -> TlsConfig {
        TlsConfig {
            certificate: self.path("server.pem"),
            private_key: self.path("server.key"),
            ca_list: Some(self.path("ca.pem")),
            min_version: MinVersion::Tls12,
            handshake_timeout: Duration::from_secs(5),
            verify_client: ClientAuth::None,
            listeners: Vec::new(),
            sni: Vec::new(),
            clients: Vec::new(),
        }
    }
}

/// Every log line of sipd's TLS and WebSocket code and of dropped input (all tests of this binary share it; each looks for its
/// own peer's port).
pub(crate) fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(
                "sipd::server::worker::tls_io=info,sipd::server::worker::ws_io=info,\
                 sipd::server::drop_log=info",
            )
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&sink)))
            .finish();
        // Another test may have installed one first; then lines are not captured and
        // `logged` says so.
        let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Wait (up to 5 s) for a captured log line containing every one of `parts`.
pub(crate) fn logged(parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&logs().lock().expect("logs")).into_owned();
        if let Some(line) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?}; captured:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stateful, record-routing: initial INVITEs get `X-In-Proto: $pr` and go to `NEXT`; in-dialog
/// requests follow their Route set.
const SCRIPT: &str = r#"
local NEXT = "%NEXT%"
function ksr_request_route()
    if KSR.siputils.has_totag() > 0 then
        if KSR.rr.loose_route() < 0 then
            KSR.sl.sl_send_reply(404, "No Route")
            return 1
        end
        KSR.tm.t_relay()
        return 1
    end
    if KSR.tm.t_check_trans() == 0 then
        return 1
    end
    if KSR.is_INVITE() then
        KSR.rr.record_route()
        KSR.hdr.append("X-In-Proto: " .. KSR.pv.get("$pr") .. "\r\n")
    end
    KSR.setdsturi(NEXT)
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_reply_error()
    end
    return 1
end
"#;

/// sipd with `listen`, the PKI's `[tls]` (adjusted by `tune`), routing initial requests to
/// `next`.
fn sipd(pki: &Pki, listen: Vec<Endpoint>, next: &str, tune: impl FnOnce(&mut TlsConfig)) -> Sipd {
    logs();
    let mut tls = pki.config();
    tune(&mut tls);
    // The command line has no [tls]: the TLS listeners join with it, as a file would give them.
    let (secure, plain): (Vec<_>, Vec<_>) = listen.into_iter().partition(|e| e.proto == Proto::Tls);
    Sipd::launch(
        "route.lua",
        &SCRIPT.replace("%NEXT%", next),
        plain,
        2,
        move |c, dir| {
            c.listen.extend(secure);
            c.tls = Some(tls);
            c.rpc = Some(RpcConfig {
                socket: dir.join("ctl.sock"),
                explicit: true,
                http: None,
            });
            c.metrics = Some(MetricsConfig {
                listen: SocketAddr::new(LO, 0),
            });
        },
    )
}

/// A sipp UAS over UDP answering `calls` calls, once bound.
fn uas(calls: u32) -> (Sipp, SocketAddr) {
    let addr = sipp::free_addr(LO);
    let mut uas = Sipp::uas("uas", "tm_uas.xml", addr, "u1", calls)
        .timeout(Duration::from_secs(10))
        .wall(Duration::from_secs(20))
        .spawn();
    uas.wait_bound(addr, "u1");
    (uas, addr)
}

/// The Prometheus text of `sipd`.
pub(crate) fn scrape(sipd: &Sipd) -> String {
    let addr = sipd.handle().metrics_addr().expect("metrics");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    text
}

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tls/sip_tls_client.py")
}

/// Start the Python TLS client with `args`.
fn spawn_client(args: &[&str]) -> std::process::Child {
    Command::new("python3")
        .arg(client_script())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (Debian: python3)")
}

/// Run the Python TLS client with `args` (bounded by its own timeouts and a 30 s wall).
fn client(args: &[&str]) -> Output {
    finish(spawn_client(args))
}

/// Wait for the client (killing it after 30 s) and take its output.
fn finish(mut child: std::process::Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("client output")
}

fn text(o: &Output) -> String {
    format!(
        "exit {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A call from the TLS client through `sipd`'s listener `tls` to the sipp UAS at `uas`.
fn tls_call(pki: &Pki, tls: SocketAddr, uas: SocketAddr, extra: &[&str]) -> Output {
    let port = tls.port().to_string();
    let ca = pki.path("ca.pem");
    let to = format!("sip:bob@{uas}");
    let mut args = vec![
        "call",
        "127.0.0.1",
        &port,
        "--ca",
        ca.to_str().expect("utf-8 path"),
        "--name",
        "127.0.0.1",
        "--to",
        &to,
    ];
    args.extend_from_slice(extra);
    client(&args)
}

fn handshake(pki: &Pki, tls: SocketAddr, ca: &str, extra: &[&str]) -> Output {
    let port = tls.port().to_string();
    let ca = pki.path(ca);
    let mut args = vec![
        "handshake",
        "127.0.0.1",
        &port,
        "--ca",
        ca.to_str().expect("utf-8 path"),
        "--name",
        "localhost",
    ];
    args.extend_from_slice(extra);
    client(&args)
}

#[test]
fn call_over_tls_to_a_udp_callee_is_record_routed_across_the_transport_change() {
    let pki = Pki::new();
    let (mut uas, uas_addr) = uas(1);
    let sipd = sipd(
        &pki,
        listen_on(LO, &[Proto::Udp, Proto::Tls]),
        &format!("sip:{uas_addr}"),
        |_| {},
    );
    let tls = sipd.addr(Proto::Tls);
    let udp = sipd.addr(Proto::Udp);
    let out = tls_call(&pki, tls, uas_addr, &[]);
    assert!(out.status.success(), "TLS call failed:\n{}", text(&out));
    uas.expect_success();
    let seen = uas.messages();
    // $pr is tls; two Record-Route entries (UDP towards the callee, TLS towards the caller);
    // the caller's Via is TLS below sipd's UDP one.
    assert!(seen.contains("X-In-Proto: tls"), "{seen}");
    let rr_tls = format!("<sip:{tls};transport=tls;lr;");
    let rr_udp = format!("<sip:{udp};lr;");
    assert!(
        seen.contains(&rr_tls) && seen.contains(&rr_udp),
        "want {rr_tls} and {rr_udp}:\n{seen}"
    );
    assert!(seen.contains("Via: SIP/2.0/TLS 127.0.0.1:"), "{seen}");
    assert!(
        seen.contains("BYE sip:callee@"),
        "the BYE followed the route set:\n{seen}"
    );
    let stats = sipd.handle().tls().expect("tls").stats();
    assert!(stats.handshakes() >= 1);
    assert_eq!(stats.handshake_failures(), 0);
    let metrics = scrape(&sipd);
    assert!(
        metrics.contains("sipd_tls_handshakes ")
            && metrics.contains("sipd_tls_handshake_failures 0"),
        "{metrics}"
    );
    // The client closed its connection: the open count goes back to 0.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.open() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stats.open(), 0, "the closed connection is still counted");
}

#[test]
fn sipd_opens_tls_to_a_sips_next_hop_verified_against_the_configured_ca() {
    let pki = Pki::new();
    let (mut uas, uas_addr) = uas(1);
    // B: accepts TLS, relays to the UDP callee.
    let b = sipd(
        &pki,
        listen_on(LO, &[Proto::Udp, Proto::Tls]),
        &format!("sip:{uas_addr}"),
        |_| {},
    );
    let b_tls = b.addr(Proto::Tls);
    // A: takes the UDP caller, relays to B over TLS by a sips: destination (the CA is the
    // only root: B's certificate is verified for 127.0.0.1).
    let a = sipd(
        &pki,
        listen_on(LO, &[Proto::Udp, Proto::Tls]),
        &format!("sips:{b_tls}"),
        |_| {},
    );
    let mut uac = Sipp::uac(
        "uac",
        "tm_uac.xml",
        sipp::free_addr(LO),
        "u1",
        1,
        a.addr(Proto::Udp),
    )
    .timeout(Duration::from_secs(10))
    .wall(Duration::from_secs(20))
    .spawn();
    uac.expect_success();
    uas.expect_success();
    let seen = uas.messages();
    // At the callee: B's UDP Via on top, A's TLS Via below it; B recorded its TLS side.
    assert!(seen.contains("X-In-Proto: tls"), "{seen}");
    assert!(seen.contains("Via: SIP/2.0/TLS 127.0.0.1:"), "{seen}");
    assert!(
        seen.contains(&format!("<sip:{b_tls};transport=tls;lr;")),
        "{seen}"
    );
    let (a_stats, b_stats) = (
        a.handle().tls().expect("tls").stats(),
        b.handle().tls().expect("tls").stats(),
    );
    assert_eq!(
        (a_stats.handshake_failures(), b_stats.handshake_failures()),
        (0, 0)
    );
    // The whole dialog (INVITE, ACK, BYE and their replies) took one connection each way.
    assert_eq!(a_stats.handshakes(), 1, "A reused its connection to B");
    assert_eq!(b_stats.handshakes(), 1, "B answered over A's connection");
}

#[test]
fn refused_handshakes_are_closed_logged_and_cost_nothing_else() {
    let pki = Pki::new();
    let (mut uas, uas_addr) = uas(1);
    let sipd = sipd(
        &pki,
        listen_on(LO, &[Proto::Udp, Proto::Tls]),
        &format!("sip:{uas_addr}"),
        |t| t.handshake_timeout = Duration::from_millis(800),
    );
    let tls = sipd.addr(Proto::Tls);
    let stats = Arc::clone(sipd.handle().tls().expect("tls").stats());

    // A client that stalls mid-handshake: a TLS record header, then nothing.
    let mut stalled = TcpStream::connect(tls).expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x80, 0x01])
        .expect("partial hello");
    let stalled_port = stalled.local_addr().expect("addr").port().to_string();
    let started = Instant::now();

    // Meanwhile a good client makes a whole call.
    let out = tls_call(&pki, tls, uas_addr, &[]);
    assert!(
        out.status.success(),
        "a good call failed while a handshake stalled:\n{}",
        text(&out)
    );
    uas.expect_success();

    // The stalled one is closed at the handshake timeout, with a log line.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let n = stalled.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "sipd answered a stalled handshake");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        started.elapsed()
    );
    logged(&["handshake timed out", &format!(":{stalled_port}")]);

    // Plain SIP over TCP to the TLS port: closed without a SIP answer.
    let mut plain = TcpStream::connect(tls).expect("connect");
    let plain_port = plain.local_addr().expect("addr").port().to_string();
    plain
        .write_all(
            b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKx\r\n\
              From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: plain\r\nCSeq: 1 OPTIONS\r\n\
              Content-Length: 0\r\n\r\n",
        )
        .expect("send");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("SIP/2.0"),
        "a SIP answer over plain TCP on the TLS port"
    );
    logged(&["tls handshake failed", &format!(":{plain_port}")]);

    // A client that does not trust sipd's CA refuses it; sipd logs the alert it got.
    let out = handshake(&pki, tls, "other-ca.pem", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("certificate verify failed"),
        "{}",
        text(&out)
    );
    logged(&["tls handshake failed", "UnknownCA"]);

    assert!(
        stats.handshake_failures() >= 3,
        "{} failures counted",
        stats.handshake_failures()
    );
    // Still serving.
    let out = handshake(&pki, tls, "ca.pem", &[]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn client_certificates_are_required_per_listener() {
    let pki = Pki::new();
    let strict = sipp::free_addr(LO);
    let open = sipp::free_addr(LO);
    let listen = vec![
        Endpoint {
            proto: Proto::Udp,
            addr: SocketAddr::new(LO, 0),
        },
        Endpoint {
            proto: Proto::Tls,
            addr: strict,
        },
        Endpoint {
            proto: Proto::Tls,
            addr: open,
        },
    ];
    let _sipd = sipd(&pki, listen, "sip:127.0.0.1:9", |t| {
        t.listeners = vec![(strict, ClientAuth::Required)];
    });
    let client_cert = pki.path("client.pem");
    let client_key = pki.path("client.key");
    let with_cert = [
        "--cert",
        client_cert.to_str().expect("utf-8"),
        "--key",
        client_key.to_str().expect("utf-8"),
    ];
    // TLS 1.2, so that the server's verdict on the client certificate ends the handshake.
    let out = handshake(&pki, strict, "ca.pem", &["--max-tls12"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    logged(&[
        "tls handshake failed",
        "peer sent no certificates",
        &strict.to_string(),
    ]);
    let out = handshake(
        &pki,
        strict,
        "ca.pem",
        &[&with_cert[..], &["--max-tls12"]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let expired_cert = pki.path("expired.pem");
    let expired_key = pki.path("expired.key");
    let out = handshake(
        &pki,
        strict,
        "ca.pem",
        &[
            "--max-tls12",
            "--cert",
            expired_cert.to_str().expect("utf-8"),
            "--key",
            expired_key.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    logged(&[
        "tls handshake failed",
        "certificate expired",
        &strict.to_string(),
    ]);
    // The other listener asks for nothing; TLS 1.3 by default.
    let out = handshake(&pki, open, "ca.pem", &[]);
    assert!(text(&out).contains("TLSv1.3"), "{}", text(&out));
}

#[test]
fn tls_reload_takes_new_certificates_for_new_connections_only() {
    let pki = Pki::new();
    let (mut uas, uas_addr) = uas(1);
    let sipd = sipd(
        &pki,
        listen_on(LO, &[Proto::Udp, Proto::Tls]),
        &format!("sip:{uas_addr}"),
        |_| {},
    );
    let tls = sipd.addr(Proto::Tls);
    let stats = Arc::clone(sipd.handle().tls().expect("tls").stats());
    // A caller connects (old certificate) and waits before calling.
    let go = pki.path("go");
    let ca = pki.path("ca.pem");
    let port = tls.port().to_string();
    let to = format!("sip:bob@{uas_addr}");
    let early = spawn_client(&[
        "call",
        "127.0.0.1",
        &port,
        "--ca",
        ca.to_str().expect("utf-8"),
        "--name",
        "127.0.0.1",
        "--to",
        &to,
        "--wait-for",
        go.to_str().expect("utf-8"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.open() < 1 {
        assert!(Instant::now() < deadline, "the caller never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A new CA and server certificate in place of the old files.
    let fresh = Pki::new();
    for f in ["server.pem", "server.key"] {
        std::fs::copy(fresh.path(f), pki.path(f)).expect("replace");
    }
    std::fs::copy(fresh.path("ca.pem"), pki.path("new-ca.pem")).expect("copy");
    let socket = sipd
        .handle()
        .rpc_socket()
        .expect("rpc socket")
        .to_path_buf();
    let methods = client::call(&socket, "system.listMethods", &[]).expect("listMethods");
    assert!(methods.to_string().contains("\"tls.reload\""), "{methods}");
    client::call(&socket, "tls.reload", &[]).expect("tls.reload");
    let out = handshake(&pki, tls, "ca.pem", &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "old CA still accepted: {}",
        text(&out)
    );
    let out = handshake(&pki, tls, "new-ca.pem", &[]);
    assert!(out.status.success(), "{}", text(&out));
    // A broken file is refused and the running certificates stay.
    std::fs::write(pki.path("server.pem"), "garbage").expect("write");
    let e = client::call(&socket, "tls.reload", &[]).expect_err("bad file refused");
    assert!(format!("{e:?}").contains("server.pem"), "{e:?}");
    let out = handshake(&pki, tls, "new-ca.pem", &[]);
    assert!(out.status.success(), "{}", text(&out));
    // The connection made before the reload carries a whole call afterwards.
    std::fs::write(&go, "").expect("go");
    let out = finish(early);
    assert!(out.status.success(), "{}", text(&out));
    uas.expect_success();
}

#[test]
fn outgoing_tls_to_a_server_the_ca_does_not_vouch_for_is_refused() {
    let pki = Pki::new();
    let b = sipd(
        &pki,
        listen_on(LO, &[Proto::Udp, Proto::Tls]),
        "sip:127.0.0.1:9",
        |_| {},
    );
    let b_tls = b.addr(Proto::Tls);
    // A trusts only a CA that did not sign B's certificate.
    let a = sipd(
        &pki,
        listen_on(LO, &[Proto::Udp, Proto::Tls]),
        &format!("sip:{b_tls};transport=tls"),
        |t| t.ca_list = Some(pki.path("other-ca.pem")),
    );
    let caller = std::net::UdpSocket::bind((LO, 0)).expect("bind");
    let me = caller.local_addr().expect("addr");
    let invite = format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-untrusted\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: untrusted@test\r\nCSeq: 1 INVITE\r\nContact: <sip:a@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    caller
        .send_to(invite.as_bytes(), a.addr(Proto::Udp))
        .expect("send");
    let line = logged(&[
        "tls handshake with the server failed",
        &format!("dst={b_tls}"),
    ]);
    assert!(line.contains("UnknownIssuer"), "{line}");
    let stats = a.handle().tls().expect("tls").stats();
    assert!(stats.handshake_failures() >= 1);
    assert_eq!(
        stats.handshakes(),
        0,
        "no connection to an unverified server"
    );
}
