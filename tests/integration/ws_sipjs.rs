//! A WebRTC-side SIP library against sipd: SIP.js under node (`tests/node`, installed by
//! `npm ci`, with the `ws` package as its WebSocket) registers over `ws:` and over `wss:` with
//! digest auth, receives a call from a sipp UAC over UDP, then calls a sipp UAS over UDP. sipd
//! runs `ws/route.lua`, Kamailio's basic example with the WebSocket part of its kamailio.cfg.
//! Both calls are record-routed across the transport change: the UAS sees a `transport=ws`
//! Record-Route entry, the UAC's ACK and BYE reach the WebSocket client through the route set and
//! the Contact alias.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kemi_runtime::msg::Proto;
use modules::store::{self, AddressRow, Subscriber};

use crate::support::proxy::{listen_on, Sipd};
use crate::support::sipp::{self, Sipp};
use crate::tls::Pki;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The trusted peer (permissions group 1): the sipp UAC calls from there without auth.
const TRUSTED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
const DOMAIN: &str = "sipd.test";
const PASSWORD: &str = "w3bRTC-pw";
const SCRIPT: &str = include_str!("ws/route.lua");

const MODPARAMS: &str = r#"
[registrar]
min_expires = 1
max_expires = 3600
[htable]
htable = "ipban=>size=8;autoexpire=300;"
[pike]
sampling_time_unit = 2
reqs_density_per_unit = 64
remove_latency = 4
[auth_db]
calculate_ha1 = true
password_column = "password"
"#;

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

fn seed(db: &Path) {
    let store = store::open(&format!("sqlite://{}", db.display()), Path::new("/"))
        .expect("opening the test store");
    for user in ["alice", "bob"] {
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

/// The node client, its stdout lines on a channel.
struct NodeUa {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl NodeUa {
    fn spawn(server: &str, user: &str, call: &str, ca: &Path) -> NodeUa {
        let dir = node_dir();
        assert!(
            dir.join("node_modules/sip.js").is_dir() && dir.join("node_modules/ws").is_dir(),
            "SIP.js is not installed: run `npm ci` in {} (.ci/run does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("webrtc_ua.mjs"))
            .args([
                "--server",
                server,
                "--user",
                user,
                "--domain",
                DOMAIN,
                "--password",
                PASSWORD,
                "--answer",
                "1",
                "--call",
                call,
                "--timeout",
                "40",
            ])
            .env("NODE_EXTRA_CA_CERTS", ca)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs (Debian: nodejs)");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        NodeUa {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait (up to `within`) for a line starting with `what`; fail on a FAIL line.
    fn expect(&mut self, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.seen.iter().any(|l| l.starts_with(what)) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    assert!(!l.starts_with("FAIL"), "node client: {l}\n{:?}", self.seen);
                    self.seen.push(l);
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let mut err = String::new();
                    if let Some(mut e) = self.child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    panic!(
                        "node client: no {what} within {within:?}; saw {:?}\n{err}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Wait for the exit (killing after `within`); it must be 0.
    fn finish(mut self, within: Duration) -> Vec<String> {
        self.expect("DONE", within);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "node client exit {status}: {:?}",
                    self.seen
                );
                return std::mem::take(&mut self.seen);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("node client did not exit: {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeUa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One round: the SIP.js user `user` on `server`; a sipp UAC over UDP calls it, then it calls a
/// sipp UAS over UDP.
fn round(sipd: &Sipd, server: &str, user: &'static str, ca: &Path) {
    let uas_addr = sipp::free_addr(LO);
    let mut uas = Sipp::uas("uas", "ws_uas.xml", uas_addr, "u1", 1)
        .timeout(Duration::from_secs(30))
        .wall(Duration::from_secs(45))
        .spawn();
    uas.wait_bound(uas_addr, "u1");
    let call = format!("sip:bob-uas@{uas_addr}");
    let mut ua = NodeUa::spawn(server, user, &call, ca);
    ua.expect("REGISTERED", Duration::from_secs(15));
    let uac = Sipp::uac(
        "uac",
        "ws_uac.xml",
        sipp::free_addr(TRUSTED),
        "u1",
        1,
        sipd.addr(Proto::Udp),
    )
    .args(&["-s", user])
    .timeout(Duration::from_secs(15))
    .wall(Duration::from_secs(25))
    .spawn();
    let uac_messages = {
        let mut uac = uac;
        let o = uac.finish();
        assert!(
            o.status.success() && o.successful == 1,
            "the UDP call to the WebSocket client failed\n{}",
            uac.report()
        );
        uac.messages()
    };
    let seen = ua.finish(Duration::from_secs(30));
    for line in [
        "INCOMING",
        "INCOMING_TERMINATED",
        "OUTGOING_ESTABLISHED",
        "OUTGOING_TERMINATED",
    ] {
        assert!(
            seen.iter().any(|l| l.starts_with(line)),
            "{line} in {seen:?}"
        );
    }
    let uas_messages = uas.messages();
    uas.expect_all_ok();
    // The call from the WebSocket client: two Record-Route entries, one per transport.
    let invite = uas_messages
        .split("INVITE sip:")
        .nth(1)
        .expect("the UAS got an INVITE");
    let rr: Vec<&str> = invite
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("Record-Route:"))
        .collect();
    assert_eq!(rr.len(), 2, "double Record-Route across ws -> udp: {rr:?}");
    assert!(rr.iter().any(|l| l.contains("transport=ws")), "{rr:?}");
    assert!(
        invite.contains("Via: SIP/2.0/WS") || invite.contains("Via: SIP/2.0/WSS"),
        "the client's Via is a WebSocket one (RFC 7118)"
    );
    // The call to it: the 200 came back with a route set over both transports.
    assert!(
        uac_messages.contains("transport=ws"),
        "the UAC's route set names the WebSocket side"
    );
}

#[test]
fn sipjs_registers_over_ws_and_wss_with_digest_auth_and_calls_both_ways() {
    let pki = Pki::new();
    let db = tempfile::tempdir().expect("temp dir");
    seed(&db.path().join("sipd.db"));
    let url = format!("sqlite://{}", db.path().join("sipd.db").display());
    let tls = pki.config();
    let sipd = Sipd::launch(
        "route.lua",
        SCRIPT,
        listen_on(LO, &[Proto::Udp, Proto::Ws]),
        2,
        move |c, _| {
            c.listen.extend(listen_on(LO, &[Proto::Wss]));
            c.tls = Some(tls);
            c.aliases = vec![DOMAIN.into()];
            c.db_url = url;
            c.modparams = toml::from_str(MODPARAMS).expect("test modparams");
            c.metrics = Some(sipd::config::MetricsConfig {
                listen: std::net::SocketAddr::new(LO, 0),
            });
        },
    );
    let ws = format!("ws://{}", sipd.addr(Proto::Ws));
    let wss = format!("wss://{}", sipd.addr(Proto::Wss));
    let ca = pki.path("ca.pem");
    round(&sipd, &ws, "alice", &ca);
    round(&sipd, &wss, "bob", &ca);
    // Digest auth happened: each REGISTER and each INVITE from SIP.js was challenged and came
    // back with good credentials.
    let metrics = crate::tls::scrape(&sipd);
    let counter = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in\n{metrics}"))
    };
    assert!(counter("sipd_auth_successes_total") >= 4, "{metrics}");
    assert_eq!(counter("sipd_auth_failures_total"), 0);
    assert!(counter("sipd_ws_frames_received_total") >= 10);
    assert!(counter("sipd_ws_frames_sent_total") >= 10);
}
