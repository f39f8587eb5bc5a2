//! Script engines behind one language-neutral interface.
//!
//! An [`Engine`] owns one interpreter loaded with one routing script. The host creates one engine
//! per worker thread (engines are not `Send`), hands it each message with [`Engine::run`], and
//! reloads it with [`Engine::reload`]. Engines reach the exports only through the shared
//! [`ExportTable`], by slot index.
//!
//! Adding a language means one new sub-module implementing [`Engine`], one [`EngineKind`]
//! variant, and one arm in [`load_with`]. Nothing else here knows about Lua.
//!
//! What lives elsewhere: error types are in [`error`]; the Lua engine is in [`lua`]; the
//! JavaScript engine (feature `js`) is in `js`; the Python engine (feature `python`) is in
//! `python`. What the engines share, language-neutral and crate-internal: `lease` (the message
//! lent to `KSR` calls during a run, and its soundness argument), `ctx` (the per-interpreter
//! state of the Lua and JavaScript `KSR` functions), `modf` (`KSR.x.modf`'s lookup, argument
//! parsing and result code) and `script` (script text, core callbacks, per-run script flags).

use std::path::Path;
use std::sync::Arc;

use crate::{ExportTable, SipMsg};
use limits::ScriptLimits;

/// `tracing::error!` under the log target of an engine kind (`"lua"`, `"jsdt"`, `"python"`):
/// a target must be a constant, so shared code picks it with a match.
macro_rules! engine_error {
    ($kind:expr, $($arg:tt)+) => {
        match $kind {
            $crate::engine::EngineKind::Lua => ::tracing::error!(target: "lua", $($arg)+),
            $crate::engine::EngineKind::Jsdt => ::tracing::error!(target: "jsdt", $($arg)+),
            $crate::engine::EngineKind::Python => ::tracing::error!(target: "python", $($arg)+),
        }
    };
}
use engine_error;

mod ctx;
pub mod error;
#[cfg(feature = "js")]
pub mod js;
mod lease;
pub mod limits;
pub mod lua;
mod modf;
#[cfg(feature = "python")]
pub mod python;
mod script;

pub use error::{LoadError, ScriptError};
pub use script::Companion;

/// Name of the callback run for every SIP request (Kamailio `kemi.request_route_callback`).
/// A script without it fails to load.
pub const REQUEST_ROUTE: &str = "ksr_request_route";
/// Name of the callback run for every SIP reply (`kemi.reply_route_callback`); optional.
pub const REPLY_ROUTE: &str = "ksr_reply_route";
/// Name of the callback run for every request sent out (`kemi.onsend_route_callback`); optional.
pub const ONSEND_ROUTE: &str = "ksr_onsend_route";

/// Most parameters a `KSR` export takes (Kamailio's `SR_KEMI_PARAMS_MAX`).
pub(crate) const MAX_PARAMS: usize = 6;

/// The marker error value that `KSR.x.exit()` raises; runners treat it as a normal end.
pub const EXIT_MARKER: &str = "~~ksr~exit~~";

/// The scripting languages sipd can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// LuaJIT, Lua 5.1 semantics (Kamailio's `app_lua`).
    Lua,
    /// JavaScript (Kamailio's `app_jsdt`; QuickJS here), scripts ending in `.js`.
    Jsdt,
    /// CPython 3 (Kamailio's `app_python3` and `app_python3s`), scripts ending in `.py`.
    Python,
}

impl EngineKind {
    /// Every kind, for listings.
    pub const ALL: [EngineKind; 3] = [EngineKind::Lua, EngineKind::Jsdt, EngineKind::Python];

    /// The engine name as in Kamailio's `cfgengine` (`"lua"`).
    pub const fn name(self) -> &'static str {
        match self {
            EngineKind::Lua => "lua",
            EngineKind::Jsdt => "jsdt",
            EngineKind::Python => "python",
        }
    }

    /// The kind for a `cfgengine` name, ignoring case.
    pub fn from_name(name: &str) -> Option<EngineKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// The kind for a script file extension (`"lua"` or `".lua"`), ignoring case.
    pub fn from_extension(ext: &str) -> Option<EngineKind> {
        let ext = ext.strip_prefix('.').unwrap_or(ext);
        if ext.eq_ignore_ascii_case("lua") {
            Some(EngineKind::Lua)
        } else if ext.eq_ignore_ascii_case("js") {
            Some(EngineKind::Jsdt)
        } else if ext.eq_ignore_ascii_case("py") {
            Some(EngineKind::Python)
        } else {
            None
        }
    }

    /// The kind for a script path, from its extension.
    pub fn from_path(path: &Path) -> Option<EngineKind> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Self::from_extension)
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How one callback run ended. The callback's own return value is ignored, as in Kamailio:
/// routing decisions come only from what the script did to the [`SipMsg`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The callback returned normally.
    Returned,
    /// The callback ended with `KSR.x.exit()` or `KSR.x.drop()` (at any call depth).
    Exited,
    /// The script defines no such callback. Fine for the reply, onsend and tm callbacks.
    Missing,
}

