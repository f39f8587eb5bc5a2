//! The bridge between the configuration and the stateful modules: modparam tables converted to
//! [`ModParams`], [`modules::setup::setup`] run, and the housekeeping thread that runs the
//! modules' periodic jobs (expiry sweeps) until the server stops.

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kemi_runtime::services::Services;
use modules::modparam::{ModParams, ModparamError, ParamValue};
use modules::setup::{SetupError, SetupInput, StoreWriters};
use tokio::sync::watch;

use crate::config::Config;

/// A TOML value as a module parameter; `None` for tables and other shapes modparams never take.
fn param_value(v: &toml::Value) -> Option<ParamValue> {
    match v {
        toml::Value::Integer(i) => Some(ParamValue::Int(*i)),
        toml::Value::Boolean(b) => Some(ParamValue::Int(i64::from(*b))),
        toml::Value::String(s) => Some(ParamValue::Str(s.clone())),
        toml::Value::Float(f) => Some(ParamValue::Str(f.to_string())),
        toml::Value::Array(items) => items
            .iter()
            .map(param_value)
            .collect::<Option<Vec<_>>>()
            .map(ParamValue::List),
        toml::Value::Datetime(_) | toml::Value::Table(_) => None,
    }
}

/// One `[modparam.<module>]` table as [`ModParams`].
pub fn table_params(module: &str, table: &toml::Table) -> Result<ModParams, ModparamError> {
    let mut p = ModParams::new(module);
    for (name, value) in table {
        let v = param_value(value)
            .ok_or_else(|| p.error(name, "expected an integer, a string or a list of them"))?;
        p.set(name, v);
    }
    Ok(p)
}

/// The `[modparam.*]` tables of `config` as [`ModParams`].
pub fn modparams(config: &Config) -> Result<BTreeMap<String, ModParams>, SetupError> {
    let mut out = BTreeMap::new();
    for (module, table) in &config.modparams {
        out.insert(module.clone(), table_params(module, table)?);
    }
    Ok(out)
}

/// Set up the stateful modules of `config`.
pub fn services(config: &Config) -> Result<Services, SetupError> {
    let params = modparams(config)?;
    let enabled = |m: &str| config.modules.is_enabled(m);
    modules::setup::setup(&SetupInput {
        params: &params,
        enabled: &enabled,
        db_url: &config.db_url,
        base_dir: &config.base_dir,
    })
}

/// The stateful modules with default parameters on a private in-memory store, for offline
/// routing (`sipd route-test`): nothing it does touches a real database.
pub fn offline_services() -> Result<Services, SetupError> {
    let params = BTreeMap::new();
    modules::setup::setup(&SetupInput {
        params: &params,
        enabled: &|_| true,
        db_url: "sqlite::memory:",
        base_dir: std::path::Path::new("."),
    })
}

/// A setup error as the operator should read it: a refused parameter is prefixed with the
/// file and line where it is set.
pub fn describe(config: &Config, e: &SetupError) -> String {
    match e {
        SetupError::Modparam(m) => format!("{}: {m}", config.modparam_origin(&m.module, &m.param)),
        other => other.to_string(),
    }
}

/// Flush the stores of `services` (at shutdown).
pub fn flush(services: &Services) {
    if let Some(w) = services.get::<StoreWriters>() {
        w.flush(Duration::from_secs(5));
    }
}

/// Run the periodic jobs of `services` on one thread until `stop` turns true.
pub fn housekeeping(
    services: &Services,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<Option<JoinHandle<()>>> {
    let jobs: Vec<_> = services.periodic().to_vec();
    if jobs.is_empty() {
        return Ok(None);
    }
    // The caller's span (the node's, see `NodeId::span`) marks this thread's log lines too.
    let span = tracing::Span::current();
    let thread = std::thread::Builder::new()
        .name("sipd-housekeeping".into())
        .spawn(move || {
            let _node = span.enter();
            let start = Instant::now();
            let mut next: Vec<Instant> = jobs.iter().map(|j| start + j.every).collect();
            loop {
                let soonest = next.iter().min().copied().unwrap_or(start);
                let wait = soonest
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(200));
                std::thread::sleep(wait);
                if *stop.borrow_and_update() || stop.has_changed().is_err() {
                    return;
                }
                let now = Instant::now();
                for (job, at) in jobs.iter().zip(next.iter_mut()) {
                    if *at <= now {
                        (job.run)();
                        *at = now + job.every;
                    }
                }
            }
        })?;
    Ok(Some(thread))
}
