//! The RPC methods, with Kamailio's names and result shapes where Kamailio has them:
//! `app_<engine>.{api_list,reload,list}` for the configured engine, `core.{version,uptime,ps}`,
//! `system.listMethods`, `stats.get_statistics`, and sipd's `kemi.stats`.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use kemi_runtime::engine::EngineKind;
use kemi_runtime::ExportTable;
use serde_json::{json, Value};

use super::jsonrpc::{RpcError, METHOD_NOT_FOUND, RELOAD_FAILED};
use crate::metrics::{stats, Metrics};
use crate::reload::ScriptVersions;

/// What the methods read and act on.
#[derive(Debug, Clone)]
pub struct RpcContext {
    /// The script and its reloads.
    pub versions: Arc<ScriptVersions>,
    /// The counters.
    pub metrics: Arc<Metrics>,
    /// The export table the scripts bind.
    pub table: Arc<ExportTable>,
    /// The transaction layer, for `tm.stats`.
    pub tm: Arc<crate::tm::TmLayer>,
    /// The stateful modules' shared state (usrloc, htable, permissions...).
    pub services: kemi_runtime::services::Services,
    /// The TLS configurations, for `tls.reload`, when `[tls]` is configured.
    pub tls: Option<Arc<crate::transport::tls::TlsContext>>,
}

/// Methods every server has.
const CORE_METHODS: [&str; 8] = [
    "core.version",
    "core.info",
    "core.uptime",
    "core.ps",
    "system.listMethods",
    "stats.get_statistics",
    "kemi.stats",
    "tm.stats",
];

/// The RPC prefixes Kamailio registers for an engine (`app_python3` registers `app_python.*`).
pub fn engine_prefixes(kind: EngineKind) -> &'static [&'static str] {
    match kind {
        EngineKind::Lua => &["app_lua"],
        EngineKind::Jsdt => &["app_jsdt"],
        EngineKind::Python => &["app_python", "app_python3s"],
    }
}

fn no_params(method: &str, params: &[Value]) -> Result<(), RpcError> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(RpcError::params(format!("{method} takes no parameters")))
    }
}

impl RpcContext {
    /// Every method this server answers, sorted.
    pub fn methods(&self) -> Vec<String> {
        let mut m: Vec<String> = CORE_METHODS.iter().map(|s| s.to_string()).collect();
        for p in engine_prefixes(self.versions.current().kind) {
            for f in ["api_list", "reload", "list"] {
                m.push(format!("{p}.{f}"));
            }
        }
        if self
            .services
            .get::<modules::registrar::Registrar>()
            .is_some()
        {
            m.extend(super::ul::METHODS.iter().map(|s| s.to_string()));
        }
        if self
            .services
            .get::<modules::htable::HtableState>()
            .is_some()
        {
            m.extend(super::htable::METHODS.iter().map(|s| s.to_string()));
        }
        if self
            .services
            .get::<modules::permissions::PermissionsState>()
            .is_some()
        {
            m.extend(super::permissions::METHODS.iter().map(|s| s.to_string()));
        }
        if self
            .services
            .get::<modules::dispatcher::DispatcherState>()
            .is_some()
        {
            m.extend(super::dispatcher::METHODS.iter().map(|s| s.to_string()));
        }
        if self
            .services
            .get::<modules::dialog::DialogState>()
            .is_some()
        {
            m.extend(super::dialog::METHODS.iter().map(|s| s.to_string()));
        }
        if self.services.get::<modules::rtpengine::NgRelay>().is_some() {
            m.extend(super::rtpengine::METHODS.iter().map(|s| s.to_string()));
        }
        if self.tls.is_some() {
            m.push("tls.reload".into());
        }
        if self.services.get::<modules::siptrace::Tracer>().is_some() {
            m.extend(super::siptrace::METHODS.iter().map(|s| s.to_string()));
        }
        m.sort();
        m
    }

    /// Run `method` with `params`.
    pub fn call(&self, method: &str, params: &[Value]) -> Result<Value, RpcError> {
        let kind = self.versions.current().kind;
        if let Some((prefix, f)) = method.split_once('.') {
            if engine_prefixes(kind).contains(&prefix) {
                return match f {
                    "api_list" => no_params(method, params).map(|()| self.table.api_list()),
                    "reload" => self.reload(method, params),
                    "list" => no_params(method, params).map(|()| {
                        json!([format!("0: [{}]", self.versions.current().path.display())])
                    }),
                    _ => Err(not_found(method)),
                };
            }
        }
        if let Some(r) = super::ul::call(&self.services, method, params) {
            return r;
        }
        if let Some(r) = super::htable::call(&self.services, method, params) {
            return r;
        }
        if let Some(r) = super::permissions::call(&self.services, method, params) {
            return r;
        }
        if let Some(r) = super::siptrace::call(&self.services, method, params) {
            return r;
        }
        if let Some(r) = super::dispatcher::call(&self.services, method, params) {
            return r;
        }
        if let Some(r) = super::rtpengine::call(&self.services, method, params) {
            return r;
        }
        if let Some(r) = super::dialog::call(&self.services, method, params) {
            return r;
        }
        match method {
            "core.version" => no_params(method, params)
                .map(|()| json!(format!("sipd {} ({} engine)", crate::VERSION, kind))),
            "core.uptime" => no_params(method, params).map(|()| self.uptime()),
            "core.info" => no_params(method, params).map(|()| self.info(kind)),
            "tm.stats" => no_params(method, params).map(|()| self.tm.stats()),
            "core.ps" => no_params(method, params).map(|()| self.ps()),
            "system.listMethods" => no_params(method, params).map(|()| json!(self.methods())),
            "stats.get_statistics" => self.statistics(params),
            "kemi.stats" => no_params(method, params).map(|()| self.kemi_stats()),
            "tls.reload" if self.tls.is_some() => {
                no_params(method, params).and_then(|()| self.tls_reload())
            }
            _ => Err(not_found(method)),
        }
    }