/// One interpreter with one routing script loaded, used by one worker thread.
pub trait Engine: std::fmt::Debug {
    /// Which language this engine runs.
    fn kind(&self) -> EngineKind;

    /// Run the global function `callback` for `msg`.
    ///
    /// Script flags are reset to 0 for the run and restored afterwards. `arg` is passed as the
    /// only argument when given (event callbacks receive their event name). A script error is
    /// contained: it is returned, and the engine stays usable for the next message.
    fn run(
        &mut self,
        callback: &str,
        msg: &mut SipMsg,
        arg: Option<&str>,
    ) -> Result<RunOutcome, ScriptError>;

    /// True when the script defines `name` as a function.
    fn has_callback(&self, name: &str) -> bool;

    /// Re-execute the script file into the existing interpreter (Kamailio's reload): old globals
    /// stay, redefined functions replace the old ones. On error the previous callbacks stay in
    /// effect.
    fn reload(&mut self) -> Result<(), LoadError>;

    /// The companion files the script loaded so far (Lua modules it `require`d), with the text
    /// each ran; empty for engines that load none.
    fn companions(&self) -> Vec<Companion> {
        Vec::new()
    }
}

/// Create an engine of `kind` and load the script at `path` into it, with `KSR` bound to the
/// exports of `table`, and no limits (Kamailio's behaviour): [`load_with`] with no source text
/// and [`ScriptLimits::default`].
///
/// ```no_run
/// # use std::sync::Arc;
/// # use kemi_runtime::engine::{self, EngineKind};
/// # fn f(table: Arc<kemi_runtime::ExportTable>) -> Result<(), engine::LoadError> {
/// let mut engine = engine::load(EngineKind::Lua, "route.lua".as_ref(), table)?;
/// assert!(engine.has_callback(engine::REQUEST_ROUTE));
/// # Ok(()) }
/// ```
pub fn load(
    kind: EngineKind,
    path: &Path,
    table: Arc<ExportTable>,
) -> Result<Box<dyn Engine>, LoadError> {
    load_with(kind, path, None, table, ScriptLimits::default())
}

/// Create an engine of `kind` with `limits`, and load a script into it with `KSR` bound to the
/// exports of `table`. The script text is `source` when given (`path` then only names it in
/// messages, and is what [`Engine::reload`] reads), else the file at `path`; so a host that
/// validated a text in a staging interpreter runs exactly that text.
///
/// What each engine makes of `limits` is in [`limits`]: Lua and JavaScript enforce both, Python
/// accepts and ignores them.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use kemi_runtime::engine::{self, limits::ScriptLimits, EngineKind};
/// # fn f(table: Arc<kemi_runtime::ExportTable>) -> Result<(), engine::LoadError> {
/// let limits = ScriptLimits { instructions: Some(1_000_000), memory: Some(32 << 20) };
/// let text = b"function ksr_request_route() { KSR.x.exit(); }";
/// let engine = engine::load_with(EngineKind::Jsdt, "route.js".as_ref(), Some(text), table, limits)?;
/// # Ok(()) }
/// ```
pub fn load_with(
    kind: EngineKind,
    path: &Path,
    source: Option<&[u8]>,
    table: Arc<ExportTable>,
    limits: ScriptLimits,
) -> Result<Box<dyn Engine>, LoadError> {
    load_with_options(
        kind,
        path,
        source,
        &[],
        table,
        limits,
        lua::LuaOptions::default(),
    )
}

/// Like [`load_with`], with the Lua engine's `lua` options, and the `companions` a staging
/// interpreter loaded for this text (a Lua `require` of one of them runs its recorded text, not
/// the file as it is now); both are ignored by the other engines.
pub fn load_with_options(
    kind: EngineKind,
    path: &Path,
    source: Option<&[u8]>,
    companions: &[Companion],
    table: Arc<ExportTable>,
    limits: ScriptLimits,
    lua: lua::LuaOptions,
) -> Result<Box<dyn Engine>, LoadError> {
    match kind {
        EngineKind::Lua => Ok(Box::new(lua::LuaEngine::load_with_options(
            path, source, companions, table, limits, lua,
        )?)),
        #[cfg(feature = "js")]
        EngineKind::Jsdt => Ok(Box::new(js::JsEngine::load_with(
            path, source, table, limits,
        )?)),
        #[cfg(not(feature = "js"))]
        EngineKind::Jsdt => Err(LoadError::new(
            path,
            "this build has no JavaScript engine (cargo feature `js` of kemi-runtime)",
        )),
        #[cfg(feature = "python")]
        EngineKind::Python => Ok(Box::new(python::PythonEngine::load_with(
            path,
            source,
            table,
            python::PythonOptions::default(),
            limits,
        )?)),
        #[cfg(not(feature = "python"))]
        EngineKind::Python => Err(LoadError::new(
            path,
            "this build has no Python engine (cargo feature `python` of kemi-runtime)",
        )),
    }
}
