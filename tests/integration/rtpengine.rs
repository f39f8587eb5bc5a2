//! Media relay through a real rtpengine (Debian's `rtpengine-daemon`, userspace only), started
//! by each test on free loopback ports and killed on drop. A UAC and a UAS of ours (plain UDP
//! sockets) make calls through sipd routing with `KSR.rtpengine.rtpengine_manage` (ng
//! protocol) or `KSR.rtpproxy.rtpproxy_manage` (rtpproxy protocol on `--listen-udp`): each
//! side must see the daemon's address and port in the SDP it gets, RTP sent to those
//! addresses must arrive at the other side, and after the BYE the daemon must hold no call
//! (ng `list`). A daemon stopped mid-test gives the script's error path (500) without
//! hanging, and calls work again once it is back. Tests run one at a time (one lock): each
//! starts its own daemon with its own port range.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use sipd::config::Config;

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::{free_port, LOCALHOST_V4 as LO};

/// One daemon at a time: port ranges never overlap and the 2 cores are not flooded.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Media ports per daemon.
const RANGE: u16 = 20;

/// A running rtpengine, killed on drop.
struct Daemon {
    child: Option<Child>,
    ng: SocketAddr,
    legacy: SocketAddr,
    ports: (u16, u16),
}

/// `RANGE` consecutive UDP ports free on loopback now.
fn free_range() -> (u16, u16) {
    let seed = u16::try_from(std::process::id() % 1000).unwrap_or(0);
    for attempt in 0..200u16 {
        let base = 30_000 + ((seed + attempt * 97) % 1500) * RANGE;
        let all_free = (base..base + RANGE).all(|p| UdpSocket::bind((LO, p)).is_ok());
        if all_free {
            return (base, base + RANGE - 1);
        }
    }
    panic!("no free range of {RANGE} UDP ports");
}

