//! The TOML configuration: `sipd::config::Config::load` on a file holding the fuzzed bytes must
//! return a configuration or an error that displays (file, line, cause), never panic. A
//! configuration that loads goes on to the module setup that `sipd run` does next (modparam
//! conversion, then every stateful module's parameter checks: htable definitions, pike, tm...),
//! on a private in-memory store whatever `[db] url` says.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sipd::config::{Config, RunArgs};

/// The file the fuzzed bytes go to, in a private directory (RAM-backed when /dev/shm exists).
fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("sipd-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz scratch directory");
        // A script the configuration may name, so that loading goes past the script check.
        std::fs::write(dir.join("route.lua"), "function ksr_request_route() end\n")
            .expect("fuzz scratch script");
        dir.join("sipd.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = file();
    std::fs::write(path, data).expect("write the fuzzed configuration");
    let args = RunArgs {
        config: Some(path.clone()),
        ..RunArgs::default()
    };
    match Config::load(&args) {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(mut config) => {
            config.db_url = "sqlite::memory:".into();
            match sipd::modsetup::services(&config) {
                Ok(services) => sipd::modsetup::flush(&services),
                Err(e) => {
                    let _ = sipd::modsetup::describe(&config, &e);
                }
            }
        }
    }
});
