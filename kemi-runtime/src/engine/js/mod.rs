//! The JavaScript engine (Kamailio's `app_jsdt`, `cfgengine "jsdt"`): QuickJS (quickjs-ng,
//! through `rquickjs`), one runtime and context per [`JsEngine`].
//!
//! - [`ksr`]: the `KSR` object, the `KSR_<mod>` globals and the native functions behind them.
//! - [`convert`]: argument coercion and result conversion.
//! - [`error`]: exceptions as script and load errors.
//! - [`budget`]: the per-run budget (the interrupt handler) of [`ScriptLimits`], and what a unit
//!   of it is for JavaScript.
//!
//! The script is evaluated as one global (non-module, sloppy-mode) script, so its top-level
//! `function`s and `var`s are globals, as in Duktape. Differences from `app_jsdt`, on purpose:
//! - The language is ES2023 (QuickJS), not Duktape's ES5.1.
//! - No `require` (`app_jsdt`'s `mode=1`) and no host objects: a script reaches the outside only
//!   through `KSR`.
//! - String arguments are length-exact (no `strlen` cut at a NUL); missing arguments are coerced
//!   from `undefined` instead of throwing "invalid stack index".
//! - Top-level `let`, `const` and `class` declarations live in the global lexical scope, which
//!   survives a reload, so re-evaluating them fails the reload ("redeclaration"): scripts meant to
//!   be reloaded use `var` and `function` at top level (Duktape has only those).
//! - Recursion is bounded ([`MAX_STACK`]): a runaway script gets a contained `RangeError`.
//! - [`JsEngine::load_with`] can bound each run (interrupt polls, see [`budget`]) and the
//!   runtime's memory ([`ScriptLimits`]); a run over either fails with a [`ScriptError`] that
//!   [`LimitKind::of`](super::limits::LimitKind::of) recognizes, and the next run starts afresh.

mod budget;
mod convert;
mod error;
mod ksr;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rquickjs::context::EvalOptions;
use rquickjs::{qjs, Context, Function, Persistent, Runtime, Value};

use super::ctx::Ctx;
use super::limits::{ScriptLimits, INSTRUCTION_LIMIT, MEMORY_LIMIT};
use super::script::{script_text, with_fresh_sflags, Callbacks};
use super::{Engine, EngineKind, LoadError, RunOutcome, ScriptError};
use crate::{ExportTable, SipMsg};
use budget::Budget;
pub use budget::POLL_PERIOD;
use error::{caught, load_error, null_error, Thrown};

/// What QuickJS throws when the interrupt handler stops a run.
const INTERRUPTED: &str = "InternalError: interrupted";

/// Most native stack the interpreter may use for recursion (worker threads have ≥ 2 MiB).
pub const MAX_STACK: usize = 512 * 1024;

/// A saved callback function.
type Callback = Persistent<Function<'static>>;

/// A QuickJS context with one routing script loaded. Create one per worker thread.
///
/// `ksr_request_route`, `ksr_reply_route` and `ksr_onsend_route` are looked up when the script
/// is (re)loaded; any other callback name (tm and event callbacks) is looked up as a global on
/// each run, as Kamailio does.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use kemi_runtime::engine::{Engine, js::JsEngine, REQUEST_ROUTE};
/// # fn f(table: Arc<kemi_runtime::ExportTable>, msg: &mut kemi_runtime::SipMsg) {
/// let mut engine = JsEngine::load("route.js".as_ref(), table).unwrap();
/// match engine.run(REQUEST_ROUTE, msg, None) {
///     Ok(outcome) => println!("{outcome:?}"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
pub struct JsEngine {
    // Field order matters: the saved callbacks go first, then the context and the runtime
    // (freeing them may not call `KSR` functions, but their opaque points to `ctx`), and only
    // then `ctx`.
    callbacks: Callbacks<Callback>,
    context: Context,
    runtime: Runtime,
    ctx: Box<Ctx>,
    path: PathBuf,
    limits: ScriptLimits,
    /// The run budget the interrupt handler spends; `None` without an instruction limit.
    budget: Option<Arc<Budget>>,
}

