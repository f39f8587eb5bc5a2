//! Startup of the stateful modules: each reads its modparams, opens its store (the server's
//! `[db] url`, or its own `db_url` modparam), loads what it keeps there, and registers its
//! shared state in the server's [`Services`].
//!
//! The host calls [`setup`] once per server, before the workers start, and hands the result to
//! every message through `RouteEnv::services`. A module that is not enabled is not set up, and
//! no store is opened unless a module needs one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kemi_runtime::services::Services;

use crate::modparam::{ModParams, ModparamError};
use crate::store::{self, StoreError, Writer};

/// Why the modules could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A bad module parameter.
    #[error(transparent)]
    Modparam(#[from] ModparamError),
    /// The store could not be opened or read.
    #[error("{module}: {source}")]
    Store {
        /// The module that needed it.
        module: String,
        /// Why.
        source: StoreError,
    },
    /// A thread could not start.
    #[error("{module}: {source}")]
    Io {
        /// The module.
        module: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What the host gives the modules at startup.
pub struct SetupInput<'a> {
    /// `[modparam.<module>]` tables.
    pub params: &'a BTreeMap<String, ModParams>,
    /// Whether a KSR module is enabled (`modules = [...]`).
    pub enabled: &'a dyn Fn(&str) -> bool,
    /// The server's store (`[db] url`).
    pub db_url: &'a str,
    /// Where relative store paths resolve (the configuration's directory).
    pub base_dir: &'a Path,
}

/// The writers of every store opened at setup; the host flushes them at shutdown.
#[derive(Debug, Default)]
pub struct StoreWriters(pub Vec<(String, Arc<Writer>)>);

impl StoreWriters {
    /// Wait for every queued write (at most `timeout` per store).
    pub fn flush(&self, timeout: Duration) {
        for (url, w) in &self.0 {
            if !w.flush(timeout) {
                tracing::error!(url, "store writes still queued at shutdown");
            }
        }
    }
}

/// One module's view of the setup.
pub struct SetupCtx<'a> {
    input: &'a SetupInput<'a>,
    writers: Vec<(String, Arc<Writer>)>,
    /// Where the module registers its shared state and periodic jobs.
    pub services: Services,
}

impl SetupCtx<'_> {
    /// The parameters of `module` (empty when none were given).
    pub fn params(&self, module: &str) -> ModParams {
        self.input
            .params
            .get(module)
            .cloned()
            .unwrap_or_else(|| ModParams::new(module))
    }

    /// The configuration's directory, where relative file names resolve.
    pub fn base_dir(&self) -> &Path {
        self.input.base_dir
    }

    /// Whether KSR module `module` is enabled.
    pub fn enabled(&self, module: &str) -> bool {
        (self.input.enabled)(module)
    }

    /// The store for a module with `params`: its `db_url` modparam, else the server's. The
    /// same URL gives the same writer.
    pub fn store(&mut self, params: &ModParams) -> Result<Arc<Writer>, SetupError> {
        let url = params
            .str("db_url")?
            .unwrap_or_else(|| self.input.db_url.to_string());
        if let Some((_, w)) = self.writers.iter().find(|(u, _)| *u == url) {
            return Ok(Arc::clone(w));
        }
        let module = params.module().to_string();
        let opened =
            store::open(&url, self.input.base_dir).map_err(|source| SetupError::Store {
                module: module.clone(),
                source,
            })?;
        let writer =
            Arc::new(Writer::start(opened).map_err(|source| SetupError::Io { module, source })?);
        self.writers.push((url, Arc::clone(&writer)));
        Ok(writer)
    }

    /// A store error of `module`, for `?`.
    pub fn store_error(module: &str) -> impl FnOnce(StoreError) -> SetupError + '_ {
        move |source| SetupError::Store {
            module: module.to_string(),
            source,
        }
    }
}

/// A module's setup function.
pub type SetupFn = fn(&mut SetupCtx<'_>) -> Result<(), SetupError>;

/// The stateful modules, in setup order, and the KSR module that enables each.
const STATEFUL: &[(&str, SetupFn)] = &[
    ("nathelper", crate::nathelper::config::setup),
    ("htable", crate::htable::setup),
    ("pike", crate::pike::setup),
    ("permissions", crate::permissions::setup),
    ("registrar", crate::registrar::setup),
    ("auth", crate::auth::setup),
    ("auth_db", crate::auth_db::setup),
    ("rr", crate::rr::config::setup),
    ("maxfwd", crate::maxfwd::setup),
    ("sanity", crate::sanity::setup),
    ("siptrace", crate::siptrace::setup),
    ("ndb_redis", crate::ndb_redis::setup),
    ("dispatcher", crate::dispatcher::setup),
    ("rtpengine", crate::rtpengine::setup),
    ("rtpproxy", crate::rtpproxy::setup),
    ("dialog", crate::dialog::setup),
];

/// Modules that take modparams but export nothing to scripts, and the KSR module they serve.
pub const PARAM_ONLY: &[(&str, &str)] = &[("usrloc", "registrar")];

/// Set up every enabled stateful module.
pub fn setup(input: &SetupInput<'_>) -> Result<Services, SetupError> {
    let mut ctx = SetupCtx {
        input,
        writers: Vec::new(),
        services: Services::new(),
    };
    for (module, f) in STATEFUL {
        if (input.enabled)(module) {
            f(&mut ctx)?;
        }
    }
    refuse_unread(input.params)?;
    let mut services = ctx.services;
    services.insert(Arc::new(StoreWriters(ctx.writers)));
    Ok(services)
}

/// Refuse the parameters of a module that reads none (no setup fn, not param-only): sipd
/// never accepts a modparam it would silently ignore.
fn refuse_unread(params: &BTreeMap<String, ModParams>) -> Result<(), SetupError> {
    let read = |m: &str| {
        STATEFUL.iter().any(|(name, _)| *name == m) || PARAM_ONLY.iter().any(|(name, _)| *name == m)
    };
    for (module, p) in params {
        if read(module) {
            continue;
        }
        if let Err(e) = p.check_known(&[]) {
            let message = format!("sipd implements no parameters of module `{module}`");
            return Err(p.error(&e.param, message).into());
        }
    }
    Ok(())
}

/// The default store URL for a server configured from `dir`: `sqlite://<dir>/sipd.db`.
pub fn default_db_url(dir: &Path) -> String {
    let path: PathBuf = dir.join("sipd.db");
    format!("sqlite://{}", path.display())
}
