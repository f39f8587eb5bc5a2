//! Module event callbacks (KEMI's `event_callback` modparams): `htable:mod-init` runs
//! `ksr_htable_event` once at startup, before the first message, in whichever language the
//! script is written, so a script can fill its tables there as Kamailio scripts do.

use std::net::UdpSocket;
use std::time::Duration;

use kemi_runtime::msg::Proto;

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::LOCALHOST_V4 as LO;

const MODPARAMS: &str = r#"
[htable]
htable = "boot=>size=4;"
event_callback = "ksr_htable_event"
"#;

const LUA: &str = r#"
function ksr_htable_event(evname)
    KSR.htable.sht_seti("boot", "runs", (KSR.htable.sht_get("boot", "runs") or 0) + 1)
    KSR.htable.sht_sets("boot", "event", evname)
    return 1
end

function ksr_request_route()
    local runs = KSR.htable.sht_get("boot", "runs") or 0
    local ev = KSR.htable.sht_get("boot", "event") or "none"
    KSR.sl.sl_send_reply(200, ev .. " x" .. runs)
end
"#;

const PYTHON: &str = r#"
import KSR

def mod_init():
    return kamailio()

class kamailio:
    def __init__(self):
        pass

    def child_init(self, rank):
        return 0

    # Kamailio's app_python3 passes the (faked) message first, then the event name.
    def ksr_htable_event(self, msg, evname):
        KSR.htable.sht_seti("boot", "runs", (KSR.htable.sht_get("boot", "runs") or 0) + 1)
        KSR.htable.sht_sets("boot", "event", evname)
        return 1

    def ksr_request_route(self, msg):
        runs = KSR.htable.sht_get("boot", "runs")
        ev = KSR.htable.sht_get("boot", "event")
        KSR.sl.sl_send_reply(200, "%s x%s" % (ev, runs))
        return 1
"#;

/// An OPTIONS from `sock` to `to`; the reason phrase of its answer.
fn reason(sock: &UdpSocket, to: std::net::SocketAddr, n: u32) -> String {
    let local = sock.local_addr().expect("local");
    let req = format!(
        "OPTIONS sip:sipd@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ev-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:t@{local}>;tag=e{n}\r\nTo: <sip:sipd@{to}>\r\n\
         Call-ID: events-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(req.as_bytes(), to).expect("send");
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).expect("an answer within 5 s");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("SIP/2.0 200 "))
        .unwrap_or_else(|| panic!("not a 200: {text}"))
        .to_string()
}

fn mod_init_runs_once_before_traffic(file: &str, source: &str) {
    let sipd = Sipd::launch(file, source, listen_on(LO, &[Proto::Udp]), 2, |c, _| {
        c.db_url = "sqlite::memory:".into();
        c.modparams = toml::from_str(MODPARAMS).expect("modparams");
    });
    let to = sipd.addr(Proto::Udp);
    // Several sources, so that both workers answer some: every answer sees the event run
    // once, already at the first message.
    for n in 0..8 {
        let sock = UdpSocket::bind((LO, 0)).expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        assert_eq!(reason(&sock, to, n), "htable:mod-init x1", "{file}");
    }
}

#[test]
fn lua_htable_mod_init_runs_ksr_htable_event_once_before_traffic() {
    mod_init_runs_once_before_traffic("route.lua", LUA);
}

#[test]
fn python_htable_mod_init_runs_ksr_htable_event_once_before_traffic() {
    mod_init_runs_once_before_traffic("route.py", PYTHON);
}

#[test]
fn an_event_callback_the_script_lacks_is_no_startup_error() {
    let sipd = Sipd::launch(
        "route.lua",
        "function ksr_request_route() KSR.sl.sl_send_reply(200, 'up') end",
        listen_on(LO, &[Proto::Udp]),
        1,
        |c, _| {
            c.db_url = "sqlite::memory:".into();
            c.modparams = toml::from_str(MODPARAMS).expect("modparams");
        },
    );
    let sock = UdpSocket::bind((LO, 0)).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(reason(&sock, sipd.addr(Proto::Udp), 99), "up");
}
