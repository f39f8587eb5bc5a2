//! The Lua engine (Kamailio's `app_lua`): LuaJIT (Lua 5.1 semantics and ABI, as Kamailio's
//! `app_lua` on Lua 5.1), one interpreter per [`LuaEngine`].
//!
//! - [`ksr`]: the `KSR` table and the C functions behind it.
//! - [`convert`]: argument and result conversions.
//! - [`ctx`]: state shared by the `KSR` functions, and the message lent during a run.
//! - [`budget`]: the per-run instruction budget of [`ScriptLimits`] (a count hook, armed by a
//!   CPU-time watchdog only in runs that last when the budget is large).
//!
//! Differences from `app_lua`, on purpose:
//! - `os.exit` raises an error ("os.exit is disabled in sipd; use KSR.x.exit()") so a script can
//!   never stop the proxy.
//! - The `debug` and `ffi` libraries are not available, and only text chunks load. Lua C modules
//!   load from Debian's 5.1 paths unless [`LuaOptions::c_modules`] is off; then the interpreter
//!   is mlua's safe one, so a script cannot break memory safety.
//! - While an instruction budget is set, LuaJIT runs interpreter-only (compiled traces would
//!   not run the count hook) and `jit.on`, `jit.flush`, `jit.attach` raise an error; without a
//!   budget the JIT compiles as usual.
//! - The script's own folder comes first on `package.path` (`<dir>/?.lua;<dir>/?/init.lua;`
//!   before the default), so `require("helper")` finds a pure-Lua `helper.lua` beside the script
//!   ([`companion_path`]). sipd's searcher ([`companions`]) loads them as text only and records
//!   each with the text that ran ([`Engine::companions`]); an interpreter built with that record
//!   runs the recorded texts, so a reload's workers run what its staging interpreter validated.
//!   A companion that fails to load is reported with its own file and line.
//! - [`LuaEngine::load_with`] can bound each run's instructions and the interpreter's memory
//!   ([`ScriptLimits`]); a run over either fails with a [`ScriptError`] that
//!   [`LimitKind::of`](super::limits::LimitKind::of) recognizes, and the next run starts afresh.

mod budget;
mod companions;
mod convert;
mod ctx;
mod ksr;

pub use budget::{EXACT_MAX, MAX_STEP, SLICE};

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use mlua::{ChunkMode, Function, Lua, StdLib, Value};

use super::error::{source_matches, split_position, Position};
use super::limits::{ScriptLimits, MEMORY_LIMIT};
use super::script::{script_text, with_fresh_sflags, Callbacks};
use super::{Companion, Engine, EngineKind, LoadError, RunOutcome, ScriptError, EXIT_MARKER};
use crate::{ExportTable, SipMsg};
use ctx::Ctx;

/// Replaces `os.exit` so that a script cannot end the process, and adds the Lua 5.1 globals
/// LuaJIT lacks that Debian's Lua 5.1 (Kamailio's `app_lua`) has: `string.gfind` (5.0's name of
/// `string.gmatch`), `math.mod` (`math.fmod`, `LUA_COMPAT_MOD`), and `table.setn`, which there
/// raises "'setn' is obsolete" (tests/kamailio/lua51.py compares them side by side).
const PRELUDE: &str = r#"
os.exit = function()
    error("os.exit is disabled in sipd; use KSR.x.exit()", 2)
end
string.gfind = string.gfind or string.gmatch
math.mod = math.mod or math.fmod
table.setn = table.setn or function(t)
    if type(t) ~= "table" then
        error("bad argument #1 to 'setn' (table expected, got " .. type(t) .. ")", 2)
    end
    error("'setn' is obsolete", 0)
end
"#;

/// Run while an instruction budget is set: LuaJIT's compiled traces do not run count hooks, so
/// the interpreter alone runs the script (`jit.off()`), and the script cannot compile again.
/// `jit.off`, `jit.status` and the `jit.version`/`os`/`arch` fields stay for feature tests.
const JIT_OFF: &str = r#"
jit.off()
jit.flush()
local function disabled(name)
    return function()
        error("jit." .. name .. " is disabled in sipd while [limits] max_instructions is set", 2)
    end
