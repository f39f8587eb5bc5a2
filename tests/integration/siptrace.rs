//! `siptrace` on the wire: a sipp call through sipd (UAC → sipd → UAS, record-routed, stateful)
//! with HEP v3 copies sent to a UDP socket of the test, decoded by the small HEP decoder below
//! (not sipd's): every message of the call, in and out, with its addresses; the script asking
//! for one dialog (`sip_trace_mode("d")`) gets that dialog and nothing else; `siptrace.status
//! off` over the control socket stops the copies. When Debian's `sngrep` is installed, it runs
//! headless on the same HEP stream and shows the call.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::json;
use sipd::config::RpcConfig;

use crate::support::proxy::Sipd;
use crate::support::sipp::{self, free_addr, Sipp, LOCALHOST_V4 as LO};

const TIMEOUT: Duration = Duration::from_secs(15);
const WALL: Duration = Duration::from_secs(20);

/// One HEP v3 packet as this test reads it.
#[derive(Debug, Clone)]
struct Hep {
    src: SocketAddr,
    dst: SocketAddr,
    ip_proto: u8,
    payload: String,
    call_id: String,
}

impl Hep {
    /// The method or status code of the SIP message.
    fn what(&self) -> String {
        let first = self.payload.lines().next().unwrap_or("");
        match first.strip_prefix("SIP/2.0 ") {
            Some(s) => s.split(' ').next().unwrap_or("").to_string(),
            None => first.split(' ').next().unwrap_or("").to_string(),
        }
    }
}

/// The HEP v3 chunks this test needs: family 1, proto 2, IPv4 3/4, ports 7/8, payload 15,
/// correlation 17.
fn decode(p: &[u8]) -> Hep {
    assert_eq!(&p[..4], b"HEP3", "not HEP v3");
    let total = u16::from_be_bytes([p[4], p[5]]) as usize;
    assert_eq!(total, p.len(), "HEP length");
    let mut at = 6;
    let (mut src, mut dst) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
    let (mut sport, mut dport, mut proto) = (0, 0, 0);
    let (mut payload, mut call_id) = (String::new(), String::new());
    while at + 6 <= p.len() {
        let vendor = u16::from_be_bytes([p[at], p[at + 1]]);
        let kind = u16::from_be_bytes([p[at + 2], p[at + 3]]);
        let len = u16::from_be_bytes([p[at + 4], p[at + 5]]) as usize;
        assert_eq!(vendor, 0);
        let v = &p[at + 6..at + len];
        match kind {
            2 => proto = v[0],
            3 => src = Ipv4Addr::new(v[0], v[1], v[2], v[3]),
            4 => dst = Ipv4Addr::new(v[0], v[1], v[2], v[3]),
            7 => sport = u16::from_be_bytes([v[0], v[1]]),
            8 => dport = u16::from_be_bytes([v[0], v[1]]),
            15 => payload = String::from_utf8_lossy(v).into_owned(),
            17 => call_id = String::from_utf8_lossy(v).into_owned(),
            _ => {}
        }
        at += len;
    }
    Hep {
        src: SocketAddr::new(IpAddr::V4(src), sport),
        dst: SocketAddr::new(IpAddr::V4(dst), dport),
        ip_proto: proto,
        payload,
        call_id,
    }
}

/// Every HEP packet that arrives at `sock` until it has been quiet for `quiet`.
fn collect(sock: &UdpSocket, quiet: Duration) -> Vec<Hep> {
    sock.set_read_timeout(Some(quiet)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let start = Instant::now();
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(decode(&buf[..n]));
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "HEP never went quiet"
        );
    }
    out
}

const SCRIPT: &str = r#"
function ksr_request_route()
    if KSR.siputils.has_totag() > 0 then
        KSR.rr.loose_route()
        KSR.tm.t_relay()
        return 1
    end
    if KSR.is_OPTIONS() then
        KSR.sl.sl_send_reply(200, "Alive")
        return 1
    end
    if KSR.is_INVITE() then
        %TRACE%
        KSR.rr.record_route()
    end
    KSR.setdsturi("%UAS%")
    KSR.tm.t_relay()
end
"#;

/// sipd with `[modparam.siptrace]` sending to `hep`, in `trace_mode` `mode`, with the control
/// socket `ctl`.
fn start(hep: SocketAddr, mode: u8, trace: &str, uas: SocketAddr, ctl: &std::path::Path) -> Sipd {
    let script = SCRIPT
        .replace("%TRACE%", trace)
        .replace("%UAS%", &format!("sip:{uas}"));
    let listen = vec!["udp:127.0.0.1:0".parse().expect("endpoint")];
    let ctl = ctl.to_path_buf();
    Sipd::launch("route.lua", &script, listen, 2, move |c, _| {
        c.modparams = toml::from_str(&format!(
            "[siptrace]\nduplicate_uri = \"sip:{hep}\"\ntrace_on = 1\ntrace_mode = {mode}\n"
        ))
        .expect("modparams");
        c.rpc = Some(RpcConfig {
            socket: ctl,
            explicit: true,
            http: None,
        });
    })
}

/// One call UAC → sipd → UAS; returns the UAC's address.
fn call(sipd: &Sipd, uas_addr: SocketAddr) -> SocketAddr {
    let mut uas = Sipp::uas("uas", "tm_uas.xml", uas_addr, "u1", 1)
        .timeout(TIMEOUT)
        .wall(WALL)
        .spawn();
    uas.wait_bound(uas_addr, "u1");
    let uac_addr = free_addr(LO);
    Sipp::uac(
        "uac",
        "tm_uac.xml",
        uac_addr,
        "u1",
        1,
        sipd.addr(sipp::proto("u1")),
    )
    .timeout(TIMEOUT)
    .wall(WALL)
    .spawn()
    .expect_success();
    uas.expect_success();
    uac_addr
}

