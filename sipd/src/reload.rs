//! Script reload without restart (`app_lua.reload`, SIGHUP).
//!
//! [`ScriptVersions`] is the server's current script: its text as read at startup or at the last
//! accepted reload, and a generation counter. [`ScriptVersions::reload`] reads the file, loads it
//! into a fresh *staging* interpreter (syntax, top level, `ksr_request_route`, under the script
//! limits) and only then publishes it: a rejected script never reaches a worker, and the caller
//! gets the file, line and cause. Each worker holds a [`ScriptWatch`]; before each message it does
//! one atomic load ([`ScriptWatch::changed`]) and, when the generation moved, builds its own new
//! engine from the published text (engines are not `Send`) and swaps it in between two messages.
//!
//! Unlike Kamailio, which re-runs the file into each process's existing interpreter when it next
//! runs a callback, every worker gets a fresh interpreter: globals set by the old script at run
//! time do not survive (worker `$var`s do: they live in the router). See `docs/DECISIONS.md`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kemi_runtime::engine::limits::ScriptLimits;
use kemi_runtime::engine::lua::LuaOptions;
use kemi_runtime::engine::{self, Companion, Engine, EngineKind, LoadError, REQUEST_ROUTE};
use kemi_runtime::ExportTable;

/// One version of the routing script.
#[derive(Debug)]
pub struct ScriptSource {
    /// Its generation (1 for the script loaded at startup).
    pub generation: u64,
    /// The engine that runs it.
    pub kind: EngineKind,
    /// The file it was read from.
    pub path: PathBuf,
    /// The text that was validated; every engine is built from exactly this text.
    pub text: Arc<[u8]>,
    /// The companion files the validating interpreter loaded (Lua modules the script
    /// `require`s), with their texts: engines built from this version run these, not the files.
    pub companions: Arc<[Companion]>,
}

/// A reload that was accepted: the generations before and after (Kamailio's `{old, new}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reloaded {
    /// Generation before.
    pub old: u64,
    /// Generation now published.
    pub new: u64,
}

/// The server's current script and its generation.
#[derive(Debug)]
pub struct ScriptVersions {
    generation: AtomicU64,
    current: Mutex<Arc<ScriptSource>>,
    staging: Mutex<()>,
    table: Arc<ExportTable>,
    limits: ScriptLimits,
    lua: LuaOptions,
}

fn read(path: &Path) -> Result<Arc<[u8]>, LoadError> {
    std::fs::read(path)
        .map(Arc::from)
        .map_err(|e| LoadError::new(path, format!("cannot read the script: {e}")))
}

impl ScriptVersions {
    /// Read the script at `path` as generation 1 (validated when the workers build it).
    pub fn new(
        kind: EngineKind,
        path: &Path,
        table: Arc<ExportTable>,
        limits: ScriptLimits,
    ) -> Result<ScriptVersions, LoadError> {
        let source = ScriptSource {
            generation: 1,
            kind,
            path: path.to_path_buf(),
            text: read(path)?,
            companions: Arc::from([]),
        };
        Ok(ScriptVersions {
            generation: AtomicU64::new(1),
            current: Mutex::new(Arc::new(source)),
            staging: Mutex::new(()),
            table,
            limits,
            lua: LuaOptions::default(),
        })
    }

    /// The same, with the Lua engine's `lua` options.
    pub fn with_lua_options(mut self, lua: LuaOptions) -> ScriptVersions {
        self.lua = lua;
        self
    }

