//! SIP over WebSocket (RFC 7118) with a real WebSocket client (tokio-tungstenite, over rustls
//! for `wss:` with a CA made at test time): the upgrade with the `sip` subprotocol, one SIP
//! message per frame, a registration over the connection that a request from UDP reaches, the
//! binding gone from `lookup` once the connection closed (over IPv4 and IPv6), a stateless
//! forward whose reply finds the connection, `KSR.websocket.close`, sipd's pings; and bad input
//! (wrong subprotocol, a foreign Origin, a 1 MB frame, a frame that is not SIP, a Content-Length
//! past the frame, a stalled TLS or WebSocket handshake, more connections than a limit allows),
//! each refused or closed within its limit with a log line while another client keeps being
//! served. The WebRTC-side library test
//! (SIP.js under node) is in `ws_sipjs.rs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use kemi_runtime::msg::Proto;
use sipd::config::MetricsConfig;
use sipd::transport::ws::WsConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::support::proxy::{listen_on, Sipd};
use crate::tls::{logged, logs, scrape, Pki};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Every wait of these tests.
const WAIT: Duration = Duration::from_secs(5);

/// OPTIONS answered with the transport in the reason (and the connection closed after the
/// reply when it carries `X-Close`: `KSR.websocket.close`); INFO forwarded statelessly to its
/// R-URI; REGISTER saved; anything else looked up
/// and relayed statefully (404 when the user has no reachable contact).
const SCRIPT: &str = r#"
function ksr_request_route()
    if KSR.is_OPTIONS() then
        KSR.sl.sl_send_reply(200, "OK " .. KSR.pv.get("$pr"))
        if KSR.hdr.is_present("X-Close") > 0 then
            KSR.websocket.close()
        end
        return 1
    end
    if KSR.pv.get("$rm") == "INFO" then
        KSR.forward()
        return 1
    end
    if KSR.is_REGISTER() then
        if KSR.registrar.save("location", 0) < 0 then
            KSR.sl.sl_reply_error()
        end
        return 1
    end
    if KSR.tm.t_check_trans() == 0 then
        return 1
    end
    if KSR.registrar.lookup("location") < 0 then
        KSR.sl.sl_send_reply(404, "Not Found")
        return 1
    end
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_reply_error()
    end
    return 1
end
"#;

/// sipd on UDP, `ws:` and `wss:` of 127.0.0.1 with metrics; `tune` adjusts `[websocket]` and
/// the connection limits.
fn sipd(pki: &Pki, tune: impl FnOnce(&mut sipd::config::Config)) -> Sipd {
    logs();
    let tls = pki.config();
    Sipd::launch(
        "route.lua",
        SCRIPT,
        listen_on(LO, &[Proto::Udp, Proto::Ws]),
        2,
        move |c, _| {
            c.listen.extend(listen_on(LO, &[Proto::Wss]));
            c.tls = Some(tls);
            c.metrics = Some(MetricsConfig {
                listen: SocketAddr::new(LO, 0),
            });
            tune(c);
        },
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An upgrade request to `addr` offering `protocol`, from `origin`.
fn request(
    scheme: &str,
    addr: SocketAddr,
    protocol: &str,
    origin: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = format!("{scheme}://{addr}/")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(protocol).expect("header"),
    );
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).expect("header"));
    }
    req
}

type Ws<S> = WebSocketStream<S>;

/// A `ws:` client offering `sip`.
async fn connect_ws(addr: SocketAddr) -> Ws<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let (ws, resp) = tokio_tungstenite::client_async(request("ws", addr, "sip", None), tcp)
        .await
        .expect("websocket upgrade");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("sip"),
        "the answer selects the sip subprotocol"
    );
    ws
}

/// A TLS connection to `addr` trusting the test CA.
async fn tls_to(pki: &Pki, addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(pki.path("ca.pem")).expect("ca.pem");
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.expect("CA certificate")).expect("root");
    }
    // ring, as sipd uses.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    connector.connect(name, tcp).await.expect("tls handshake")
}

/// A `wss:` client offering `sip`.
async fn connect_wss(
    pki: &Pki,
    addr: SocketAddr,
) -> Ws<tokio_rustls::client::TlsStream<TcpStream>> {
    let tls = tls_to(pki, addr).await;
    let (ws, _) = tokio_tungstenite::client_async(request("wss", addr, "sip", None), tls)
        .await
        .expect("websocket upgrade over tls");
    ws
}

