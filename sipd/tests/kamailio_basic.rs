//! Yardstick 1: Kamailio's own `kamailio-basic-kemi-lua.lua`, unchanged, answers every flow of
//! `tests/kamailio/compare.py` at sipd as Kamailio 5.6.3 did (the committed reference
//! `tests/kamailio/expected/kamailio-5.6.3.json`). Registration with digest auth, an
//! authenticated record-routed call, 404, a wrong password, expiry by itself (~62 s of waiting),
//! a trusted address, no open relay, NAT, TCP, and a flood banned by pike and htable.
//!
//! Needs what `.ci/run` installs: `kamailio` (the example script), `kamailio-sqlite-modules`
//! (Kamailio's SQLite schema), `sqlite3`, `sip-tester` (sipp) and `python3`.

use std::path::Path;
use std::process::Command;

#[test]
fn kamailio_basic_kemi_lua_answers_as_kamailio_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("tests/kamailio/compare.py");
    let example = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-lua.lua";
    assert!(
        Path::new(example).is_file(),
        "{example} is missing: install the `kamailio` package (CI does, in .ci/run)"
    );
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
        .min(60_000);
    let out = Command::new("python3")
        .arg(&script)
        .args(["check", "sipd", "--sipd", env!("CARGO_BIN_EXE_sipd")])
        .args(["--port", &port.to_string()])
        .output()
        .expect("running tests/kamailio/compare.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sipd differs from Kamailio 5.6.3 on the basic example:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("same results"), "{stdout}\n{stderr}");
}
