//! The Python engine (Kamailio's `app_python3` and `app_python3s`): embedded CPython 3 through
//! pyo3, one script module per [`PythonEngine`].
//!
//! - [`ksr`]: the `KSR` module (`import KSR`) and its callables, bound by slot index.
//! - [`convert`]: strict argument and result conversions (`kemi-reference.md` §2.2, §3.3).
//! - [`current`]: the message lent to `KSR` calls of the running thread; the faked message.
//! - [`msgobj`]: the `msg` object that class-style callbacks receive.
//! - [`errors`]: exceptions as load and script errors with file and line.
//!
//! # Two script styles
//!
//! - **Class** (`app_python3`): the module defines `mod_init()`, which returns the handler
//!   object. Callbacks are its methods: `ksr_request_route(self, msg)`, `ksr_reply_route(self,
//!   msg)`, `ksr_onsend_route(self, msg)`, tm callbacks `(self, msg)` and event callbacks
//!   `(self, msg, evname)`. `handler.child_init(rank)` runs once after `mod_init()` when defined.
//!   A missing tm or event callback is logged as an error (§7.2).
//! - **Plain** (`app_python3s`): callbacks are module-level functions: `ksr_request_route()`,
//!   event callbacks `(evname)`. A missing callback is silently skipped.
//!
//! [`PythonStyle::Auto`] (the default) picks Class when the module defines `mod_init`, else
//! Plain; the host may force one.
//!
//! # Kamailio behaviour kept, and decisions
//!
//! - `KSR.x` holds only `modf`: there is no `KSR.x.exit` or `KSR.x.drop`. A script stops with
//!   `return`, drops with `KSR.set_drop()` then `return`.
//! - `sys.exit()` / `exit()` raise `SystemExit`. `app_python3` catches it, logs it as an
//!   exception and reports success to the core: the callback stops and what the script did so
//!   far stands. sipd keeps that effect and reports it as [`RunOutcome::Exited`] (a normal end,
//!   logged at debug level only), so a script that ends with `sys.exit()` is not answered with a
//!   500 by the host. `SystemExit` while loading is a load error. The process never exits.
//! - `KSR` calls work while the script loads (top level, `mod_init`, `child_init`): a faked
//!   OPTIONS request is current then, as in Kamailio; what they do to it is thrown away.
//! - [`Engine::reload`] re-executes the file into the existing module (old globals stay) and, in
//!   class style, calls `mod_init()` and `child_init(rank)` again. On error the previous
//!   callbacks stay in effect.
//! - [`ScriptLimits`] are accepted ([`PythonEngine::load_with`]) and ignored: CPython has no
//!   per-interpreter memory ceiling, and a trace-function budget would be visible to (and
//!   removable by) the script. See `docs/DECISIONS.md`.
//!
//! # Threads and the GIL
//!
//! All Python engines of the process share one interpreter and its GIL. An engine holds the GIL
//! only inside [`PythonEngine::load`], [`Engine::run`], [`Engine::has_callback`] and
//! [`Engine::reload`] (one `Python::with_gil` each, never across an await), so Lua and JS
//! workers never wait for it and Python workers cannot deadlock each other; Python workers do
//! run one at a time. `import KSR` in the script gets its engine's `KSR`: it is put in
//! `sys.modules` right before the script runs. The script module itself is not put in
//! `sys.modules`, so two engines may load the same file independently.

mod convert;
mod current;
mod errors;
mod ksr;
mod msgobj;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pyo3::exceptions::PySystemExit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use super::limits::ScriptLimits;
use super::script::{with_fresh_sflags, Callbacks};
use super::{Engine, EngineKind, LoadError, RunOutcome, ScriptError};
use crate::{ExportTable, SipMsg};
use msgobj::MsgObject;

/// Module-level function that makes the class-style handler object.
pub const MOD_INIT: &str = "mod_init";
/// Handler method run once after `mod_init()` with the worker's rank.
pub const CHILD_INIT: &str = "child_init";

