//! Debian's Lua C modules in a running sipd: a route decodes the JSON body of a real SIP MESSAGE
//! with `cjson` (lua-cjson) and answers with what it read; a body that is not JSON costs that
//! one message a 400, and the next is served.

use std::net::UdpSocket;
use std::time::Duration;

use kemi_runtime::msg::Proto;

use crate::support::proxy::Sipd;

const ROUTE: &str = r#"
local cjson = require "cjson"

function ksr_request_route()
    local ok, doc = pcall(cjson.decode, KSR.pv.get("$rb") or "")
    if not ok or type(doc) ~= "table" then
        KSR.sl.sl_send_reply(400, "Bad JSON")
        KSR.x.exit()
    end
    KSR.sl.sl_send_reply(200, doc.user .. " has " .. #doc.devices .. " devices, first " .. doc.devices[1].id)
    KSR.x.exit()
end
"#;

fn message(n: u32, body: &str) -> String {
    format!(
        "MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-json-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=j{n}\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: json-{n}\r\nCSeq: {n} MESSAGE\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn cjson_decodes_the_body_of_a_sip_message() {
    let listen = vec!["udp:127.0.0.1:0".parse().expect("endpoint")];
    let sipd = Sipd::launch("route.lua", ROUTE, listen, 1, |_, _| {});
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let to = sipd.addr(Proto::Udp);
    let status = |n: u32, body: &str| {
        // rport: the reply comes back to this socket whatever the Via's port says.
        let req = message(n, body).replace(";branch=", ";rport;branch=");
        sock.send_to(req.as_bytes(), to).expect("send");
        let mut buf = vec![0u8; 65536];
        let got = sock.recv(&mut buf).expect("a reply within 3 s");
        let text = String::from_utf8_lossy(&buf[..got]).into_owned();
        text.lines().next().unwrap_or("").to_string()
    };
    let json = r#"{"user":"alice","devices":[{"id":"desk"},{"id":"mobile"}],"presence":null}"#;
    assert_eq!(
        status(1, json),
        "SIP/2.0 200 alice has 2 devices, first desk"
    );
    assert_eq!(status(2, "{\"user\": \"alice\", "), "SIP/2.0 400 Bad JSON");
    assert_eq!(
        status(3, json),
        "SIP/2.0 200 alice has 2 devices, first desk"
    );
}
