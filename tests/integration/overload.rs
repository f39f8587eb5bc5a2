//! Overload: sipd with `[tm] max_transactions = 100` (two workers) takes 300 concurrent calls
//! from a real `sipp` UAC (`tests/sipp/tm_uac_overload.xml`) towards a sipp UAS that answers
//! after 4 s, so the admitted INVITE transactions are all alive when the rest arrive. The calls
//! beyond the limit must get `503 Service Unavailable` with `Retry-After` (the scenario fails a
//! call whose 503 lacks it), none may be lost silently (every call either completes or is
//! refused: 300 successful sipp calls, none failed), the refusals are counted (`tm.stats`
//! `refused`), and once the load ends sipd drains its table and completes a new call.
//! Bounded: sipp's `-m`, `-timeout` and a wall-clock kill; the drain wait is bounded too.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use serde_json::Value;
use sipd::config::RpcConfig;

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::{self, free_addr, Sipp, LOCALHOST_V4 as LO};

/// Transactions sipd may hold at once.
const MAX: u64 = 100;
/// Calls the UAC places, all at once.
const CALLS: u32 = 300;
/// Workers: two, so that admission and timer cancellation cross workers.
const WORKERS: usize = 2;

/// Record-routing stateful proxy to `%UAS%`, in Kamailio's default-script shape: in-dialog
/// requests follow their Route; an ACK without one is relayed only when it matches a
/// transaction (the ACK of a 503 sipd sent statelessly matches none and is dropped).
const SCRIPT: &str = r#"
local UAS = "%UAS%"

function ksr_request_route()
    if KSR.siputils.has_totag() > 0 then
        if KSR.rr.loose_route() > 0 then
            KSR.tm.t_relay()
        elseif KSR.is_ACK() and KSR.tm.t_check_trans() > 0 then
            KSR.tm.t_relay()
        end
        return 1
    end
    if KSR.tm.t_check_trans() == 0 then
        return 1
    end
    if KSR.is_INVITE() then
        KSR.rr.record_route()
    end
    KSR.setdsturi(UAS)
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_reply_error()
    end
    return 1
end
"#;

/// `tm.stats` over the RPC socket.
fn tm_stats(sipd: &Sipd) -> Value {
    let socket = sipd.handle().rpc_socket().expect("rpc socket");
    sipd::rpc::client::call(socket, "tm.stats", &[]).expect("tm.stats")
}

fn count(v: &Value, name: &str) -> u64 {
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("tm.stats without {name}: {v}"))
}

/// A sipp UAS answering after `delay_ms`, for up to `calls` calls, bound before it returns.
fn uas(addr: SocketAddr, calls: u32, delay_ms: u32) -> Sipp {
    let mut uas = Sipp::uas("overload UAS", "tm_uas.xml", addr, "u1", calls)
        .timeout(Duration::from_secs(40))
        .wall(Duration::from_secs(50))
        .args(&["-d", &delay_ms.to_string()])
        .spawn();
    uas.wait_bound(addr, "u1");
    uas
}

