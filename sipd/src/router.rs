//! [`Router`]: one worker's routing pipeline. It owns the worker's script engine and its
//! `$var` store, and runs the Kamailio callbacks on one message at a time. The live server and
//! `sipd route-test` both route through it, so what a test shows is what the server does.

use std::path::Path;
use std::sync::Arc;

use kemi_runtime::engine::{self, Engine, EngineKind, LoadError, RunOutcome, ScriptError};
use kemi_runtime::msg::VarStore;
use kemi_runtime::{ExportTable, SipMsg};

/// How routing one message ended.
#[derive(Debug)]
pub enum Routed {
    /// The callback returned (or was absent, for optional callbacks).
    Returned,
    /// `KSR.x.exit()` ended it.
    Exited,
    /// The script failed; the message is treated per the host's policy.
    Failed(ScriptError),
}

impl Routed {
    /// `"return"`, `"exit"`, or `"error"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Routed::Returned => "return",
            Routed::Exited => "exit",
            Routed::Failed(_) => "error",
        }
    }
}

/// One worker's script engine and worker-local state.
pub struct Router {
    engine: Box<dyn Engine>,
    vars: VarStore,
}

impl Router {
    /// Load `script` with the engine `kind`, bound to `table`.
    pub fn load(
        kind: EngineKind,
        script: &Path,
        table: Arc<ExportTable>,
    ) -> Result<Self, LoadError> {
        Ok(Router {
            engine: engine::load(kind, script, table)?,
            vars: VarStore::new(),
        })
    }

    /// A router over an engine built elsewhere (a reload builds it from the published script).
    pub fn with_engine(engine: Box<dyn Engine>) -> Self {
        Router {
            engine,
            vars: VarStore::new(),
        }
    }

    /// Switch to `engine` between two messages, keeping the worker's `$var` store (as a Kamailio
    /// reload keeps pv values); returns the previous engine.
    pub fn replace_engine(&mut self, engine: Box<dyn Engine>) -> Box<dyn Engine> {
        std::mem::replace(&mut self.engine, engine)
    }

    /// The engine, for reloads and introspection.
    pub fn engine_mut(&mut self) -> &mut dyn Engine {
        self.engine.as_mut()
    }

    /// Run `ksr_request_route` for a request, or `ksr_reply_route` for a reply.
    pub fn route(&mut self, msg: &mut SipMsg) -> Routed {
        let callback = if msg.message.is_request() {
            engine::REQUEST_ROUTE
        } else {
            engine::REPLY_ROUTE
        };
        self.run(callback, msg, None)
    }

    /// Run `ksr_onsend_route` (if the script defines it) for a request about to be sent.
    pub fn onsend(&mut self, msg: &mut SipMsg) -> Routed {
        self.run(engine::ONSEND_ROUTE, msg, None)
    }

    /// Run the callback `name`, lending the worker's `$var` store to the message meanwhile.
    pub fn run(&mut self, name: &str, msg: &mut SipMsg, arg: Option<&str>) -> Routed {
        std::mem::swap(&mut self.vars, &mut msg.vars);
        let result = self.engine.run(name, msg, arg);
        std::mem::swap(&mut self.vars, &mut msg.vars);
        match result {
            Ok(RunOutcome::Returned | RunOutcome::Missing) => Routed::Returned,
            Ok(RunOutcome::Exited) => Routed::Exited,
            Err(e) => Routed::Failed(e),
        }
    }
}