/// The next SIP message (a text frame), within [`WAIT`].
async fn next_sip<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>) -> String {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame within the wait")
            .expect("connection open")
            .expect("frame");
        match m {
            Message::Text(t) => return t.to_string(),
            Message::Binary(b) => return String::from_utf8_lossy(&b).into_owned(),
            _ => continue,
        }
    }
}

/// Whether the server closed `ws` within [`WAIT`] (a close frame, the end, or an error).
async fn closed_by_server<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

fn options(n: u32, transport: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} df7jal23ls0d.invalid;branch=z9hG4bKopt{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@sipd.test>;tag=o{n}\r\n\
         To: <sip:127.0.0.1>\r\n\
         Call-ID: opt-{n}@ws.test\r\n\
         CSeq: {n} OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn register(user: &str, transport: &str, expires: u32) -> String {
    let t = transport.to_ascii_lowercase();
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} h7kjh12s.invalid;branch=z9hG4bKreg{user}{expires};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@sipd.test>;tag=r{user}\r\n\
         To: <sip:{user}@sipd.test>\r\n\
         Call-ID: reg-{user}@ws.test\r\n\
         CSeq: {} REGISTER\r\n\
         Contact: <sip:{user}x@h7kjh12s.invalid;transport={t};ob>;expires={expires}\r\n\
         Content-Length: 0\r\n\r\n",
        expires + 1
    )
}