end
jit.on = disabled("on")
jit.flush = disabled("flush")
jit.attach = disabled("attach")
jit.opt = nil
jit.util = nil
jit.profile = nil
package.loaded["jit.opt"] = nil
package.loaded["jit.util"] = nil
package.loaded["jit.profile"] = nil
package.preload["jit.util"] = nil
package.preload["jit.profile"] = nil
"#;

/// Run when C modules are off (`[lua] c_modules = false`): `require` of a C module and
/// `package.loadlib` fail with a message that says why.
const NO_C_MODULES: &str = r#"
local why = "C modules are disabled in sipd ([lua] c_modules = false)"
package.loaders[3] = function() return "\n\t" .. why end
package.loaders[4] = nil
package.loadlib = function() return nil, why, "absent" end
"#;

/// Options of the Lua engine besides its [`ScriptLimits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LuaOptions {
    /// Whether `require` loads Lua C modules (`.so`) from `package.cpath` (Debian's 5.1
    /// directories), as Kamailio's `app_lua` does. On by default; off, the interpreter is
    /// mlua's safe one and such a `require` fails with a message naming the setting.
    pub c_modules: bool,
}

impl Default for LuaOptions {
    fn default() -> Self {
        LuaOptions { c_modules: true }
    }
}

/// A Lua interpreter with one routing script loaded. Create one per worker thread.
///
/// `ksr_request_route`, `ksr_reply_route` and `ksr_onsend_route` are looked up when the script
/// is (re)loaded, so a run does no global lookup; a script that assigns one of them later, from
/// inside a callback, is not seen until the next reload. Any other callback name (tm and event
/// callbacks) is looked up as a global on each run, as Kamailio does.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use kemi_runtime::engine::{Engine, lua::LuaEngine, REQUEST_ROUTE};
/// # fn f(table: Arc<kemi_runtime::ExportTable>, msg: &mut kemi_runtime::SipMsg) {
/// let mut engine = LuaEngine::load("route.lua".as_ref(), table).unwrap();
/// match engine.run(REQUEST_ROUTE, msg, None) {
///     Ok(outcome) => println!("{outcome:?}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
pub struct LuaEngine {
    // Field order matters: the callbacks go first, then the interpreter (closing it runs the
    // remaining finalizers, which may still call `KSR` functions), and only then `ctx`, which
    // those functions point to.
    callbacks: Callbacks<Function>,
    lua: Lua,
    /// What the `KSR` closures point to (with `ctx`).
    _ksr: ksr::Entries,
    ctx: Rc<Ctx>,
    path: PathBuf,
    limits: ScriptLimits,
    companions: companions::Loaded,
    /// The instruction budget's hook or watchdog, when `limits.instructions` is set.
    budget: Option<budget::Budget>,
}

