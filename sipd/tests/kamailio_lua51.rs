//! A Lua 5.1-era routing script (`module`, `unpack`, `table.getn`, `loadstring`,
//! `setfenv`/`getfenv`, `math.pow`, `math.mod`, `table.setn`, `string.gfind`, a companion module)
//! answers at sipd as it did at Kamailio 5.6.3 with `app_lua` on Debian's Lua 5.1: the committed
//! reference `tests/kamailio/expected/lua51-kamailio-5.6.3.json`, recorded with
//! `tests/kamailio/lua51.py run kamailio --out ...` (needs `kamailio-lua-modules`).

use std::path::Path;
use std::process::Command;

#[test]
fn lua51_era_script_answers_as_kamailio_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let out = Command::new("python3")
        .arg(root.join("tests/kamailio/lua51.py"))
        .args(["check", "sipd", "--sipd", env!("CARGO_BIN_EXE_sipd")])
        .args(["--port", &port.to_string()])
        .output()
        .expect("running tests/kamailio/lua51.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sipd differs from Kamailio 5.6.3 on the Lua 5.1-era script:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("same results"), "{stdout}\n{stderr}");
}