/// A MESSAGE to `user` sent over UDP from `sock` to sipd at `to`; returns the status of the
/// final reply (or 0 when none came within `wait`).
fn message_over_udp(sock: &UdpSocket, to: SocketAddr, user: &str, n: u32, wait: Duration) -> u16 {
    let local = sock.local_addr().expect("local");
    let msg = format!(
        "MESSAGE sip:{user}@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKmsg{n}{user};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:carol@sipd.test>;tag=m{n}\r\n\
         To: <sip:{user}@sipd.test>\r\n\
         Call-ID: msg-{n}-{user}@ws.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 5\r\n\r\nhello"
    );
    sock.send_to(msg.as_bytes(), to).expect("udp send");
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65535];
    while Instant::now() < deadline {
        let Ok((len, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        let code = text
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap_or(0);
        if code >= 200 && text.contains(&format!("msg-{n}-{user}@ws.test")) {
            return code;
        }
    }
    0
}

/// The reply `code` to `req` (its Vias, From, To with a tag, Call-ID, CSeq).
fn reply_to(req: &str, code: u16) -> String {
    let mut out = format!("SIP/2.0 {code} OK\r\n");
    for line in req.split("\r\n").skip(1) {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        match name.as_str() {
            "via" | "from" | "call-id" | "cseq" => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            "to" => {
                out.push_str(line);
                out.push_str(";tag=ws1\r\n");
            }
            _ => {}
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn udp_socket() -> UdpSocket {
    udp_socket_on(LO)
}

fn udp_socket_on(ip: IpAddr) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).expect("udp bind");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    s
}

/// Register `user` on `ws`, answer a MESSAGE relayed from UDP over the same connection, close
/// it, and see `lookup` no longer return the binding (404 within the wait).
async fn reachable_then_gone<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: Ws<S>,
    sipd_udp: SocketAddr,
    user: &str,
    transport: &str,
) {
    ws.send(Message::text(register(user, transport, 600)))
        .await
        .expect("send REGISTER");
    let reply = next_sip(&mut ws).await;
    assert!(reply.starts_with("SIP/2.0 200"), "REGISTER: {reply}");
    let udp = udp_socket_on(sipd_udp.ip());
    let user_owned = user.to_string();
    let sender = std::thread::spawn(move || message_over_udp(&udp, sipd_udp, &user_owned, 1, WAIT));
    let req = next_sip(&mut ws).await;
    assert!(
        req.starts_with("MESSAGE sip:"),
        "relayed to the client: {req}"
    );
    assert!(
        req.contains(&format!(
            "Via: SIP/2.0/{transport} {}:",
            match sipd_udp.ip() {
                IpAddr::V6(ip) => format!("[{ip}]"),
                IpAddr::V4(ip) => ip.to_string(),
            }
        )),
        "sipd's Via names the transport (RFC 7118 5.2): {req}"
    );
    assert!(
        req.contains(".invalid;transport="),
        "R-URI is the contact: {req}"
    );
    ws.send(Message::text(reply_to(&req, 200)))
        .await
        .expect("send 200");
    let code = tokio::task::spawn_blocking(move || sender.join().expect("sender"))
        .await
        .expect("join");
    assert_eq!(code, 200, "the UDP sender gets the client's 200");
    ws.close(None).await.expect("close");
    drop(ws);
    // The binding is still stored (600 s) but its connection is gone: lookup skips it.
    let user_owned = user.to_string();
    let code = tokio::task::spawn_blocking(move || {
        let udp = udp_socket_on(sipd_udp.ip());
        let deadline = Instant::now() + WAIT;
        let mut n = 2;
        loop {
            // A request sent while the close is under way may go to the closing connection
            // (and time out in tm): ask again until the 404.
            let code = message_over_udp(&udp, sipd_udp, &user_owned, n, Duration::from_millis(500));
            if code == 404 || Instant::now() > deadline {
                return code;
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("join");
    assert_eq!(
        code, 404,
        "lookup must not return a closed WebSocket contact"
    );
}

#[test]
fn ws_and_wss_carry_sip_and_registered_clients_are_reached_over_their_connection() {
    let pki = Pki::new();
    let sipd = sipd(&pki, |_| {});
    let (ws_addr, wss_addr, udp) = (
        sipd.addr(Proto::Ws),
        sipd.addr(Proto::Wss),
        sipd.addr(Proto::Udp),
    );
    runtime().block_on(async {
        let mut ws = connect_ws(ws_addr).await;
        ws.send(Message::text(options(1, "WS")))
            .await
            .expect("send");
        let r = next_sip(&mut ws).await;
        assert!(r.starts_with("SIP/2.0 200 OK ws\r\n"), "{r}");
        assert!(r.contains("received=127.0.0.1"), "{r}");
        // A ping is answered; keepalive frames are ignored; the connection goes on.
        ws.send(Message::Ping(b"p".to_vec().into()))
            .await
            .expect("ping");
        ws.send(Message::text("\r\n\r\n")).await.expect("keepalive");
        ws.send(Message::binary(options(2, "WS").into_bytes()))
            .await
            .expect("send binary");
        let r = next_sip(&mut ws).await;
        assert!(r.starts_with("SIP/2.0 200 OK ws\r\n"), "{r}");
        reachable_then_gone(ws, udp, "alice", "WS").await;

        let mut wss = connect_wss(&pki, wss_addr).await;
        wss.send(Message::text(options(3, "WSS")))
            .await
            .expect("send");
        let r = next_sip(&mut wss).await;
        assert!(r.starts_with("SIP/2.0 200 OK wss\r\n"), "{r}");
        reachable_then_gone(wss, udp, "bob", "WSS").await;

        // A stateless forward from a client whose Via has no rport: the reply relayed back
        // still finds the connection (sipd fills in rport for WebSocket).
        let mut ws = connect_ws(ws_addr).await;
        let peer = udp_socket();
        let peer_addr = peer.local_addr().expect("local");
        let info = format!(
            "INFO sip:x@{peer_addr} SIP/2.0\r\n\
             Via: SIP/2.0/WS k2j3h4.invalid;branch=z9hG4bKinfo1\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:a@sipd.test>;tag=i1\r\n\
             To: <sip:x@{peer_addr}>\r\n\
             Call-ID: info-1@ws.test\r\n\
             CSeq: 1 INFO\r\n\
             Content-Length: 0\r\n\r\n"
        );
        ws.send(Message::text(info)).await.expect("send INFO");
        let forwarded = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; 65535];
            let deadline = Instant::now() + WAIT;
            while Instant::now() < deadline {
                if let Ok((n, from)) = peer.recv_from(&mut buf) {
                    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                    peer.send_to(reply_to(&req, 200).as_bytes(), from)
                        .expect("reply");
                    return req;
                }
            }
            String::new()
        })
        .await
        .expect("join");
        assert!(
            forwarded.contains("Via: SIP/2.0/WS k2j3h4.invalid;branch=z9hG4bKinfo1;rport=")
                && forwarded.contains(";received=127.0.0.1"),
            "the client's Via got received and rport: {forwarded}"
        );
        let r = next_sip(&mut ws).await;
        assert!(r.starts_with("SIP/2.0 200"), "the relayed reply: {r}");

        // KSR.websocket.close: the reply, then the close.
        let mut ws = connect_ws(ws_addr).await;
        let closing = options(4, "WS").replace("CSeq:", "X-Close: yes\r\nCSeq:");
        ws.send(Message::text(closing)).await.expect("send");
        let r = next_sip(&mut ws).await;
        assert!(r.starts_with("SIP/2.0 200 OK ws\r\n"), "{r}");
        assert!(
            closed_by_server(&mut ws).await,
            "websocket.close closes after the reply"
        );
    });
    // The clients dropped their last connections just now: sipd sees the close a moment later.
    let gauges_zero = |m: &str| {
        ["sipd_ws_connections_open 0", "sipd_wss_connections_open 0"]
            .iter()
            .all(|line| m.contains(line))
    };
    let deadline = Instant::now() + WAIT;
    let mut metrics = scrape(&sipd);
    while !gauges_zero(&metrics) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        metrics = scrape(&sipd);
    }
    assert!(
        gauges_zero(&metrics),
        "no connection left open in\n{metrics}"
    );
    let frames_in = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sipd_ws_frames_received_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("sipd_ws_frames_received_total");
    assert!(frames_in >= 7, "frames received: {frames_in}");
}

#[test]
fn bad_websocket_input_is_refused_or_closed_within_its_limit_and_others_are_served() {
    let pki = Pki::new();
    let sipd = sipd(&pki, |c| {
        c.websocket = WsConfig {
            allowed_origins: vec!["https://app.sipd.test".into()],
            max_frame_size: 8192,
            handshake_timeout: Duration::from_millis(500),
            ..WsConfig::with_max(65535)
        };
    });
    let (ws_addr, wss_addr) = (sipd.addr(Proto::Ws), sipd.addr(Proto::Wss));
    runtime().block_on(async {
        // A client that stays and is served throughout.
        let tcp = TcpStream::connect(ws_addr).await.expect("connect");
        let (mut good, _) = tokio_tungstenite::client_async(
            request("ws", ws_addr, "sip", Some("https://app.sipd.test")),
            tcp,
        )
        .await
        .expect("an allowed origin is upgraded");
        served(&mut good).await;

        // Wrong subprotocol: 400, logged.
        let tcp = TcpStream::connect(ws_addr).await.expect("connect");
        let port = tcp.local_addr().expect("local").port().to_string();
        match tokio_tungstenite::client_async(
            request("ws", ws_addr, "chat", Some("https://app.sipd.test")),
            tcp,
        )
        .await
        {
            Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), 400),
            other => panic!("wrong subprotocol must be refused: {:?}", other.map(|_| ())),
        }
        logged(&[&port, "upgrade refused", "sip subprotocol"]);
        served(&mut good).await;

        // A foreign Origin: 403, logged.
        let tcp = TcpStream::connect(ws_addr).await.expect("connect");
        let port = tcp.local_addr().expect("local").port().to_string();
        match tokio_tungstenite::client_async(
            request("ws", ws_addr, "sip", Some("https://evil.example")),
            tcp,
        )
        .await
        {
            Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), 403),
            other => panic!("a foreign origin must be refused: {:?}", other.map(|_| ())),
        }
        logged(&[&port, "upgrade refused", "evil.example"]);

        // A 1 MB frame: the connection is closed, logged.
        let tcp = TcpStream::connect(ws_addr).await.expect("connect");
        let port = tcp.local_addr().expect("local").port().to_string();
        let (mut big, _) = tokio_tungstenite::client_async(
            request("ws", ws_addr, "sip", Some("https://app.sipd.test")),
            tcp,
        )
        .await
        .expect("upgrade");
        let started = Instant::now();
        let _ = big.send(Message::binary(vec![b'A'; 1 << 20])).await;
        assert!(closed_by_server(&mut big).await, "a 1 MB frame closes");
        logged(&[&port, "frame too large"]);
        assert!(started.elapsed() < WAIT);
        served(&mut good).await;

        // A text frame that is not SIP: closed, logged.
        let tcp = TcpStream::connect(ws_addr).await.expect("connect");
        let port = tcp.local_addr().expect("local").port().to_string();
        let (mut junk, _) = tokio_tungstenite::client_async(
            request("ws", ws_addr, "sip", Some("https://app.sipd.test")),
            tcp,
        )
        .await
        .expect("upgrade");
        junk.send(Message::text("hello, this is not SIP"))
            .await
            .expect("send");
        assert!(closed_by_server(&mut junk).await, "a non-SIP frame closes");
        logged(&[&port, "not a SIP message"]);
        served(&mut good).await;

        // A Content-Length larger than the frame's body: 400, then the close.
        let tcp = TcpStream::connect(ws_addr).await.expect("connect");
        let (mut short, _) = tokio_tungstenite::client_async(
            request("ws", ws_addr, "sip", Some("https://app.sipd.test")),
            tcp,
        )
        .await
        .expect("upgrade");
        let wrong = options(60, "WS").replace("Content-Length: 0", "Content-Length: 50");
        short.send(Message::text(wrong)).await.expect("send");
        let r = next_sip(&mut short).await;
        assert!(r.starts_with("SIP/2.0 400"), "{r}");
        assert!(
            closed_by_server(&mut short).await,
            "a bad Content-Length closes"
        );
        served(&mut good).await;

        // A TLS client that stalls mid-handshake (half a ClientHello) on wss:, and a TCP client
        // that never sends its upgrade on ws:: both closed after the 500 ms limit.
        for (addr, what) in [
            (wss_addr, "wss handshake timed out"),
            (ws_addr, "ws handshake timed out"),
        ] {
            let mut stall = TcpStream::connect(addr).await.expect("connect");
            let port = stall.local_addr().expect("local").port().to_string();
            if addr == wss_addr {
                stall
                    .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
                    .await
                    .expect("partial hello");
            }
            let started = Instant::now();
            let mut buf = [0u8; 64];
            let read =
                tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut stall, &mut buf))
                    .await
                    .expect("closed within the wait");
            assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(400) && took < Duration::from_secs(3),
                "closed after the handshake limit, took {took:?}"
            );
            logged(&[&port, what]);
            served(&mut good).await;
        }
        // wss: still works for a well-behaved client.
        let mut wss = connect_wss_origin(&pki, wss_addr).await;
        wss.send(Message::text(options(99, "WSS")))
            .await
            .expect("send");
        let r = next_sip(&mut wss).await;
        assert!(r.starts_with("SIP/2.0 200 OK wss"), "{r}");
    });
    let metrics = scrape(&sipd);
    let counter = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in\n{metrics}"))
    };
    assert!(counter("sipd_ws_upgrades_refused_total") >= 4);
    assert!(counter("sipd_tls_handshake_failures") >= 1);
}