/// Which Kamailio Python module's script shape to expect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PythonStyle {
    /// Class style when the script defines `mod_init`, else plain style.
    #[default]
    Auto,
    /// `app_python3`: `mod_init()` returns an object whose methods are the callbacks.
    Class,
    /// `app_python3s`: the callbacks are module-level functions.
    Plain,
}

/// How to load a Python script.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PythonOptions {
    /// The script style.
    pub style: PythonStyle,
    /// The rank passed to `child_init(rank)` (Kamailio's process rank; SIP workers start at 1).
    pub rank: i32,
}

impl Default for PythonOptions {
    fn default() -> Self {
        PythonOptions {
            style: PythonStyle::Auto,
            rank: 1,
        }
    }
}

/// The style a loaded script has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Class,
    Plain,
}

/// The loaded script's entry points; replaced as a whole by a successful reload.
struct Script {
    style: Style,
    /// The handler object (class style) or the module (plain style): callbacks are its
    /// attributes.
    target: Py<PyAny>,
    callbacks: Callbacks<Py<PyAny>>,
}

/// A Python script loaded into the process's interpreter. Create one per worker thread.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use kemi_runtime::engine::{Engine, python::{PythonEngine, PythonOptions}, REQUEST_ROUTE};
/// # fn f(table: Arc<kemi_runtime::ExportTable>, msg: &mut kemi_runtime::SipMsg) {
/// let mut engine = PythonEngine::load("route.py".as_ref(), table, PythonOptions::default()).unwrap();
/// match engine.run(REQUEST_ROUTE, msg, None) {
///     Ok(outcome) => println!("{outcome:?}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
pub struct PythonEngine {
    path: PathBuf,
    options: PythonOptions,
    module: Py<PyModule>,
    ksr: Py<PyModule>,
    ksr_children: Vec<(String, Py<PyModule>)>,
    msg_obj: Py<MsgObject>,
    script: Script,
}

impl std::fmt::Debug for PythonEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonEngine")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("style", &self.script.style)
            .finish_non_exhaustive()
    }
}

impl PythonEngine {
    /// Build `KSR` for `table`, run the script at `path` as a new module, and find its
    /// callbacks (calling `mod_init()` and `child_init(rank)` in class style).
    ///
    /// Fails with the file, line and cause for syntax errors and exceptions while loading, and
    /// when there is no `ksr_request_route` (or, in class style, no handler object).
    pub fn load(
        path: &Path,
        table: Arc<ExportTable>,
        options: PythonOptions,
    ) -> Result<Self, LoadError> {
        Self::load_with(path, None, table, options, ScriptLimits::default())
    }

    /// Like [`PythonEngine::load`], with the script text taken from `source` when given (`path`
    /// then only names it in messages, `__file__` and [`Engine::reload`]).
    ///
    /// `limits` is accepted for the engine registry's sake and **ignored**: Python runs are not
    /// bounded (see the module docs).
    pub fn load_with(
        path: &Path,
        source: Option<&[u8]>,
        table: Arc<ExportTable>,
        options: PythonOptions,
        _limits: ScriptLimits,
    ) -> Result<Self, LoadError> {
        Python::with_gil(|py| {
            let setup = |e: PyErr| {
                LoadError::new(
                    path,
                    format!(
                        "cannot set up the Python interpreter: {}",
                        errors::describe(py, &e)
                    ),
                )
            };
            let ksr::KsrModules {
                root: ksr,
                children,
            } = ksr::build(py, &table).map_err(setup)?;
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("script");
            let module = PyModule::new(py, stem).map_err(setup)?;
            module
                .setattr("__file__", path.display().to_string())
                .map_err(setup)?;
            let msg_obj = Py::new(py, MsgObject).map_err(setup)?;
            let ksr_children: Vec<(String, Py<PyModule>)> = children
                .into_iter()
                .map(|(name, m)| (name, m.unbind()))
                .collect();
            let script = load_script(py, path, source, options, &module, &ksr, &ksr_children)?;
            Ok(PythonEngine {
                path: path.to_path_buf(),
                options,
                module: module.unbind(),
                ksr: ksr.unbind(),
                ksr_children,
                msg_obj,
                script,
            })
        })
    }