impl std::fmt::Debug for LuaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaEngine")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LuaEngine {
    /// Create an interpreter, bind `KSR` to `table` and run the script at `path`.
    ///
    /// Fails with the file, line and cause for syntax errors and errors at top level, and when
    /// the script defines no `ksr_request_route`.
    pub fn load(path: &Path, table: Arc<ExportTable>) -> Result<Self, LoadError> {
        Self::load_with(path, None, table, ScriptLimits::default())
    }

    /// Like [`LuaEngine::load`], with `limits` enforced from the script's top level on, and the
    /// script text taken from `source` when given (`path` then only names it in messages and
    /// [`Engine::reload`]), so that what a staging interpreter validated is what runs.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use kemi_runtime::engine::{lua::LuaEngine, limits::ScriptLimits};
    /// # fn f(table: Arc<kemi_runtime::ExportTable>) {
    /// let limits = ScriptLimits { instructions: Some(1_000_000), memory: Some(32 << 20) };
    /// let engine = LuaEngine::load_with("route.lua".as_ref(), None, table, limits);
    /// # }
    /// ```
    pub fn load_with(
        path: &Path,
        source: Option<&[u8]>,
        table: Arc<ExportTable>,
        limits: ScriptLimits,
    ) -> Result<Self, LoadError> {
        Self::load_with_options(path, source, &[], table, limits, LuaOptions::default())
    }

    /// Like [`LuaEngine::load_with`], with `options`, and the `companions` to run (by module
    /// name) instead of reading their files (see [`Engine::companions`]).
    pub fn load_with_options(
        path: &Path,
        source: Option<&[u8]>,
        companions: &[Companion],
        table: Arc<ExportTable>,
        limits: ScriptLimits,
        options: LuaOptions,
    ) -> Result<Self, LoadError> {
        let lua = if options.c_modules {
            // SAFETY: a C module runs native code in the process, beyond what mlua can check;
            // the operator allows it (`[lua] c_modules`, on by default as in Kamailio). The
            // `debug` and `ffi` libraries stay closed (`ALL_SAFE`).
            unsafe { Lua::unsafe_new_with(StdLib::ALL_SAFE, mlua::LuaOptions::default()) }
        } else {
            Lua::new()
        };
        let ctx = Rc::new(Ctx::new(EngineKind::Lua, table));
        let mut ksr_entries = ksr::Entries::default();
        let setup = lua
            .load(PRELUDE)
            .set_name("=sipd")
            .exec()
            .and_then(|()| match options.c_modules {
                false => lua.load(NO_C_MODULES).set_name("=sipd").exec(),
                true => Ok(()),
            })
            .and_then(|()| match limits.instructions {
                Some(_) => lua.load(JIT_OFF).set_name("=sipd").exec(),
                None => Ok(()),
            })
            .and_then(|()| ksr::install(&lua, &ctx))
            .map(|entries| ksr_entries = entries)
            .and_then(|()| set_package_path(&lua, path))
            .and_then(|()| companions::install(&lua, companions));
        let companions = match setup {
            Ok(loaded) => loaded,
            Err(e) => {
                return Err(LoadError::new(
                    path,
                    format!("cannot set up the Lua interpreter: {e}"),
                ))
            }
        };
        let budget = match install_limits(&lua, &limits) {
            Ok(budget) => budget,
            Err(e) => {
                return Err(LoadError::new(
                    path,
                    format!("cannot set the script limits: {e}"),
                ))
            }
        };
        let mut engine = LuaEngine {
            callbacks: Callbacks::default(),
            lua,
            _ksr: ksr_entries,
            ctx,
            path: path.to_path_buf(),
            limits,
            companions,
            budget,
        };
        engine.exec_source(&script_text(path, source)?)?;
        engine.callbacks = engine.lookup_callbacks()?;
        Ok(engine)
    }

    /// The script file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `src` (the text of the script file) into the interpreter, within the load budget.
    fn exec_source(&self, src: &[u8]) -> Result<(), LoadError> {
        let _run = self
            .budget
            .as_ref()
            .zip(self.limits.load_instructions())
            .map(|(budget, n)| budget.start(n));
        self.lua
            .load(src)
            .set_name(format!("@{}", self.path.display()))
            .set_mode(ChunkMode::Text)
            .exec()
            .map_err(|e| load_error(&self.sources(&self.companions.borrow()), &e))
    }

    /// The files its messages can name.
    fn sources<'a>(&'a self, companions: &'a [Companion]) -> Sources<'a> {
        Sources {
            main: &self.path,
            companions,
        }
    }

    /// The core callbacks as the script now defines them.
    fn lookup_callbacks(&self) -> Result<Callbacks<Function>, LoadError> {
        Callbacks::lookup(&self.path, |name| self.global_function(name))
    }

    /// The global `name` when it is a function.
    fn global_function(&self, name: &str) -> Option<Function> {
        match self.lua.globals().raw_get::<Value>(name) {
            Ok(Value::Function(f)) => Some(f),
            _ => None,
        }
    }
}