    /// The published generation (one atomic load).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The published script.
    pub fn current(&self) -> Arc<ScriptSource> {
        match self.current.lock() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The limits every engine is built with.
    pub fn limits(&self) -> ScriptLimits {
        self.limits
    }

    /// A new engine running the text of `src`, bound to the table, with the limits (which the
    /// Python engine ignores, see [`engine::limits`]).
    pub fn build(&self, src: &ScriptSource) -> Result<Box<dyn Engine>, LoadError> {
        let engine = engine::load_with_options(
            src.kind,
            &src.path,
            Some(&src.text),
            &src.companions,
            Arc::clone(&self.table),
            self.limits,
            self.lua,
        )?;
        if !engine.has_callback(REQUEST_ROUTE) {
            return Err(LoadError::new(
                &src.path,
                format!("function {REQUEST_ROUTE} is not defined"),
            ));
        }
        Ok(engine)
    }

    /// Read the script file again, load it into a staging interpreter, and publish it when it
    /// loads; otherwise keep the running script and return why.
    pub fn reload(&self) -> Result<Reloaded, LoadError> {
        let _one_at_a_time = self.staging.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.current();
        let mut candidate = ScriptSource {
            generation: cur.generation + 1,
            kind: cur.kind,
            path: cur.path.clone(),
            text: read(&cur.path)?,
            companions: Arc::from([]),
        };
        candidate.companions = self.build(&candidate)?.companions().into();
        let new = candidate.generation;
        match self.current.lock() {
            Ok(mut c) => *c = Arc::new(candidate),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(candidate),
        }
        // Published after the text, so a worker that sees `new` finds it in `current`.
        self.generation.store(new, Ordering::Release);
        Ok(Reloaded {
            old: cur.generation,
            new,
        })
    }
}

/// A worker's view of [`ScriptVersions`]: which generation it runs.
#[derive(Debug)]
pub struct ScriptWatch {
    versions: Arc<ScriptVersions>,
    running: u64,
}

impl ScriptWatch {
    /// A watch of a worker running generation `running`.
    pub fn new(versions: Arc<ScriptVersions>, running: u64) -> ScriptWatch {
        ScriptWatch { versions, running }
    }

    /// The published script when it is newer than the one running (one atomic load otherwise).
    #[inline]
    pub fn changed(&self) -> Option<Arc<ScriptSource>> {
        if self.versions.generation() == self.running {
            return None;
        }
        Some(self.versions.current())
    }

    /// Build the engine for `src` (see [`ScriptVersions::build`]); the watch then counts `src`
    /// as seen whether or not it built, so a failing build is not retried on every message.
    pub fn build(&mut self, src: &ScriptSource) -> Result<Box<dyn Engine>, LoadError> {
        self.running = src.generation;
        self.versions.build(src)
    }

    /// The generation this worker runs (or last tried).
    pub fn running(&self) -> u64 {
        self.running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn rejected_reload_keeps_generation_and_accepted_one_publishes() {
        let dir = Dir(std::env::temp_dir().join(format!("sipd-reload-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).expect("dir");
        let path = dir.0.join("r.lua");
        std::fs::write(&path, "function ksr_request_route() end\n").expect("write");
        let table = Arc::new(crate::exports::build_table(&Default::default()).expect("table"));
        let v = Arc::new(
            ScriptVersions::new(EngineKind::Lua, &path, table, ScriptLimits::default())
                .expect("new"),
        );
        let watch = ScriptWatch::new(Arc::clone(&v), 1);
        assert!(watch.changed().is_none());

        std::fs::write(&path, "function ksr_request_route()\n  if then\nend\n").expect("write");
        let e = v.reload().expect_err("syntax error");
        assert_eq!(e.line, Some(2), "{e}");
        std::fs::write(&path, "function other() end\n").expect("write");
        let e = v.reload().expect_err("no route");
        assert!(e.cause.contains(REQUEST_ROUTE), "{e}");
        assert_eq!(v.generation(), 1);
        assert!(watch.changed().is_none());

        std::fs::write(&path, "function ksr_request_route() KSR.x.exit() end\n").expect("write");
        assert_eq!(v.reload().expect("reload"), Reloaded { old: 1, new: 2 });
        // The file changing again does not change what was published.
        std::fs::write(&path, "garbage").expect("write");
        let mut watch = watch;
        let src = watch.changed().expect("newer");
        assert_eq!(src.generation, 2);
        assert!(watch.build(&src).is_ok());
        assert_eq!(watch.running(), 2);
        assert!(watch.changed().is_none());
    }
}
