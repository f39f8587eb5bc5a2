//! The JSON-RPC control interface: `sipd::rpc::jsonrpc::handle` with a fuzzed request body,
//! answered by a real `RpcContext` (the methods `sipd rpc` reaches: core, stats, kemi, tm,
//! `ul.*`, `htable.*` on a table `t`, `permissions.*`, `siptrace.*`, `dispatcher.*` on a
//! two-destination list, `app_lua.*`) over the stateful modules on a private in-memory store.
//! Every answer is JSON.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sipd::config::{Config, RunArgs};
use sipd::metrics::Metrics;
use sipd::reload::ScriptVersions;
use sipd::rpc::jsonrpc;
use sipd::rpc::RpcContext;

const CONFIG: &str = r#"
listen = ["udp:127.0.0.1:5060"]
script = "route.lua"
[db]
url = "sqlite::memory:"
[modparam.htable]
htable = "t=>size=4;"
[modparam.dispatcher]
list_file = "dispatcher.list"
ds_ping_interval = 0
"#;

fn context() -> &'static RpcContext {
    static CTX: OnceLock<RpcContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("sipd-fuzz-rpc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz scratch directory");
        let script = dir.join("route.lua");
        std::fs::write(&script, "function ksr_request_route() end\n").expect("fuzz script");
        std::fs::write(
            dir.join("dispatcher.list"),
            "1 sip:127.0.0.1:5081\n1 sip:127.0.0.1:5082 8 1 weight=50\n",
        )
        .expect("fuzz dispatcher list");
        let cfg_path = dir.join("sipd.toml");
        let args = RunArgs::default();
        let config = Config::from_toml(CONFIG, Some(&cfg_path), &args).expect("fuzz config");
        let table = Arc::new(sipd::exports::build_table(&config.modules).expect("export table"));
        let versions = ScriptVersions::new(
            config.engine,
            &config.script,
            Arc::clone(&table),
            config.limits.script,
        )
        .expect("script versions");
        let metrics = Arc::new(Metrics::new(Arc::clone(&table)));
        metrics.add_worker(0);
        RpcContext {
            versions: Arc::new(versions),
            metrics,
            table,
            tm: Arc::new(sipd::tm::TmLayer::new(config.tm)),
            services: sipd::modsetup::services(&config).expect("services"),
            tls: None,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let ctx = context();
    let call = |method: &str, params: &[Value]| ctx.call(method, params);
    if let Some(answer) = jsonrpc::handle(data, &call) {
        assert!(
            serde_json::from_str::<Value>(&answer).is_ok(),
            "an answer that is not JSON: {answer}"
        );
    }
    // What an input stored goes, so that the next input starts from the same state.
    let _ = ctx.call("htable.flush", &[Value::from("t")]);
});