    /// `tls.reload`: re-read the certificates and keys; new handshakes use them, established
    /// connections go on. On error the running ones stay.
    fn tls_reload(&self) -> Result<Value, RpcError> {
        let Some(tls) = &self.tls else {
            return Err(not_found("tls.reload"));
        };
        match tls.reload() {
            Ok(()) => {
                tracing::info!("tls certificates reloaded");
                Ok(json!("Ok. TLS configuration reloaded."))
            }
            Err(e) => {
                tracing::warn!("tls reload rejected, the running certificates stay: {e}");
                Err(RpcError {
                    code: RELOAD_FAILED,
                    message: "TLS Reload Failed".into(),
                    data: Some(json!({ "error": e.to_string() })),
                })
            }
        }
    }

    fn reload(&self, method: &str, params: &[Value]) -> Result<Value, RpcError> {
        match params {
            [] => {}
            // Kamailio's optional script index: there is one script, index 0.
            [Value::Number(n)] if n.as_u64() == Some(0) => {}
            [other] => {
                return Err(RpcError::params(format!(
                    "{method}: script index {other} out of range (one script loaded, index 0)"
                )))
            }
            _ => {
                return Err(RpcError::params(format!(
                    "{method} takes at most one parameter"
                )))
            }
        }
        match self.versions.reload() {
            Ok(r) => {
                self.metrics.reload(true);
                tracing::info!(old = r.old, new = r.new, "script reload accepted");
                Ok(json!(r))
            }
            Err(e) => {
                self.metrics.reload(false);
                tracing::warn!("script reload rejected, the running script stays: {e}");
                Err(RpcError {
                    code: RELOAD_FAILED,
                    message: "Reload Failed".into(),
                    data: Some(json!({
                        "file": e.file.display().to_string(),
                        "line": e.line,
                        "cause": e.cause,
                        "error": e.to_string(),
                    })),
                })
            }
        }
    }

    /// `core.info`: what this server is (Kamailio's `version`, plus the node identity that
    /// tells the nodes of a cluster apart).
    fn info(&self, kind: EngineKind) -> Value {
        json!({
            "version": format!("sipd {}", crate::VERSION),
            "node": self.metrics.node(),
            "pid": std::process::id(),
            "engine": kind.to_string(),
            "workers": self.metrics.workers().len(),
            "uptime": self.metrics.uptime().as_secs(),
        })
    }

    fn uptime(&self) -> Value {
        let since = self
            .metrics
            .started_at()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        json!({"now": now, "up_since": since, "uptime": self.metrics.uptime().as_secs()})
    }

    fn ps(&self) -> Value {
        let pid = std::process::id();
        let published = self.versions.generation();
        let workers: Vec<Value> = self
            .metrics
            .workers()
            .iter()
            .map(|w| {
                json!({
                    "IDX": w.index,
                    "PID": pid,
                    "DSC": format!("sipd-worker-{}", w.index),
                    "generation": w.generation(),
                    "current": w.generation() == published,
                    "received": w.received(),
                })
            })
            .collect();
        json!(workers)
    }

    fn statistics(&self, params: &[Value]) -> Result<Value, RpcError> {
        let mut filters = Vec::with_capacity(params.len());
        for p in params {
            match p.as_str() {
                Some(s) => filters.push(s.to_string()),
                None => {
                    return Err(RpcError::params(format!(
                        "stats.get_statistics: expected names such as all or core:, got {p}"
                    )))
                }
            }
        }
        if filters.is_empty() {
            filters.push("all".into());
        }
        stats::lines(&self.metrics, &filters)
            .map(|l| json!(l))
            .map_err(|e| RpcError::params(e.to_string()))
    }

    fn kemi_stats(&self) -> Value {
        let totals = self.metrics.totals();
        let exports: Vec<Value> = self
            .metrics
            .export_calls(&totals)
            .into_iter()
            .map(|(module, name, calls)| json!({"module": module, "name": name, "calls": calls}))
            .collect();
        let workers: Vec<Value> = self
            .metrics
            .workers()
            .iter()
            .map(|w| json!({"IDX": w.index, "calls": w.calls.iter().map(|(_, n)| n).sum::<u64>()}))
            .collect();
        json!({
            "total": totals.calls.iter().sum::<u64>(),
            "exports": exports,
            "workers": workers,
        })
    }
}

fn not_found(method: &str) -> RpcError {
    RpcError::new(METHOD_NOT_FOUND, format!("method not found: {method}"))
}