    /// The script file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The style the script was loaded in: never [`PythonStyle::Auto`].
    pub fn style(&self) -> PythonStyle {
        match self.script.style {
            Style::Class => PythonStyle::Class,
            Style::Plain => PythonStyle::Plain,
        }
    }

    /// The callable attribute `name` of the handler (class) or module (plain).
    fn lookup<'py>(&self, py: Python<'py>, name: &str) -> Option<Bound<'py, PyAny>> {
        callable_attr(self.script.target.bind(py), name)
    }
}

/// The callable attribute `name` of `obj`, if any.
fn callable_attr<'py>(obj: &Bound<'py, PyAny>, name: &str) -> Option<Bound<'py, PyAny>> {
    obj.getattr(name).ok().filter(|a| a.is_callable())
}

/// Run `source` (else the file at `path`) into `module` with `KSR` importable and a faked
/// message current, then find the entry points.
fn load_script(
    py: Python<'_>,
    path: &Path,
    source: Option<&[u8]>,
    options: PythonOptions,
    module: &Bound<'_, PyModule>,
    ksr: &Bound<'_, PyModule>,
    ksr_children: &[(String, Py<PyModule>)],
) -> Result<Script, LoadError> {
    let src = match source {
        Some(text) => std::str::from_utf8(text)
            .map(str::to_owned)
            .map_err(|e| LoadError::new(path, format!("cannot read the script: {e}")))?,
        None => std::fs::read_to_string(path)
            .map_err(|e| LoadError::new(path, format!("cannot read the script: {e}")))?,
    };
    let mut faked = current::faked_msg()
        .map_err(|e| LoadError::new(path, format!("cannot build the faked message: {e}")))?;
    current::lent(&mut faked, || {
        exec_script(py, path, src, options, module, ksr, ksr_children)
    })
}

/// [`load_script`] once the text is read and the faked message lent.
fn exec_script(
    py: Python<'_>,
    path: &Path,
    src: String,
    options: PythonOptions,
    module: &Bound<'_, PyModule>,
    ksr: &Bound<'_, PyModule>,
    ksr_children: &[(String, Py<PyModule>)],
) -> Result<Script, LoadError> {
    let file = path.display().to_string();
    let at_load = |e: PyErr| {
        if e.is_instance_of::<PySystemExit>(py) {
            LoadError::new(path, "sys.exit() called while loading the script")
        } else {
            errors::load_error(py, path, &e)
        }
    };
    prepare_imports(py, path, ksr, ksr_children).map_err(|e| {
        LoadError::new(
            path,
            format!("cannot register KSR: {}", errors::describe(py, &e)),
        )
    })?;
    let builtins = py.import("builtins").map_err(at_load)?;
    let code = builtins
        .getattr("compile")
        .and_then(|c| c.call1((src, file.as_str(), "exec")))
        .map_err(at_load)?;
    builtins
        .getattr("exec")
        .and_then(|x| x.call1((code, module.dict())))
        .map_err(at_load)?;

    let mod_init = module
        .dict()
        .get_item(MOD_INIT)
        .ok()
        .flatten()
        .filter(|f| f.is_callable());
    let style = match (options.style, &mod_init) {
        (PythonStyle::Class, _) | (PythonStyle::Auto, Some(_)) => Style::Class,
        (PythonStyle::Plain, _) | (PythonStyle::Auto, None) => Style::Plain,
    };
    let target: Bound<'_, PyAny> = match style {
        Style::Plain => module.clone().into_any(),
        Style::Class => {
            let Some(mod_init) = mod_init else {
                return Err(LoadError::new(
                    path,
                    format!("function {MOD_INIT} is not defined (class-style script)"),
                ));
            };
            let handler = mod_init.call0().map_err(at_load)?;
            if handler.is_none() {
                return Err(LoadError::new(
                    path,
                    format!("{MOD_INIT}() returned None; it must return the handler object"),
                ));
            }
            if let Some(child_init) = callable_attr(&handler, CHILD_INIT) {
                child_init.call1((options.rank,)).map_err(at_load)?;
            }
            handler
        }
    };
    // A missing request callback fails with the same text in both styles, as the other engines
    // give it: in class style the function is a method of the object `mod_init()` returned.
    let callbacks =
        Callbacks::lookup(path, |name| callable_attr(&target, name).map(Bound::unbind))?;
    Ok(Script {
        style,
        callbacks,
        target: target.unbind(),
    })
}