impl Engine for LuaEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Lua
    }

    fn run(
        &mut self,
        callback: &str,
        msg: &mut SipMsg,
        arg: Option<&str>,
    ) -> Result<RunOutcome, ScriptError> {
        let looked_up;
        let func = match self.callbacks.cached(callback) {
            Some(cached) => cached,
            None => {
                looked_up = self.global_function(callback);
                looked_up.as_ref()
            }
        };
        let Some(func) = func else {
            return Ok(RunOutcome::Missing);
        };
        let result = with_fresh_sflags(msg, |msg| {
            let _run = self
                .budget
                .as_ref()
                .zip(self.limits.instructions)
                .map(|(budget, n)| budget.start(n));
            self.ctx.lent(msg, || match arg {
                Some(a) => func.call::<()>(a),
                None => func.call::<()>(()),
            })
        });
        match result {
            Ok(()) => Ok(RunOutcome::Returned),
            Err(e) => {
                let (text, traceback) = error_text(&e);
                let companions = self.companions.borrow();
                if text == EXIT_MARKER {
                    Ok(RunOutcome::Exited)
                } else if self.limits.memory.is_some() && is_memory_error(&e) {
                    // Free what the failed run left behind before the next message.
                    let _ = self.lua.gc_collect();
                    let mut err = script_error(text, traceback, &self.sources(&companions));
                    err.message = format!("{MEMORY_LIMIT}: {}", err.message);
                    Err(err)
                } else {
                    Err(script_error(text, traceback, &self.sources(&companions)))
                }
            }
        }
    }

    fn has_callback(&self, name: &str) -> bool {
        self.global_function(name).is_some()
    }

    fn reload(&mut self) -> Result<(), LoadError> {
        self.exec_source(&script_text(&self.path, None)?)?;
        self.callbacks = self.lookup_callbacks()?;
        Ok(())
    }

    fn companions(&self) -> Vec<Companion> {
        self.companions.borrow().clone()
    }
}

/// Set the memory ceiling and install the instruction budget of `limits` on `lua`.
fn install_limits(lua: &Lua, limits: &ScriptLimits) -> mlua::Result<Option<budget::Budget>> {
    let budget = match limits.instructions {
        Some(n) => Some(budget::install(lua, n)?),
        None => None,
    };
    if let Some(bytes) = limits.memory {
        lua.set_memory_limit(bytes)?;
    }
    Ok(budget)
}

/// True when `e` is (or wraps) an allocation failure.
fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_memory_error(cause),
        mlua::Error::WithContext { cause, .. } => is_memory_error(cause),
        mlua::Error::RuntimeError(s) => s.starts_with("not enough memory"),
        _ => false,
    }
}

/// The text of an mlua error and the traceback mlua appended to it.
fn error_text(e: &mlua::Error) -> (String, String) {
    let text = match e {
        mlua::Error::RuntimeError(s) | mlua::Error::MemoryError(s) => s.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { traceback, cause } => {
            return (cause.to_string(), traceback.clone());
        }
        other => other.to_string(),
    };
    match text.split_once("\nstack traceback:\n") {
        Some((m, tb)) => (m.to_string(), format!("stack traceback:\n{tb}")),
        None => (text, String::new()),
    }
}

/// A callback error, with the position from the message or else from the innermost Lua frame
/// of the traceback.
fn script_error(text: String, traceback: String, sources: &Sources<'_>) -> ScriptError {
    let traceback = sources.expand(&traceback);
    let (pos, rest) = split_position(&text);
    match pos {
        Some(p) => ScriptError {
            message: rest.to_string(),
            location: Some(sources.location(p)),
            traceback,
        },
        None => ScriptError {
            location: first_lua_frame(&traceback, sources),
            message: text,
            traceback,
        },
    }
}

/// The `package.path` entries that put the folder of `script` first: `<dir>/?.lua;<dir>/?/init.lua;`
/// (`.` for a script named without a folder). `None` when the folder's name holds `;` or `?`,
/// which `package.path` cannot carry.
pub fn companion_path(script: &Path) -> Option<Vec<u8>> {
    let dir = match script.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.as_os_str().as_encoded_bytes(),
        _ => b".",
    };
    if dir.iter().any(|b| matches!(b, b';' | b'?')) {
        return None;
    }
    let mut entries = Vec::with_capacity(2 * dir.len() + 20);
    for template in [&b"/?.lua;"[..], b"/?/init.lua;"] {
        entries.extend_from_slice(dir);
        entries.extend_from_slice(template);
    }
    Some(entries)
}