/// An OPTIONS from a plain socket, answered by the script.
fn options(sipd: &Sipd) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let port = s.local_addr().expect("addr").port();
    let req = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-ping\r\n\
         Max-Forwards: 70\r\nFrom: <sip:p@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1>\r\n\
         Call-ID: not-traced\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    s.send_to(req.as_bytes(), sipd.addr(sipp::proto("u1")))
        .expect("send");
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).expect("OPTIONS answered");
    assert!(buf[..n].starts_with(b"SIP/2.0 200 Alive"));
}

/// The (what, from, to) of each packet of the call, in order.
fn flow(packets: &[Hep], call_id: &str) -> Vec<(String, SocketAddr, SocketAddr)> {
    packets
        .iter()
        .filter(|p| p.call_id == call_id)
        .map(|p| (p.what(), p.src, p.dst))
        .collect()
}

/// Every message of the call in and out, with its addresses.
fn assert_whole_call(packets: &[Hep], uac: SocketAddr, proxy: SocketAddr, uas: SocketAddr) {
    let call_id = packets
        .iter()
        .find(|p| p.what() == "INVITE")
        .map(|p| p.call_id.clone())
        .expect("the INVITE was traced");
    let got = flow(packets, &call_id);
    let want = |what: &str, from: SocketAddr, to: SocketAddr| (what.to_string(), from, to);
    for expected in [
        want("INVITE", uac, proxy),
        want("INVITE", proxy, uas),
        want("100", proxy, uac),
        want("180", uas, proxy),
        want("180", proxy, uac),
        want("200", uas, proxy),
        want("200", proxy, uac),
        want("ACK", uac, proxy),
        want("ACK", proxy, uas),
        want("BYE", uac, proxy),
        want("BYE", proxy, uas),
    ] {
        assert!(
            got.contains(&expected),
            "{expected:?} missing from {got:#?}"
        );
    }
    // The BYE's 200 both ways: two 200s in each direction over the call.
    let count = |w: &(String, SocketAddr, SocketAddr)| got.iter().filter(|g| *g == w).count();
    assert_eq!(count(&want("200", uas, proxy)), 2, "{got:#?}");
    assert_eq!(count(&want("200", proxy, uac)), 2, "{got:#?}");
    assert!(packets.iter().all(|p| p.ip_proto == 17));
}

#[test]
fn trace_mode_1_copies_every_message_in_and_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hep = UdpSocket::bind("127.0.0.1:0").expect("HEP socket");
    let hep_addr = hep.local_addr().expect("addr");
    let uas = free_addr(LO);
    let sipd = start(hep_addr, 1, "", uas, &dir.path().join("ctl.sock"));
    let proxy = sipd.addr(sipp::proto("u1"));
    let uac = call(&sipd, uas);
    let packets = collect(&hep, Duration::from_millis(700));
    assert_whole_call(&packets, uac, proxy, uas);

    // Switched off over the control socket: nothing more.
    let off = sipd::rpc::client::call(
        &dir.path().join("ctl.sock"),
        "siptrace.status",
        &[json!("off")],
    );
    assert_eq!(off.expect("siptrace.status off"), json!("Disabled"));
    options(&sipd);
    assert!(collect(&hep, Duration::from_millis(300)).is_empty());
    let check = sipd::rpc::client::call(
        &dir.path().join("ctl.sock"),
        "siptrace.status",
        &[json!("check")],
    );
    assert_eq!(check.expect("check"), json!("Disabled"));
}

#[test]
fn the_script_traces_one_dialog_and_nothing_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hep = UdpSocket::bind("127.0.0.1:0").expect("HEP socket");
    let hep_addr = hep.local_addr().expect("addr");
    let uas = free_addr(LO);
    let sipd = start(
        hep_addr,
        0,
        "KSR.siptrace.sip_trace_mode(\"d\")",
        uas,
        &dir.path().join("ctl.sock"),
    );
    let proxy = sipd.addr(sipp::proto("u1"));
    options(&sipd);
    let uac = call(&sipd, uas);
    let packets = collect(&hep, Duration::from_millis(700));
    assert!(
        packets.iter().all(|p| p.call_id != "not-traced"),
        "{packets:#?}"
    );
    assert_whole_call(&packets, uac, proxy, uas);
}

#[test]
fn sngrep_shows_the_call_from_the_hep_stream() {
    let Ok(version) = std::process::Command::new("sngrep").arg("-V").output() else {
        panic!("sngrep is not installed: .ci/run installs Debian's sngrep");
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().expect("temp dir");
    let hep_addr = SocketAddr::new(LO, sipp::free_port(LO));
    let pcap = dir.path().join("call.pcap");
    let mut sngrep = std::process::Command::new("sngrep")
        .args(["-N", "-q", "-L"])
        .arg(format!("udp:{hep_addr}"))
        .arg("-O")
        .arg(&pcap)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sngrep");
    std::thread::sleep(Duration::from_millis(500));
    let uas = free_addr(LO);
    let sipd = start(hep_addr, 1, "", uas, &dir.path().join("ctl.sock"));
    call(&sipd, uas);
    std::thread::sleep(Duration::from_millis(700));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &sngrep.id().to_string()])
        .status();
    let start = Instant::now();
    while sngrep.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = sngrep.kill();
    let _ = sngrep.wait();
    let saved = std::fs::read(&pcap).expect("sngrep wrote its pcap");
    let text = String::from_utf8_lossy(&saved);
    for method in [
        "INVITE sip:",
        "ACK sip:",
        "BYE sip:",
        "SIP/2.0 180",
        "SIP/2.0 200",
    ] {
        assert!(text.contains(method), "{method} not in sngrep's capture");
    }
}