#[test]
fn beyond_max_transactions_calls_get_503_with_retry_after_and_sipd_recovers() {
    let uas_addr = free_addr(LO);
    let script = SCRIPT.replace("%UAS%", &format!("sip:{}", sipp::hostport(uas_addr)));
    let sipd = Sipd::launch(
        "route.lua",
        &script,
        listen_on(LO, &[Proto::Udp]),
        WORKERS,
        |config, dir| {
            config.tm.max_transactions = MAX as usize;
            // Finished transactions wait 1 s (timers I/J/K, Accepted) instead of 5.
            config.tm.t4 = Duration::from_secs(1);
            config.rpc = Some(RpcConfig {
                socket: dir.join("ctl.sock"),
                explicit: true,
                http: None,
            });
        },
    );
    let to = sipd.addr(Proto::Udp);

    // The UAS answers after 4 s: every admitted INVITE transaction is still alive while the
    // 300 INVITEs (sent at 300 calls/s) arrive. It is stopped (dropped) once the UAC is done.
    let uas_load = uas(uas_addr, CALLS, 4000);
    let mut uac = Sipp::uac(
        "overload UAC",
        "tm_uac_overload.xml",
        free_addr(LO),
        "u1",
        CALLS,
        to,
    )
    .timeout(Duration::from_secs(40))
    .wall(Duration::from_secs(50))
    .args(&["-r", "300", "-rp", "1000", "-l", &CALLS.to_string()])
    .spawn();
    let o = uac.finish();
    let trace = uac.messages();
    drop(uas_load);
    let refused = trace.matches("\nSIP/2.0 503 Service Unavailable").count() as u64;
    let with_retry_after = trace.matches("\nRetry-After: 5").count() as u64;
    assert!(
        o.status.success() && o.successful == u64::from(CALLS) && o.failed == 0,
        "a call was lost or failed: exit {}, {} successful / {} failed of {CALLS} \
         ({refused} refused)\n{}",
        o.status,
        o.successful,
        o.failed,
        uac.report()
    );
    let completed = u64::from(CALLS) - refused;
    assert!(
        (MAX..=MAX + WORKERS as u64).contains(&completed),
        "{completed} calls completed and {refused} were refused: the limit is {MAX}"
    );
    assert_eq!(
        with_retry_after, refused,
        "every 503 carries Retry-After: 5"
    );
    let stats = tm_stats(&sipd);
    assert!(
        count(&stats, "refused") >= refused,
        "sipd counted fewer refusals than the UAC saw {refused}: {stats}"
    );

    // Recovery: the table drains (every transaction ends, its timers with it), then a new
    // call completes without a refusal.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = tm_stats(&sipd);
        if count(&stats, "current") == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "transactions still alive 15 s after the load: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused_before = count(&tm_stats(&sipd), "refused");
    // The load's UAS was stopped; a fresh one on the same address answers at once.
    let uas_after = uas(uas_addr, 3, 0);
    let mut again = Sipp::uac(
        "UAC after the load",
        "tm_uac_overload.xml",
        free_addr(LO),
        "u1",
        3,
        to,
    )
    .timeout(Duration::from_secs(15))
    .wall(Duration::from_secs(20))
    .args(&["-r", "10"])
    .spawn();
    let o = again.finish();
    let trace = again.messages();
    assert!(
        o.status.success() && o.successful == 3 && !trace.contains("SIP/2.0 503"),
        "sipd did not recover: exit {}, {} successful / {} failed\n{}",
        o.status,
        o.successful,
        o.failed,
        again.report()
    );
    assert_eq!(count(&tm_stats(&sipd), "refused"), refused_before);
    drop(uas_after);
}

/// An OPTIONS over `stream` with Call-ID `id`, answered 200 by [`ANSWER_OPTIONS`].
fn tcp_options(stream: &mut std::net::TcpStream, id: u32) {
    use std::io::Write as _;
    let local = stream.local_addr().expect("local address");
    let request = format!(
        "OPTIONS sip:sipd@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK-conn-{id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=c{id}\r\n\
         To: <sip:sipd@127.0.0.1>\r\n\
         Call-ID: conn-limit-{id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
}

/// Read from `stream` until it closes or `WAIT` passes; what arrived.
fn read_until_closed(stream: &mut std::net::TcpStream) -> (String, bool) {
    use std::io::Read as _;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// Answers every OPTIONS 200 statelessly.
const ANSWER_OPTIONS: &str = r#"
function ksr_request_route()
    KSR.sl.sl_send_reply(200, "OK")
end
"#;

#[test]
fn a_tcp_connection_over_the_limit_gets_503_with_retry_after_then_closes() {
    let sipd = Sipd::launch(
        "route.lua",
        ANSWER_OPTIONS,
        listen_on(LO, &[Proto::Tcp]),
        1,
        |config, _| config.max_conns_per_ip = 2,
    );
    let to = sipd.addr(Proto::Tcp);
    let connect = || std::net::TcpStream::connect(to).expect("connect");
    let (mut a, mut b) = (connect(), connect());
    for (n, s) in [&mut a, &mut b].into_iter().enumerate() {
        tcp_options(s, n as u32);
        let got = one_answer(s);
        assert!(got.starts_with("SIP/2.0 200 OK"), "{got}");
    }
    // The third from the same source: its request is answered 503 with Retry-After, and the
    // connection closes.
    let mut over = connect();
    tcp_options(&mut over, 3);
    let (got, closed) = read_until_closed(&mut over);
    assert!(
        got.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "over the limit: {got:?}"
    );
    assert!(got.contains("\r\nRetry-After: 5\r\n"), "{got}");
    assert!(got.contains("\r\nCall-ID: conn-limit-3\r\n"), "{got}");
    assert!(closed, "the refused connection closes after its 503");
    // The admitted ones are still served; once one closes, a new connection is admitted.
    tcp_options(&mut a, 4);
    let got = one_answer(&mut a);
    assert!(got.starts_with("SIP/2.0 200 OK"), "{got}");
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut fresh = connect();
        tcp_options(&mut fresh, 5);
        let got = one_answer(&mut fresh);
        if got.starts_with("SIP/2.0 200 OK") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a connection under the limit again is not served: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first read from `stream` (up to 5 s); "" when it closed or nothing came.
fn one_answer(stream: &mut std::net::TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    match std::io::Read::read(stream, &mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(_) => String::new(),
    }
}