/// Put the folder of `script` first on `package.path` (see [`companion_path`]), before the path
/// the interpreter started with. Only the Lua searcher uses it: C modules stay refused.
fn set_package_path(lua: &Lua, script: &Path) -> mlua::Result<()> {
    let Some(mut path) = companion_path(script) else {
        tracing::warn!(
            target: "lua",
            "{}: the script's folder is not on package.path: its name holds ';' or '?'",
            script.display()
        );
        return Ok(());
    };
    let Value::Table(package) = lua.globals().raw_get::<Value>("package")? else {
        return Ok(());
    };
    if let Value::String(default) = package.raw_get::<Value>("path")? {
        path.extend_from_slice(&default.as_bytes());
    }
    package.raw_set("path", lua.create_string(&path)?)
}

/// The module name, file and message of the error Lua's searcher raises when a module file does
/// not compile: `error loading module 'NAME' from file 'FILE':\n\tMESSAGE` (the same text in Lua
/// 5.1 to 5.4 and LuaJIT).
fn module_load_failure(text: &str) -> Option<(&str, &str, &str)> {
    let rest = text.strip_prefix("error loading module '")?;
    let (name, rest) = rest.split_once("' from file '")?;
    let (file, message) = rest.split_once("':\n\t")?;
    Some((name, file, message))
}

/// The first frame of a traceback in the script's own code (`file:line`), skipping the C ones
/// and sipd's own chunks (named `sipd`, such as the `require` searcher).
fn first_lua_frame(traceback: &str, sources: &Sources<'_>) -> Option<String> {
    traceback
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("[C]"))
        .find_map(|l| {
            split_position(l)
                .0
                .filter(|p| p.source != "sipd")
                .map(|p| sources.location(p))
        })
}

/// The files a script's messages can name: the script and the companions it loaded. Lua
/// shortens a file name over 60 bytes to `...` and its tail; these give the full name back.
struct Sources<'a> {
    main: &'a Path,
    companions: &'a [Companion],
}

impl Sources<'_> {
    /// The file `source` (a name as Lua prints it) stands for, when it is one of these.
    fn file(&self, source: &str) -> Option<&Path> {
        if source_matches(source, &self.main.display().to_string()) {
            return Some(self.main);
        }
        self.companions
            .iter()
            .rev()
            .find(|c| source_matches(source, &c.path.display().to_string()))
            .map(|c| c.path.as_path())
    }

    /// `text` (a traceback) with each shortened name of these files written in full.
    fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 64);
        let mut rest = text;
        while let Some(at) = rest.find("...") {
            out.push_str(&rest[..at]);
            let shortened = &rest[at..];
            let end = shortened.find(':').unwrap_or(shortened.len());
            match self.file(&shortened[..end]) {
                Some(file) => {
                    out.push_str(&file.display().to_string());
                    rest = &shortened[end..];
                }
                None => {
                    out.push_str("...");
                    rest = &shortened[3..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// `file:line` for `p`, with the file's full name when it is known.
    fn location(&self, p: Position<'_>) -> String {
        match self.file(p.source) {
            Some(file) => format!("{}:{}", file.display(), p.line),
            None => format!("{}:{}", p.source, p.line),
        }
    }
}

/// A load error: with the line when the message points into `path` itself, and naming the
/// companion file (a module the script `require`d) with its line when the error is in one.
fn load_error(sources: &Sources<'_>, e: &mlua::Error) -> LoadError {
    let path = sources.main;
    let (text, traceback) = error_text(e);
    if text == EXIT_MARKER {
        return LoadError::new(path, "KSR.x.exit() called while loading the script");
    }
    if let Some((name, file, message)) = module_load_failure(&text) {
        let (pos, rest) = split_position(message);
        let required = match first_lua_frame(&traceback, sources) {
            Some(at) => format!(" (module '{name}', required at {at})"),
            None => format!(" (module '{name}')"),
        };
        return LoadError {
            file: PathBuf::from(file),
            line: pos.map(|p| p.line),
            cause: format!("{}{required}", if pos.is_some() { rest } else { message }),
        };
    }
    let (pos, rest) = split_position(&text);
    // An error in the script, or raised at the top level of a companion or in a function it
    // defines.
    match pos.and_then(|p| Some((sources.file(p.source)?, p.line))) {
        Some((file, line)) => LoadError {
            file: file.to_path_buf(),
            line: Some(line),
            cause: rest.to_string(),
        },
        None => LoadError::new(path, text),
    }
}
