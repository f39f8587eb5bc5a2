//! Lua C modules from the distribution's packages (Debian `lua-cjson`, `lua-rex-pcre2`): they
//! load by default, with the budget still cutting an endless loop, and `c_modules = false`
//! refuses them at load with a message that names the setting and the module.

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
