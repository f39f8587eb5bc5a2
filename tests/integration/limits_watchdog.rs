//! sipd's default instruction budget (10 million, above `EXACT_MAX`) is *watched*: the Lua
//! count hook is armed by a per-worker CPU-time watchdog only in runs that last. An endless loop
//! still fails its message with `500` and is counted, a long run under the budget is answered,
//! and every other message is served by the same worker.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use kemi_runtime::engine::lua::EXACT_MAX;
use kemi_runtime::msg::Proto;

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::LOCALHOST_V4 as LOOPBACK;

/// The budget under test: sipd's default, which is watched.
const BUDGET: u64 = sipd::config::DEFAULT_MAX_INSTRUCTIONS;
const _: () = assert!(BUDGET > EXACT_MAX, "the default budget is watched");

/// `X-Loop` spins forever; `X-Busy` runs 9 million instructions (a `for` loop iteration is one
/// `FORL`), several slices of CPU but under the budget, then answers `200 Busy`.
const SCRIPT: &str = r#"
function ksr_request_route()
    if KSR.hdr.is_present("X-Loop") > 0 then
        local n = 0
        while true do n = n + 1 end
    end
    if KSR.hdr.is_present("X-Busy") > 0 then
        for i = 1, 9000000 do end
        KSR.sl.sl_send_reply(200, "Busy")
        KSR.x.exit()
    end
    KSR.sl.sl_send_reply(200, "OK")
end
"#;

const ANSWER: Duration = Duration::from_secs(5);

/// Send one OPTIONS with `extra` headers; the status line of the answer, if one comes.
fn probe(to: SocketAddr, extra: &str) -> Option<String> {
    let s = UdpSocket::bind((LOOPBACK, 0)).expect("bind");
    let me = s.local_addr().expect("addr");
    let msg = format!(
        "OPTIONS sip:ping@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};rport;branch=z9hG4bKwd{n}\r\nMax-Forwards: 70\r\nFrom: <sip:t@{me}>;tag=1\r\nTo: <sip:ping@{to}>\r\nCall-ID: wd-{n}@x\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n",
        n = me.port()
    );
    s.send_to(msg.as_bytes(), to).expect("send");
    s.set_read_timeout(Some(ANSWER)).expect("timeout");
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
    text.lines().next().map(str::to_string)
}

#[test]
fn default_budget_stops_an_endless_loop_and_serves_the_rest() {
    let sipd = Sipd::launch(
        "route.lua",
        SCRIPT,
        listen_on(LOOPBACK, &[Proto::Udp]),
        1,
        |config, _| {
            assert_eq!(config.limits.script.instructions, Some(BUDGET));
        },
    );
    let sip = sipd.addr_in(Proto::Udp, false);
    let ok = Some("SIP/2.0 200 OK");
    assert_eq!(probe(sip, "").as_deref(), ok);
    for round in 0..3 {
        let started = Instant::now();
        assert_eq!(
            probe(sip, "X-Loop: 1\r\n").as_deref(),
            Some("SIP/2.0 500 Server Internal Error"),
            "round {round}"
        );
        assert!(started.elapsed() < ANSWER);
        assert_eq!(
            probe(sip, "X-Busy: 1\r\n").as_deref(),
            Some("SIP/2.0 200 Busy"),
            "a long run under the budget, round {round}"
        );
        for _ in 0..20 {
            assert_eq!(probe(sip, "").as_deref(), ok, "round {round}");
        }
    }
}
