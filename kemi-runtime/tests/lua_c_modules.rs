//! Lua C modules from the distribution's packages (Debian `lua-cjson`, `lua-rex-pcre2`,
//! `lua-socket` with `lua-redis` against a real `redis-server`): they load by default, with the
//! budget still cutting an endless loop; `c_modules = false` refuses them at load with a message
//! that names the setting and the module; a build for another Lua ABI is a load error.

mod common;

use std::path::PathBuf;

use kemi_runtime::engine::limits::{LimitKind, ScriptLimits};
use kemi_runtime::engine::lua::{LuaEngine, LuaOptions};
use kemi_runtime::engine::{Engine, RunOutcome};
use kemi_runtime::table::Enabled;

use common::{logs, msg, table};

const SCRIPT: &str = r#"
local cjson = require "cjson"
local rex = require "rex_pcre2"

function ksr_request_route()
    local body = cjson.decode('{"user":"alice","devices":[{"id":7},{"id":8}],"ok":true}')
    KSR.info(body.user .. " " .. #body.devices .. " " .. body.devices[2].id .. " " .. tostring(body.ok))
    KSR.info(cjson.encode({ n = 1 }))
    local user, domain = rex.match("sip:bob@example.com", "^sip:([^@]+)@(.+)$")
    KSR.info(user .. "|" .. domain)
end

function spin()
    local n = 0
    while true do n = n + 1 end
end
"#;

struct Script(PathBuf);

impl Script {
    fn new(tag: &str) -> Script {
        let p =
            std::env::temp_dir().join(format!("sipd-lua-cmod-{tag}-{}.lua", std::process::id()));
        std::fs::write(&p, SCRIPT).expect("write script");
        Script(p)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const LIMITS: ScriptLimits = ScriptLimits {
    instructions: Some(200_000),
    memory: Some(32 << 20),
};

#[test]
fn cjson_and_rex_pcre2_load_from_the_system_paths() {
    let s = Script::new("on");
    let mut e = LuaEngine::load_with_options(
        &s.0,
        None,
        &[],
        table(Enabled::All),
        LIMITS,
        LuaOptions::default(),
    )
    .expect("load with C modules");
    let mut m = msg();
    assert_eq!(
        e.run("ksr_request_route", &mut m, None),
        Ok(RunOutcome::Returned)
    );
    assert_eq!(
        logs(&m),
        ["alice 2 8 true", r#"{"n":1}"#, "bob|example.com"]
    );
    // The instruction budget still cuts an endless loop with C modules loaded.
    let err = e.run("spin", &mut msg(), None).expect_err("budget");
    assert_eq!(LimitKind::of(&err), Some(LimitKind::Instructions), "{err}");
}

#[test]
fn c_modules_off_refuses_them_at_load() {
    let s = Script::new("off");
    let err = LuaEngine::load_with_options(
        &s.0,
        None,
        &[],
        table(Enabled::All),
        LIMITS,
        LuaOptions { c_modules: false },
    )
    .expect_err("C modules are off");
    let text = err.to_string();
    assert!(
        text.contains("module 'cjson' not found")
            && text.contains("C modules are disabled in sipd ([lua] c_modules = false)"),
        "{text}"
    );
}

#[test]
fn a_missing_c_module_names_the_paths_searched() {
    let p = std::env::temp_dir().join(format!("sipd-lua-cmod-missing-{}.lua", std::process::id()));
    std::fs::write(
        &p,
        "require 'no_such_module_xyz'\nfunction ksr_request_route() end\n",
    )
    .unwrap();
    let err = LuaEngine::load_with_options(
        &p,
        None,
        &[],
        table(Enabled::All),
        LIMITS,
        LuaOptions::default(),
    )
    .expect_err("missing module");
    let _ = std::fs::remove_file(&p);
    let text = err.to_string();
    assert!(
        text.contains("module 'no_such_module_xyz' not found")
            && text.contains("/usr/lib/x86_64-linux-gnu/lua/5.1/no_such_module_xyz.so"),
        "{text}"
    );
}

/// Write `text` as a script named after `tag` and try to load it with C modules on.
fn load_text(tag: &str, text: &str) -> Result<LuaEngine, kemi_runtime::engine::LoadError> {
    let p = std::env::temp_dir().join(format!("sipd-lua-cmod-{tag}-{}.lua", std::process::id()));
    std::fs::write(&p, text).expect("write script");
    let loaded = LuaEngine::load_with_options(
        &p,
        None,
        &[],
        table(Enabled::All),
        LIMITS,
        LuaOptions::default(),
    );
    let _ = std::fs::remove_file(&p);
    loaded
}

#[test]
fn a_c_module_built_for_another_lua_abi_is_an_error_not_a_crash() {
    // Debian's lua-cjson and lua-rex-pcre2 ship builds for Lua 5.2 to 5.4 too; each needs
    // functions LuaJIT (the 5.1 ABI) does not have.
    for version in ["5.2", "5.3", "5.4"] {
        for module in ["cjson", "rex_pcre2"] {
            let so = format!("/usr/lib/x86_64-linux-gnu/lua/{version}/{module}.so");
            assert!(
                std::path::Path::new(&so).is_file(),
                "{so} (Debian lua-{module})"
            );
            let script = format!(
                "package.cpath = '/usr/lib/x86_64-linux-gnu/lua/{version}/?.so'\n\
                 require '{module}'\nfunction ksr_request_route() end\n"
            );
            let err = load_text("abi", &script).expect_err("wrong ABI");
            let text = err.to_string();
            assert!(
                text.contains(&format!("module '{module}'"))
                    && text.contains(&so)
                    && text.contains("undefined symbol"),
                "{text}"
            );
        }
    }
    // The process is still fine: the right build loads after the failures.
    load_text(
        "abi-ok",
        "require 'cjson'\nfunction ksr_request_route() end\n",
    )
    .expect("cjson");
}

/// A `redis-server` on a free loopback port, stopped on drop.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian redis-server, installed by .ci/run)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Redis { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn socket_and_redis_modules_talk_to_a_real_redis() {
    let redis = Redis::start();
    let script = format!(
        r#"
local socket = require "socket"
local redis = require "redis"
local client = redis.connect("127.0.0.1", {port})

function ksr_request_route()
    local n = client:incr("sipd:calls")
    client:set("sipd:last", "call-" .. n)
    KSR.info("calls=" .. n .. " last=" .. client:get("sipd:last") .. " socket=" .. type(socket.gettime()))
end
"#,
        port = redis.port
    );
    let mut e = load_text("redis", &script).expect("socket + redis load");
    for expected in ["calls=1 last=call-1", "calls=2 last=call-2"] {
        let mut m = msg();
        assert_eq!(
            e.run("ksr_request_route", &mut m, None).expect("run"),
            RunOutcome::Returned
        );
        let lines = logs(&m);
        assert!(
            lines
                .iter()
                .any(|l| l.contains(expected) && l.contains("socket=number")),
            "{lines:?}"
        );
    }
}

#[test]
fn package_loadlib_opens_a_c_module_when_c_modules_are_on() {
    let script = "local open = assert(package.loadlib(\
                  '/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so', 'luaopen_cjson'))\n\
                  assert(open().encode({ 1 }) == '[1]')\n\
                  function ksr_request_route() end\n";
    load_text("loadlib", script).expect("package.loadlib works with C modules on");
}