/// Put this engine's `KSR` (and `KSR.<mod>`) in `sys.modules` and the script's directory on
/// `sys.path`, as `app_python3` does, so the script can import its siblings.
fn prepare_imports(
    py: Python<'_>,
    path: &Path,
    ksr: &Bound<'_, PyModule>,
    ksr_children: &[(String, Py<PyModule>)],
) -> PyResult<()> {
    let sys = py.import("sys")?;
    let modules = sys.getattr("modules")?.downcast_into::<PyDict>()?;
    modules.set_item("KSR", ksr)?;
    for (name, m) in ksr_children {
        modules.set_item(name, m.bind(py))?;
    }
    if let Some(dir) = path.parent().and_then(|d| d.to_str()) {
        let dir = if dir.is_empty() { "." } else { dir };
        let sys_path = sys.getattr("path")?;
        if !sys_path.contains(dir)? {
            sys_path.call_method1("insert", (0, dir))?;
        }
    }
    Ok(())
}

impl Engine for PythonEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Python
    }

    fn run(
        &mut self,
        callback: &str,
        msg: &mut SipMsg,
        arg: Option<&str>,
    ) -> Result<RunOutcome, ScriptError> {
        Python::with_gil(|py| {
            let looked_up;
            let func = match self.script.callbacks.cached(callback) {
                Some(cached) => cached.map(|f| f.bind(py)),
                None => {
                    looked_up = self.lookup(py, callback);
                    if looked_up.is_none() && self.script.style == Style::Class {
                        tracing::error!(target: "python", "{}: callback {callback} is not a method of the {MOD_INIT}() object", self.path.display());
                    }
                    looked_up.as_ref()
                }
            };
            let Some(func) = func else {
                return Ok(RunOutcome::Missing);
            };
            let result = with_fresh_sflags(msg, |msg| {
                current::lent(msg, || {
                    let m = self.msg_obj.bind(py);
                    match (self.script.style, arg) {
                        (Style::Class, None) => func.call1((m,)),
                        (Style::Class, Some(a)) => func.call1((m, a)),
                        (Style::Plain, None) => func.call0(),
                        (Style::Plain, Some(a)) => func.call1((a,)),
                    }
                })
            });
            match result {
                Ok(_) => Ok(RunOutcome::Returned),
                Err(e) if e.is_instance_of::<PySystemExit>(py) => {
                    tracing::debug!(target: "python", "{callback} ended with SystemExit");
                    Ok(RunOutcome::Exited)
                }
                Err(e) => Err(errors::script_error(py, &self.path, &e)),
            }
        })
    }

    fn has_callback(&self, name: &str) -> bool {
        Python::with_gil(|py| self.lookup(py, name).is_some())
    }

    fn reload(&mut self) -> Result<(), LoadError> {
        let script = Python::with_gil(|py| {
            load_script(
                py,
                &self.path,
                None,
                self.options,
                self.module.bind(py),
                self.ksr.bind(py),
                &self.ksr_children,
            )
        })?;
        self.script = script;
        Ok(())
    }
}