impl std::fmt::Debug for JsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsEngine")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl JsEngine {
    /// Create a context, bind `KSR` to `table` and evaluate the script at `path`.
    ///
    /// Fails with the file, line and cause for syntax errors and errors at top level, and when
    /// the script defines no `ksr_request_route` function.
    pub fn load(path: &Path, table: Arc<ExportTable>) -> Result<Self, LoadError> {
        Self::load_with(path, None, table, ScriptLimits::default())
    }

    /// Like [`JsEngine::load`], with `limits` enforced from the script's top level on (which gets
    /// [`ScriptLimits::load_instructions`]), and the script text taken from `source` when given
    /// (`path` then only names it in messages and [`Engine::reload`]), so that what a staging
    /// interpreter validated is what runs.
    ///
    /// A unit of `limits.instructions` is one interrupt poll of QuickJS: one function call or one
    /// jump instruction (a loop iteration costs about two), checked every [`POLL_PERIOD`] units.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use kemi_runtime::engine::{js::JsEngine, limits::ScriptLimits};
    /// # fn f(table: Arc<kemi_runtime::ExportTable>) {
    /// let limits = ScriptLimits { instructions: Some(1_000_000), memory: Some(32 << 20) };
    /// let engine = JsEngine::load_with("route.js".as_ref(), None, table, limits);
    /// # }
    /// ```
    pub fn load_with(
        path: &Path,
        source: Option<&[u8]>,
        table: Arc<ExportTable>,
        limits: ScriptLimits,
    ) -> Result<Self, LoadError> {
        let setup = |e: rquickjs::Error| {
            LoadError::new(
                path,
                format!("cannot set up the JavaScript interpreter: {e}"),
            )
        };
        let runtime = Runtime::new().map_err(setup)?;
        runtime.set_max_stack_size(MAX_STACK);
        let context = Context::full(&runtime).map_err(setup)?;
        let ctx = Box::new(Ctx::new(EngineKind::Jsdt, table));
        context.with(|js| ksr::install(&js, &ctx)).map_err(setup)?;
        // Limits only after the set-up, as the Lua engine does: the ceiling bounds the script.
        let budget = limits.instructions.map(|_| Budget::install(&runtime));
        if let Some(bytes) = limits.memory {
            runtime.set_memory_limit(bytes);
        }
        let mut engine = JsEngine {
            callbacks: Callbacks::default(),
            context,
            runtime,
            ctx,
            path: path.to_path_buf(),
            limits,
            budget,
        };
        engine.eval_source(script_text(path, source)?.into_owned())?;
        engine.callbacks = engine.lookup_callbacks()?;
        Ok(engine)
    }

    /// The script file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Evaluate `src` (the text of the script file) into the context, within the load budget.
    fn eval_source(&self, src: Vec<u8>) -> Result<(), LoadError> {
        if let (Some(budget), Some(n)) = (&self.budget, self.limits.load_instructions()) {
            budget.arm(n);
        }
        let result = self.context.with(|js| {
            let mut opts = EvalOptions::default();
            opts.global = true;
            opts.strict = false;
            opts.filename = Some(self.path.display().to_string());
            js.eval_with_options::<Value, _>(src, opts)
                .map(drop)
                .map_err(|e| caught(&js, e))
        });
        match result {
            Ok(()) => Ok(()),
            Err(Thrown::Exit) => Err(load_error(&self.path, Thrown::Exit)),
            Err(Thrown::Null) => Err(load_error(
                &self.path,
                Thrown::Error(self.classify(null_error(), true)),
            )),
            Err(Thrown::Error(e)) => Err(load_error(
                &self.path,
                Thrown::Error(self.classify(e, false)),
            )),
        }
    }

    /// `err` as a limit hit when a limit stopped the run (or load) that failed with it
    /// (`null_thrown`: the thrown value was `null`): the message then starts with
    /// [`INSTRUCTION_LIMIT`] or [`MEMORY_LIMIT`]. After a memory-limit failure the runtime is
    /// garbage-collected (cycles the failed run left behind), so the next run starts with what is
    /// still reachable.
    fn classify(&self, mut err: ScriptError, null_thrown: bool) -> ScriptError {
        if self.budget.as_ref().is_some_and(|b| b.tripped()) {
            err.message = if err.message == INTERRUPTED {
                INSTRUCTION_LIMIT.to_string()
            } else {
                format!("{INSTRUCTION_LIMIT} ({})", err.message)
            };
        } else if self.limits.memory.is_some()
            && budget::is_out_of_memory(&err.message, null_thrown)
        {
            self.runtime.run_gc();
            err.message = if null_thrown {
                MEMORY_LIMIT.to_string()
            } else {
                format!("{MEMORY_LIMIT}: {}", err.message)
            };
        }
        err
    }

    /// The core callbacks as the script now defines them.
    fn lookup_callbacks(&self) -> Result<Callbacks<Callback>, LoadError> {
        self.context.with(|js| {
            Callbacks::lookup(&self.path, |name| {
                let v: Value = js.globals().get(name).ok()?;
                v.into_function().map(|f| Persistent::save(&js, f))
            })
        })
    }
}

