//! `sipd check` lists, as warnings, the `KSR.*` names a script uses that sipd cannot call: on
//! Kamailio's basic KEMI example only the RTPProxy ones (`tests/kamailio/basic-kemi.toml` leaves
//! `rtpproxy` out of `modules`, as the comparison with Kamailio runs without a media relay), and
//! on a script with a typo, a module left out of `modules` and an unknown core function, each
//! of them with its line.

use std::path::Path;
use std::process::Command;

fn check(dir: &Path, toml: &str) -> String {
    let config = dir.join("sipd.toml");
    std::fs::write(&config, toml).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_sipd"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("sipd check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn warnings(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            l.split_once(": warning: ").map(|(at, w)| {
                let line = at.rsplit(':').next().unwrap_or("");
                format!("{line}: {w}")
            })
        })
        .collect()
}

#[test]
fn the_basic_example_misses_only_rtpproxy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = Path::new("/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-lua.lua");
    assert!(
        example.is_file(),
        "install the `kamailio` package (.ci/run does)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(example, dir.path().join("kamailio-basic-kemi-lua.lua")).expect("copy");
    let toml = std::fs::read_to_string(root.join("tests/kamailio/basic-kemi.toml"))
        .expect("basic-kemi.toml")
        .lines()
        .map(|l| match l.starts_with("url = ") {
            true => format!("url = \"sqlite://{}/sipd.db\"", dir.path().display()),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = check(dir.path(), &toml);
    assert_eq!(
        warnings(&text),
        [
            "342: KSR.rtpproxy: module `rtpproxy` is not in `modules`",
            "356: KSR.rtpproxy.rtpproxy_manage: module `rtpproxy` is not in `modules`",
        ],
        "{text}"
    );
}

#[test]
fn a_typo_a_module_left_out_and_an_unknown_core_function_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("route.lua"),
        "-- KSR.commented.out() is not a use\n\
         function ksr_request_route()\n\
         \x20   KSR.tm.t_rely()\n\
         \x20   KSR.registrar.save('location', 0)\n\
         \x20   KSR.sl.sl_send_reply(200, 'OK')\n\
         \x20   KSR.no_such_core()\n\
         \x20   KSR.x.exit()\n\
         end\n",
    )
    .expect("script");
    let text = check(
        dir.path(),
        "listen = [\"udp:127.0.0.1:5060\"]\nscript = \"route.lua\"\nmodules = [\"sl\", \"tm\"]\n",
    );
    assert_eq!(
        warnings(&text),
        [
            "3: KSR.tm.t_rely: sipd's `tm` has no function `t_rely`",
            "4: KSR.registrar.save: module `registrar` is not in `modules`",
            "6: KSR.no_such_core: sipd has no core function `no_such_core`",
        ],
        "{text}"
    );
    assert!(text.contains("3 KSR name(s)"), "{text}");
}