impl Daemon {
    fn start() -> Daemon {
        let ng = SocketAddr::new(LO, free_port(LO));
        let legacy = SocketAddr::new(LO, free_port(LO));
        let ports = free_range();
        let mut d = Daemon {
            child: None,
            ng,
            legacy,
            ports,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let child = Command::new("rtpengine")
            .args([
                // Not /etc/rtpengine/rtpengine.conf: it would add the system daemon's CLI
                // and HTTP ports (2224, 2225), taken when Debian's service runs.
                "--config-file=none",
                "--interface=127.0.0.1",
                &format!("--listen-ng={}", self.ng),
                &format!("--listen-udp={}", self.legacy),
                "--table=-1",
                "--foreground",
                "--delete-delay=0",
                &format!("--port-min={}", self.ports.0),
                &format!("--port-max={}", self.ports.1),
                "--log-stderr",
                "--log-level=4",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rtpengine (install rtpengine-daemon)");
        self.child = Some(child);
        // Ready once it answers a ping (bounded).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ng(self.ng, "d7:command4:pinge").is_some_and(|r| r.contains("pong")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("rtpengine did not answer on {}", self.ng);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The Call-IDs the daemon holds (ng `list`).
    fn calls(&self) -> String {
        ng(self.ng, "d7:command4:liste").expect("ng list answered")
    }

    fn in_range(&self, port: u16) -> bool {
        (self.ports.0..=self.ports.1).contains(&port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One ng command from the test itself; the reply after the cookie.
fn ng(to: SocketAddr, dict: &str) -> Option<String> {
    let s = UdpSocket::bind((LO, 0)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    let cookie = format!(
        "t{}",
        Instant::now().elapsed().as_nanos() ^ u128::from(s.local_addr().ok()?.port())
    );
    s.send_to(format!("{cookie} {dict}").as_bytes(), to).ok()?;
    let mut buf = vec![0u8; 65536];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.strip_prefix(&format!("{cookie} ")).map(str::to_string)
}

/// The routing script: media relay on INVITE (500 when it fails), in the reply route and on
/// BYE; `%UAS%` is where calls go, `%RELAY%` the manage call.
const SCRIPT: &str = r#"
local UAS = "%UAS%"

local function relay()
    return %RELAY%
end

function ksr_request_route()
    if KSR.siputils.has_totag() > 0 then
        if KSR.is_BYE() then
            relay()
        end
        KSR.setdsturi(UAS)
        KSR.tm.t_relay()
        return 1
    end
    if KSR.is_CANCEL() then
        if KSR.tm.t_check_trans() > 0 then
            relay()
            KSR.tm.t_relay()
        end
        return 1
    end
    if KSR.tm.t_check_trans() == 0 then
        return 1
    end
    if KSR.is_INVITE() then
        if relay() < 0 then
            KSR.sl.sl_send_reply(500, "Media Relay Failed")
            return 1
        end
    end
    KSR.setdsturi(UAS)
    KSR.tm.t_relay()
    return 1
end

function ksr_reply_route()
    relay()
    return 1
end
"#;

const NG_RELAY: &str =
    r#"KSR.rtpengine.rtpengine_manage("replace-origin replace-session-connection ICE=remove")"#;
const LEGACY_RELAY: &str = r#"KSR.rtpproxy.rtpproxy_manage("")"#;

fn sipd_for(d: &Daemon, uas: SocketAddr, relay: &str) -> Sipd {
    let script = SCRIPT
        .replace("%UAS%", &format!("sip:{uas}"))
        .replace("%RELAY%", relay);
    let modparams = format!(
        "[rtpengine]\nrtpengine_sock = \"udp:{}\"\nrtpengine_tout_ms = 300\nrtpengine_retr = 1\nrtpengine_disable_tout = 1\n\
         [rtpproxy]\nrtpproxy_sock = \"udp:{}\"\nrtpproxy_tout = 1\nrtpproxy_retr = 0\nrtpproxy_disable_tout = 1\n",
        d.ng, d.legacy
    );
    Sipd::launch(
        "route.lua",
        &script,
        listen_on(LO, &[Proto::Udp]),
        2,
        move |c: &mut Config, _| {
            c.modparams = toml::from_str(&modparams).expect("test modparams");
        },
    )
}

/// A UDP SIP endpoint of the test.
struct Peer {
    sock: UdpSocket,
}

impl Peer {
    fn new() -> Peer {
        let sock = UdpSocket::bind((LO, 0)).expect("bind");
        Peer { sock }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).expect("send");
    }

    /// The next message whose first line starts with `start`, skipping others, within `wait`.
    fn expect(&self, start: &str, wait: Duration) -> Option<(String, SocketAddr)> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).ok()?;
            let (n, from) = self.sock.recv_from(&mut buf).ok()?;
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(start) {
                return Some((text, from));
            }
        }
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .collect()
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The `c=` address and the first `m=` port of an SDP body.
fn media(sdp: &str) -> (String, u16) {
    let addr = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .unwrap_or_default()
        .trim()
        .to_string();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (addr, port)
}

fn sdp(rtp_port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// A reply to `req` copying its Vias, From, To (tagged), Call-ID and CSeq.
fn reply(req: &str, code: &str, contact: SocketAddr, body: Option<&str>) -> String {
    let mut out = format!("SIP/2.0 {code}\r\n");
    for v in header(req, "Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for name in ["Record-Route", "From", "Call-ID", "CSeq"] {
        for v in header(req, name) {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    let to = header(req, "To")
        .first()
        .copied()
        .unwrap_or_default()
        .to_string();
    let to = if to.contains(";tag=") {
        to
    } else {
        format!("{to};tag=uas-tag")
    };
    out.push_str(&format!("To: {to}\r\nContact: <sip:uas@{contact}>\r\n"));
    match body {
        Some(b) => out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out
}

/// A request from the UAC: an INVITE starts the call, anything else is in the dialog.
fn request(
    method: &str,
    uac: &Peer,
    uas: SocketAddr,
    call: &str,
    cseq: u32,
    ctype: &str,
    body: &str,
) -> String {
    let branch = format!("z9hG4bK-{call}-{method}-{cseq}");
    let to = if method != "INVITE" {
        "<sip:uas@127.0.0.1>;tag=uas-tag"
    } else {
        "<sip:uas@127.0.0.1>"
    };
    format!(
        "{method} sip:uas@{uas} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:uac@127.0.0.1>;tag=uac-{call}\r\nTo: {to}\r\n\
         Call-ID: {call}\r\nCSeq: {cseq} {method}\r\nContact: <sip:uac@{}>\r\n\
         Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
        uac.addr(),
        uac.addr(),
        body.len()
    )
}

fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend(std::iter::repeat_n(0xffu8, 160));
    p
}

/// Send RTP from `from` to `to` until one arrives at `at` (bounded: 40 packets, 2 s).
fn rtp_flows(from: &UdpSocket, to: SocketAddr, at: &UdpSocket) -> bool {
    at.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    for seq in 0..40u16 {
        from.send_to(&rtp_packet(seq), to).expect("send rtp");
        if let Ok((n, _)) = at.recv_from(&mut buf) {
            if n == 172 && buf[0] == 0x80 {
                return true;
            }
        }
    }
    false
}

const WAIT: Duration = Duration::from_secs(3);

/// One whole call; panics with what went wrong.
fn call(d: &Daemon, sipd: SocketAddr, uac: &Peer, uas: &Peer, id: &str) {
    let uac_rtp = UdpSocket::bind((LO, 0)).expect("bind");
    let uas_rtp = UdpSocket::bind((LO, 0)).expect("bind");
    let offer = sdp(uac_rtp.local_addr().expect("addr").port());
    uac.send(
        sipd,
        &request("INVITE", uac, uas.addr(), id, 1, "application/sdp", &offer),
    );
    let (inv, from) = uas.expect("INVITE ", WAIT).expect("INVITE reaches the UAS");
    let (addr, port) = media(body(&inv));
    assert_eq!(addr, "127.0.0.1", "{inv}");
    assert!(
        d.in_range(port),
        "the UAS got port {port}, not the daemon's:\n{inv}"
    );
    assert_eq!(
        header(&inv, "Content-Length")
            .first()
            .and_then(|v| v.parse::<usize>().ok()),
        Some(body(&inv).len()),
        "Content-Length:\n{inv}"
    );
    let answer = sdp(uas_rtp.local_addr().expect("addr").port());
    uas.send(from, &reply(&inv, "200 OK", uas.addr(), Some(&answer)));
    let (ok, _) = uac
        .expect("SIP/2.0 200", WAIT)
        .expect("200 reaches the UAC");
    let (addr, port_b) = media(body(&ok));
    // In-dialog requests follow the Record-Route (when the script record-routes).
    let rr = header(&ok, "Record-Route").join(", ");
    let routed = |req: String| match rr.is_empty() {
        true => req,
        false => req.replacen(
            "\r\nMax-Forwards:",
            &format!("\r\nRoute: {rr}\r\nMax-Forwards:"),
            1,
        ),
    };
    assert_eq!(addr, "127.0.0.1", "{ok}");
    assert!(
        d.in_range(port_b),
        "the UAC got port {port_b}, not the daemon's:\n{ok}"
    );
    uac.send(
        sipd,
        &routed(request(
            "ACK",
            uac,
            uas.addr(),
            id,
            1,
            "application/sdp",
            "",
        )),
    );
    assert!(uas.expect("ACK ", WAIT).is_some(), "ACK reaches the UAS");
    // Media both ways through the daemon.
    assert!(
        rtp_flows(&uac_rtp, SocketAddr::new(LO, port_b), &uas_rtp),
        "RTP from the UAC did not reach the UAS"
    );
    assert!(
        rtp_flows(&uas_rtp, SocketAddr::new(LO, port), &uac_rtp),
        "RTP from the UAS did not reach the UAC"
    );
    assert!(
        d.calls().contains(id),
        "the daemon holds the call: {}",
        d.calls()
    );
    uac.send(
        sipd,
        &routed(request(
            "BYE",
            uac,
            uas.addr(),
            id,
            2,
            "application/sdp",
            "",
        )),
    );
    let (bye, from) = uas.expect("BYE ", WAIT).expect("BYE reaches the UAS");
    uas.send(from, &reply(&bye, "200 OK", uas.addr(), None));
    assert!(uac.expect("SIP/2.0 200", WAIT).is_some(), "200 to BYE");
    // Deleted at the BYE (delete-delay 0).
    let deadline = Instant::now() + Duration::from_secs(2);
    while d.calls().contains(id) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !d.calls().contains(id),
        "call left at the daemon: {}",
        d.calls()
    );
}

/// An INVITE with `ctype`/`body` gets 500 from the script, and the UAS nothing.
fn refused(
    sipd: SocketAddr,
    uac: &Peer,
    uas: &Peer,
    id: &str,
    ctype: &str,
    body: &str,
) -> Duration {
    let t = Instant::now();
    uac.send(
        sipd,
        &request("INVITE", uac, uas.addr(), id, 1, ctype, body),
    );
    // The final reply: a provisional one (a 100 when the relay call outlasts tm's
    // auto-100 on a loaded machine) may come first.
    let deadline = t + Duration::from_secs(10);
    let got = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match uac.expect("SIP/2.0 ", left) {
            Some((text, _)) if text.starts_with("SIP/2.0 1") => continue,
            other => break other,
        }
    };
    let took = t.elapsed();
    let (text, _) = got.unwrap_or_else(|| panic!("no reply for {id} within {took:?}"));
    assert!(text.starts_with("SIP/2.0 500"), "{id} got:\n{text}");
    assert!(
        uas.expect("INVITE ", Duration::from_millis(100)).is_none(),
        "the INVITE of {id} went on"
    );
    took
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn rtpengine_manage_relays_media_and_deletes_at_bye() {
    let _one = lock();
    let d = Daemon::start();
    let (uac, uas) = (Peer::new(), Peer::new());
    let sipd = sipd_for(&d, uas.addr(), NG_RELAY);
    let at = sipd.addr(Proto::Udp);
    call(&d, at, &uac, &uas, "ng-call-1");
    call(&d, at, &uac, &uas, "ng-call-2");
}

#[test]
fn rtpproxy_manage_relays_media_on_the_legacy_port() {
    let _one = lock();
    let d = Daemon::start();
    let (uac, uas) = (Peer::new(), Peer::new());
    let sipd = sipd_for(&d, uas.addr(), LEGACY_RELAY);
    call(&d, sipd.addr(Proto::Udp), &uac, &uas, "legacy-call-1");
}

#[test]
fn a_stopped_daemon_gives_the_error_path_and_calls_resume_when_it_returns() {
    let _one = lock();
    let mut d = Daemon::start();
    let (uac, uas) = (Peer::new(), Peer::new());
    for relay in [NG_RELAY, LEGACY_RELAY] {
        let sipd = sipd_for(&d, uas.addr(), relay);
        let at = sipd.addr(Proto::Udp);
        let tag = if relay == NG_RELAY { "ng" } else { "legacy" };
        call(&d, at, &uac, &uas, &format!("{tag}-before"));
        d.stop();
        let offer = sdp(4000);
        for i in 0..2 {
            let took = refused(
                at,
                &uac,
                &uas,
                &format!("{tag}-down-{i}"),
                "application/sdp",
                &offer,
            );
            eprintln!("{tag}: daemon down, 500 after {took:?}");
            // tout 300 ms x 2 attempts (ng) or 1 s x 1 (legacy), plus slack: never more.
            assert!(took < Duration::from_millis(2500), "{tag}: took {took:?}");
        }
        d.spawn();
        // The node was disabled for rtpengine_disable_tout (1 s).
        std::thread::sleep(Duration::from_millis(1100));
        call(&d, at, &uac, &uas, &format!("{tag}-after"));
    }
}

#[test]
fn bad_bodies_get_the_error_path_and_are_not_forwarded() {
    let _one = lock();
    let d = Daemon::start();
    let (uac, uas) = (Peer::new(), Peer::new());
    for relay in [NG_RELAY, LEGACY_RELAY] {
        let sipd = sipd_for(&d, uas.addr(), relay);
        let at = sipd.addr(Proto::Udp);
        refused(at, &uac, &uas, "text-body", "text/plain", "hello\r\n");
        refused(
            at,
            &uac,
            &uas,
            "bad-sdp",
            "application/sdp",
            "v=0\r\nthis is not sdp\r\n",
        );
        // The daemon still works.
        call(
            &d,
            at,
            &uac,
            &uas,
            if relay == NG_RELAY {
                "ng-good"
            } else {
                "legacy-good"
            },
        );
    }
}

/// Send `sig` (`STOP`, `CONT`) to the daemon.
fn signal(d: &Daemon, sig: &str) {
    let pid = d.child.as_ref().expect("running").id().to_string();
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid])
        .status()
        .expect("kill");
    assert!(ok.success());
}

#[test]
fn a_frozen_daemon_times_out_within_the_bound_then_calls_resume() {
    let _one = lock();
    let d = Daemon::start();
    let (uac, uas) = (Peer::new(), Peer::new());
    // ng: 300 ms x 2 attempts; legacy: 1 s x 1 attempt.
    for (relay, bound) in [(NG_RELAY, 600), (LEGACY_RELAY, 1000)] {
        let sipd = sipd_for(&d, uas.addr(), relay);
        let at = sipd.addr(Proto::Udp);
        let tag = if relay == NG_RELAY { "ng" } else { "legacy" };
        signal(&d, "STOP");
        let took = refused(
            at,
            &uac,
            &uas,
            &format!("{tag}-frozen"),
            "application/sdp",
            &sdp(4000),
        );
        // Disabled now: the next call fails at once, without waiting.
        let next = refused(
            at,
            &uac,
            &uas,
            &format!("{tag}-frozen-2"),
            "application/sdp",
            &sdp(4000),
        );
        signal(&d, "CONT");
        eprintln!("{tag}: frozen daemon, 500 after {took:?}, then {next:?} while disabled");
        assert!(took >= Duration::from_millis(bound), "{tag}: {took:?}");
        assert!(
            took < Duration::from_millis(bound + 1000),
            "{tag}: {took:?}"
        );
        assert!(next < Duration::from_millis(200), "{tag}: {next:?}");
        std::thread::sleep(Duration::from_millis(1100));
        // The frozen daemon's late answers to the old cookies are ignored.
        call(&d, at, &uac, &uas, &format!("{tag}-thawed"));
    }
}

/// The onreply callback sees the flags the request route set (Kamailio's `onreply_route`
/// sees the transaction's): before, `isflagset` there was always false, so the basic
/// example's `ksr_route_natmanage` never relayed the media of the 200.
#[test]
fn onreply_callback_sees_the_request_flags() {
    let uas = Peer::new();
    let uac = Peer::new();
    let script = format!(
        r#"
function ksr_request_route()
    if KSR.is_INVITE() then
        KSR.setflag(5)
        KSR.setbflag(6)
        KSR.tm.t_on_reply("ksr_onreply")
    end
    KSR.setdsturi("sip:{}")
    KSR.tm.t_relay()
end
function ksr_onreply()
    if KSR.isflagset(5) and KSR.isbflagset(6) then
        KSR.hdr.append("X-Flags: 5,6\r\n")
    end
end
"#,
        uas.addr()
    );
    let sipd = Sipd::launch(
        "route.lua",
        &script,
        listen_on(LO, &[Proto::Udp]),
        1,
        |_, _| {},
    );
    let at = sipd.addr(Proto::Udp);
    uac.send(
        at,
        &request(
            "INVITE",
            &uac,
            uas.addr(),
            "flags-1",
            1,
            "application/sdp",
            &sdp(4000),
        ),
    );
    let (inv, from) = uas.expect("INVITE ", WAIT).expect("INVITE reaches the UAS");
    uas.send(from, &reply(&inv, "486 Busy Here", uas.addr(), None));
    let (busy, _) = uac
        .expect("SIP/2.0 486", WAIT)
        .expect("486 reaches the UAC");
    assert!(busy.contains("X-Flags: 5,6"), "{busy}");
}

/// Kamailio's `kamailio-basic-kemi-lua.lua`, unchanged, with `WITH_NAT`'s modules and
/// `rtpproxy` pointed at the daemon's legacy port: a callee registered from a private Contact,
/// a caller with a private Contact (NAT detected), and the media of the call relayed.
#[test]
fn kamailio_basic_example_with_nat_relays_media_through_rtpengine() {
    let example = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-lua.lua";
    let source = std::fs::read_to_string(example)
        .unwrap_or_else(|e| panic!("{example}: {e} (install the `kamailio` package)"));
    let _one = lock();
    let d = Daemon::start();
    let (uac, uas) = (Peer::new(), Peer::new());
    let legacy = d.legacy;
    let sipd = Sipd::launch(
        "kamailio-basic-kemi-lua.lua",
        &source,
        listen_on(LO, &[Proto::Udp]),
        2,
        move |c: &mut Config, dir| {
            c.modules = kemi_runtime::table::Enabled::Only(
                [
                    "sl",
                    "tm",
                    "tmx",
                    "rr",
                    "maxfwd",
                    "textops",
                    "siputils",
                    "xlog",
                    "sanity",
                    "kx",
                    "corex",
                    "registrar",
                    "nathelper",
                    "htable",
                    "pike",
                    "rtpproxy",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            );
            c.db_url = format!("sqlite://{}/sipd.db", dir.display());
            c.modparams = toml::from_str(&format!(
                "[registrar]\nreceived_avp = \"$avp(RECEIVED)\"\n\
                 [usrloc]\nnat_bflag = 6\n\
                 [nathelper]\nreceived_avp = \"$avp(RECEIVED)\"\n\
                 [htable]\nhtable = \"ipban=>size=8;autoexpire=300;\"\n\
                 [rtpproxy]\nrtpproxy_sock = \"udp:{legacy}\"\n"
            ))
            .expect("modparams");
        },
    );
    let at = sipd.addr(Proto::Udp);
    // The callee registers from behind a "NAT": its Contact is private.
    let reg = format!(
        "REGISTER sip:{at} SIP/2.0\r\nVia: SIP/2.0/UDP {u};branch=z9hG4bK-reg1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@{at}>;tag=r1\r\nTo: <sip:bob@{at}>\r\n\
         Call-ID: reg-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@10.1.1.1:5060>;expires=60\r\n\
         Content-Length: 0\r\n\r\n",
        u = uas.addr()
    );
    uas.send(at, &reg);
    uas.expect("SIP/2.0 200", WAIT).expect("REGISTER accepted");
    // The caller, also behind a "NAT".
    let uac_rtp = UdpSocket::bind((LO, 0)).expect("bind");
    let uas_rtp = UdpSocket::bind((LO, 0)).expect("bind");
    let offer = sdp(uac_rtp.local_addr().expect("addr").port());
    let invite = format!(
        "INVITE sip:bob@{at} SIP/2.0\r\nVia: SIP/2.0/UDP {u};branch=z9hG4bK-inv1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{at}>;tag=a1\r\nTo: <sip:bob@{at}>\r\n\
         Call-ID: basic-1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.2.2.2:5060>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len(),
        u = uac.addr()
    );
    uac.send(at, &invite);
    let (inv, from) = uas
        .expect("INVITE ", WAIT)
        .expect("INVITE reaches the callee");
    let (_, port_a) = media(body(&inv));
    assert!(d.in_range(port_a), "the callee got port {port_a}:\n{inv}");
    let answer = sdp(uas_rtp.local_addr().expect("addr").port());
    uas.send(from, &reply(&inv, "200 OK", uas.addr(), Some(&answer)));
    let (ok, _) = uac
        .expect("SIP/2.0 200", WAIT)
        .expect("200 reaches the caller");
    let (_, port_b) = media(body(&ok));
    assert!(d.in_range(port_b), "the caller got port {port_b}:\n{ok}");
    assert!(
        rtp_flows(&uac_rtp, SocketAddr::new(LO, port_b), &uas_rtp),
        "RTP from the caller did not reach the callee"
    );
    assert!(
        rtp_flows(&uas_rtp, SocketAddr::new(LO, port_a), &uac_rtp),
        "RTP from the callee did not reach the caller"
    );
    // BYE along the record-route: the media session goes.
    let route = header(&ok, "Record-Route").join(", ");
    let contact = header(&ok, "Contact")
        .first()
        .copied()
        .unwrap_or_default()
        .to_string();
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string();
    let bye = format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {u};branch=z9hG4bK-bye1;rport\r\n\
         Max-Forwards: 70\r\nRoute: {route}\r\nFrom: <sip:alice@{at}>;tag=a1\r\n\
         To: <sip:bob@{at}>;tag=uas-tag\r\nCall-ID: basic-1\r\nCSeq: 2 BYE\r\n\
         Content-Length: 0\r\n\r\n",
        u = uac.addr()
    );
    uac.send(at, &bye);
    let (bye_in, from) = uas.expect("BYE ", WAIT).expect("BYE reaches the callee");
    uas.send(from, &reply(&bye_in, "200 OK", uas.addr(), None));
    uac.expect("SIP/2.0 200", WAIT).expect("200 to BYE");
    let deadline = Instant::now() + Duration::from_secs(2);
    while d.calls().contains("basic-1") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!d.calls().contains("basic-1"), "left: {}", d.calls());
}

/// RPC `rtpengine.show`, `rtpengine.ping`, `rtpengine.enable`: a node disabled by RPC takes no
/// call (the script answers 500) until enabled again; ping tells a live daemon from a dead one.
#[test]
fn rpc_shows_pings_and_enables_nodes() {
    use serde_json::{json, Value};
    use sipd::config::RpcConfig;
    use sipd::rpc::client;

    let _one = lock();
    let mut d = Daemon::start();
    let (uac, uas) = (Peer::new(), Peer::new());
    let script = SCRIPT
        .replace("%UAS%", &format!("sip:{}", uas.addr()))
        .replace("%RELAY%", NG_RELAY);
    let ng_url = format!("udp:{}", d.ng);
    let modparams = format!(
        "[rtpengine]\nrtpengine_sock = [\"{ng_url}=2\", \"1 == udp:127.0.0.1:9\"]\nrtpengine_tout_ms = 200\nrtpengine_retr = 0\n"
    );
    let sipd = Sipd::launch(
        "route.lua",
        &script,
        listen_on(LO, &[Proto::Udp]),
        1,
        move |c: &mut Config, dir| {
            c.modparams = toml::from_str(&modparams).expect("modparams");
            c.rpc = Some(RpcConfig {
                socket: dir.join("ctl.sock"),
                explicit: true,
                http: None,
            });
        },
    );
    let sock = sipd
        .handle()
        .rpc_socket()
        .expect("rpc socket")
        .to_path_buf();
    let rpc = |m: &str, p: &[Value]| client::call(&sock, m, p);
    let all = rpc("rtpengine.show", &[json!("all")]).expect("show");
    let nodes = all.as_array().expect("two nodes");
    assert_eq!(nodes.len(), 2, "{all}");
    assert_eq!(nodes[0]["url"], json!(ng_url));
    assert_eq!(nodes[0]["weight"], json!(2));
    assert_eq!(nodes[0]["disabled"], json!(0));
    let pinged = rpc("rtpengine.ping", &[json!(ng_url)]).expect("ping");
    assert_eq!(pinged["disabled"], json!(0), "{pinged}");
    assert!(rpc("rtpengine.show", &[json!("udp:127.0.0.1:1")]).is_err());
    let at = sipd.addr(Proto::Udp);
    let off = rpc("rtpengine.enable", &[json!(ng_url), json!(0)]).expect("enable 0");
    assert_eq!(off["disabled"], json!(1), "{off}");
    refused(at, &uac, &uas, "rpc-off", "application/sdp", &sdp(4000));
    rpc("rtpengine.enable", &[json!(ng_url), json!(1)]).expect("enable 1");
    call(&d, at, &uac, &uas, "rpc-on");
    d.stop();
    let dead = rpc("rtpengine.ping", &[json!(ng_url)]).expect("ping");
    assert_eq!(dead["disabled"], json!(1), "{dead}");
}

/// `examples/registrar.toml` with its script relays the media of a call through rtpengine
/// when one runs (its `rtpengine_sock` pointed at the test's daemon; the caller is a trusted
/// address calling out, so no digest is needed).
#[test]
fn the_registrar_example_relays_media_when_rtpengine_runs() {
    use modules::store::{self, AddressRow};

    let _one = lock();
    let d = Daemon::start();
    let (uac, uas) = (Peer::new(), Peer::new());
    let db = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", db.path().join("sipd.db").display());
    store::open(&url, std::path::Path::new("/"))
        .expect("store")
        .add_address(
            "address",
            &AddressRow {
                grp: 1,
                ip_addr: "127.0.0.1".into(),
                mask: 32,
                port: 0,
                tag: String::new(),
            },
        )
        .expect("trusted address");
    let args = sipd::config::RunArgs {
        config: Some(crate::support::example("registrar.toml")),
        listen: listen_on(LO, &[Proto::Udp]),
        log_level: Some("warn".into()),
        ..sipd::config::RunArgs::default()
    };
    let mut config = Config::load(&args).expect("examples/registrar.toml loads");
    config.db_url = url;
    config.rpc = None;
    let rtpengine = config
        .modparams
        .get_mut("rtpengine")
        .expect("the example configures rtpengine");
    rtpengine.insert(
        "rtpengine_sock".into(),
        toml::Value::String(format!("udp:{}", d.ng)),
    );
    let handle = sipd::server::Server::start(config).expect("the example starts");
    let proxy = handle.local_addr(Proto::Udp, false).expect("udp address");
    call(&d, proxy, &uac, &uas, "example-call");
    handle.shutdown();
}