/// `good` still gets its OPTIONS answered.
async fn served(good: &mut Ws<TcpStream>) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(100);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    good.send(Message::text(options(n, "WS")))
        .await
        .expect("send");
    let r = next_sip(good).await;
    assert!(r.starts_with("SIP/2.0 200 OK ws"), "{r}");
}

/// A `wss:` client with the allowed origin.
async fn connect_wss_origin(
    pki: &Pki,
    addr: SocketAddr,
) -> Ws<tokio_rustls::client::TlsStream<TcpStream>> {
    let tls = tls_to(pki, addr).await;
    let (ws, _) = tokio_tungstenite::client_async(
        request("wss", addr, "sip", Some("https://app.sipd.test")),
        tls,
    )
    .await
    .expect("websocket upgrade over tls");
    ws
}

#[test]
fn connections_over_the_per_ip_and_per_listener_limits_are_closed_at_accept() {
    let pki = Pki::new();
    let sipd = sipd(&pki, |c| {
        c.max_conns_per_ip = 2;
        c.max_conns_per_listener = 3;
    });
    let ws_addr = sipd.addr(Proto::Ws);
    runtime().block_on(async {
        let mut a = connect_ws(ws_addr).await;
        let mut b = connect_ws(ws_addr).await;
        // A third from 127.0.0.1: closed before the upgrade.
        let tcp = TcpStream::connect(ws_addr).await.expect("connect");
        let port = tcp.local_addr().expect("local").port().to_string();
        let third = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(request("ws", ws_addr, "sip", None), tcp),
        )
        .await
        .expect("answered within the wait");
        assert!(third.is_err(), "over max_connections_per_ip");
        logged(&[&port, "connection refused", "max_connections_per_ip"]);
        // The count is per source over every stream listener: wss: refuses it too, before TLS.
        let mut over = TcpStream::connect(sipd.addr(Proto::Wss))
            .await
            .expect("connect");
        let port = over.local_addr().expect("local").port().to_string();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut over, &mut buf))
            .await
            .expect("closed within the wait");
        assert!(matches!(read, Ok(0) | Err(_)), "closed at accept: {read:?}");
        logged(&[&port, "connection refused", "max_connections_per_ip"]);
        // From another source IP: admitted (3 on the listener), then the listener is full.
        let from = |ip: [u8; 4]| async move {
            let s = tokio::net::TcpSocket::new_v4().expect("socket");
            s.bind(SocketAddr::new(IpAddr::from(ip), 0)).expect("bind");
            s.connect(ws_addr).await.expect("connect")
        };
        let tcp = from([127, 0, 0, 2]).await;
        let (mut c, _) = tokio_tungstenite::client_async(request("ws", ws_addr, "sip", None), tcp)
            .await
            .expect("another source is admitted");
        let tcp = from([127, 0, 0, 3]).await;
        let port = tcp.local_addr().expect("local").port().to_string();
        let fourth = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(request("ws", ws_addr, "sip", None), tcp),
        )
        .await
        .expect("answered within the wait");
        assert!(fourth.is_err(), "over max_connections_per_listener");
        logged(&[&port, "connection refused", "max_connections_per_listener"]);
        // The admitted ones are served.
        for (n, ws) in [&mut a, &mut b].into_iter().enumerate() {
            ws.send(Message::text(options(n as u32, "WS")))
                .await
                .expect("send");
            let r = next_sip(ws).await;
            assert!(r.starts_with("SIP/2.0 200"), "{r}");
        }
        c.send(Message::text(options(7, "WS"))).await.expect("send");
        assert!(next_sip(&mut c).await.starts_with("SIP/2.0 200"));
        // Closing one makes room again.
        a.close(None).await.expect("close");
        drop(a);
        let deadline = Instant::now() + WAIT;
        loop {
            let tcp = TcpStream::connect(ws_addr).await.expect("connect");
            let again =
                tokio_tungstenite::client_async(request("ws", ws_addr, "sip", None), tcp).await;
            if again.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "room again after a close");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let metrics = scrape(&sipd);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sipd_ws_connections_refused_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[test]