impl Engine for JsEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Jsdt
    }

    fn run(
        &mut self,
        callback: &str,
        msg: &mut SipMsg,
        arg: Option<&str>,
    ) -> Result<RunOutcome, ScriptError> {
        let cached = self.callbacks.cached(callback);
        if cached == Some(None) {
            return Ok(RunOutcome::Missing);
        }
        let result = with_fresh_sflags(msg, |msg| {
            if let (Some(budget), Some(n)) = (&self.budget, self.limits.instructions) {
                budget.arm(n);
            }
            self.ctx.lent(msg, || {
                self.context.with(|js| {
                    let func = match cached {
                        Some(Some(saved)) => saved.clone().restore(&js).ok(),
                        _ => js
                            .globals()
                            .get::<_, Value>(callback)
                            .ok()
                            .and_then(Value::into_function),
                    };
                    let Some(func) = func else {
                        return Ok(RunOutcome::Missing);
                    };
                    match call(&js, &func, arg) {
                        Ok(()) => Ok(RunOutcome::Returned),
                        Err(e) => match caught(&js, e) {
                            Thrown::Exit => Ok(RunOutcome::Exited),
                            Thrown::Null => Err((null_error(), true)),
                            Thrown::Error(e) => Err((e, false)),
                        },
                    }
                })
            })
        });
        result.map_err(|(e, null_thrown)| self.classify(e, null_thrown))
    }

    fn has_callback(&self, name: &str) -> bool {
        self.context.with(|js| {
            js.globals()
                .get::<_, Value>(name)
                .is_ok_and(|v| v.is_function())
        })
    }

    fn reload(&mut self) -> Result<(), LoadError> {
        self.eval_source(script_text(&self.path, None)?.into_owned())?;
        self.callbacks = self.lookup_callbacks()?;
        Ok(())
    }
}

/// Call `func` with no `this` and `arg` as its only argument when given, discarding its result.
/// Calls QuickJS directly so a run allocates nothing for the call itself.
fn call<'js>(
    js: &rquickjs::Ctx<'js>,
    func: &Function<'js>,
    arg: Option<&str>,
) -> rquickjs::Result<()> {
    let raw = js.as_raw().as_ptr();
    let arg = match arg {
        Some(a) => Some(rquickjs::String::from_str(js.clone(), a)?),
        None => None,
    };
    let mut argv = [arg.as_ref().map_or(qjs::JS_UNDEFINED, |s| s.as_raw())];
    let argc = i32::from(arg.is_some());
    // SAFETY: `raw` is the live context whose lock `with` holds; `func` and `argv[0]` are live
    // values of it, borrowed for the call (JS_Call does not take ownership of its arguments);
    // the returned value is owned and freed here.
    unsafe {
        let ret = qjs::JS_Call(
            raw,
            func.as_raw(),
            qjs::JS_UNDEFINED,
            argc,
            argv.as_mut_ptr(),
        );
        if qjs::JS_VALUE_GET_TAG(ret) == qjs::JS_TAG_EXCEPTION {
            return Err(rquickjs::Error::Exception);
        }
        qjs::JS_FreeValue(raw, ret);
    }
    Ok(())
}