fn sipd_pings_its_websocket_clients() {
    let pki = Pki::new();
    let sipd = sipd(&pki, |c| {
        c.websocket.ping_interval = Duration::from_millis(200);
    });
    let ws_addr = sipd.addr(Proto::Ws);
    runtime().block_on(async {
        let mut ws = connect_ws(ws_addr).await;
        let started = Instant::now();
        let mut pings = 0;
        while pings < 2 {
            match tokio::time::timeout(WAIT, ws.next()).await {
                Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
                Ok(Some(Ok(_))) => {}
                other => panic!("expected pings, got {other:?}"),
            }
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "two pings 200 ms apart took {took:?}"
        );
        // The connection still carries SIP (the client's pongs went out with the next poll).
        ws.send(Message::text(options(50, "WS")))
            .await
            .expect("send");
        assert!(next_sip(&mut ws).await.starts_with("SIP/2.0 200 OK ws"));
    });
}

/// The same over IPv6: the source stored as `sip:[::1]:port;transport=ws`, found again by the
/// connection check.
#[test]
fn ws_over_ipv6() {
    let v6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    logs();
    let sipd = Sipd::launch(
        "route.lua",
        SCRIPT,
        listen_on(v6, &[Proto::Udp, Proto::Ws]),
        2,
        |_, _| {},
    );
    let (ws_addr, udp) = (sipd.addr(Proto::Ws), sipd.addr(Proto::Udp));
    assert!(ws_addr.is_ipv6());
    runtime().block_on(async {
        let mut ws = connect_ws(ws_addr).await;
        ws.send(Message::text(options(70, "WS")))
            .await
            .expect("send");
        let r = next_sip(&mut ws).await;
        assert!(r.starts_with("SIP/2.0 200 OK ws\r\n"), "{r}");
        assert!(
            r.contains("received=::1") || r.contains("received=[::1]"),
            "{r}"
        );
        reachable_then_gone(ws, udp, "carol", "WS").await;
    });
}
