//! [`Services`]: state that modules share across the workers of one server (the location table,
//! hash tables, the subscriber store...), keyed by type.
//!
//! The host builds it once at startup (`modules::setup`) and hands it to every message through
//! [`RouteEnv::services`](crate::msg::RouteEnv). A module finds its own state with
//! [`Services::get`]; two servers in one process (tests) each have their own. Lookups scan a
//! short vector (one entry per stateful module) and take no lock.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A job the host runs periodically on its housekeeping thread (expiry sweeps, reloads).
pub struct Periodic {
    /// A name for logs.
    pub name: &'static str,
    /// How often it runs.
    pub every: Duration,
    /// The job.
    pub run: Box<dyn Fn() + Send + Sync>,
}

impl fmt::Debug for Periodic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Periodic")
            .field("name", &self.name)
            .field("every", &self.every)
            .finish()
    }
}

/// An event a module raises to the script (Kamailio's event routes, run through the module's
/// `event_callback` modparam in KEMI): the global function `callback` runs with the event
/// `name` (`htable:mod-init`) as its only argument, on a stand-in request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptEvent {
    /// The script function (`ksr_htable_event`).
    pub callback: String,
    /// The event name passed to it (`htable:mod-init`).
    pub name: String,
}

/// An event raised while the server runs (`dialog:start`), with the module context the
/// callback is to see (the dialog, for `$dlg(...)`).
#[derive(Clone, Debug)]
pub struct PostedEvent {
    /// The callback and the event name.
    pub event: ScriptEvent,
    /// What the stand-in request carries as its dialog.
    pub dialog: Option<crate::msg::Watcher>,
}

/// Script events modules raise while the server runs (a call confirmed, ended, failed), run
/// by a worker soon after: the worker that raised one runs it after its message, and an event
/// raised off the workers (a dialog timeout) wakes one through the host's wake function.
/// A module that raises events puts one in [`Services`]; the host looks for it.
#[derive(Default)]
pub struct EventQueue {
    pending: std::sync::Mutex<Vec<PostedEvent>>,
    any: std::sync::atomic::AtomicBool,
    wake: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl EventQueue {
    /// Queue `event` and wake a worker.
    pub fn post(&self, event: PostedEvent) {
        if let Ok(mut p) = self.pending.lock() {
            p.push(event);
        }
        self.any.store(true, std::sync::atomic::Ordering::Release);
        if let Some(w) = self.wake.get() {
            w();
        }
    }

    /// Whether events wait (one atomic load).
    pub fn is_pending(&self) -> bool {
        self.any.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Take every waiting event, oldest first.
    pub fn take(&self) -> Vec<PostedEvent> {
        if !self.is_pending() {
            return Vec::new();
        }
        let Ok(mut p) = self.pending.lock() else {
            return Vec::new();
        };
        self.any.store(false, std::sync::atomic::Ordering::Release);
        std::mem::take(&mut *p)
    }

    /// Set how a worker is woken (once; the host's).
    pub fn set_wake(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.wake.set(Box::new(wake));
    }
}

impl fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventQueue")
            .field("pending", &self.is_pending())
            .finish()
    }
}

/// Shared module state of one server, keyed by type.
#[derive(Clone, Default)]
pub struct Services {
    items: Vec<(TypeId, Arc<dyn Any + Send + Sync>)>,
    periodic: Vec<Arc<Periodic>>,
    startup_events: Vec<ScriptEvent>,
}

impl Services {
    /// An empty set.
    pub fn new() -> Services {
        Services::default()
    }

    /// Add (or replace) the state of type `T`.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        let id = TypeId::of::<T>();
        self.items.retain(|(t, _)| *t != id);
        self.items.push((id, value));
    }

    /// The state of type `T`, if a module registered it.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.items
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.downcast_ref::<T>())
    }

    /// The state of type `T` as a shared handle.
    pub fn get_arc<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let id = TypeId::of::<T>();
        self.items
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| Arc::clone(v).downcast::<T>().ok())
    }

    /// Ask the host to run `run` every `every` while the server runs.
    pub fn every(
        &mut self,
        name: &'static str,
        every: Duration,
        run: impl Fn() + Send + Sync + 'static,
    ) {
        self.periodic.push(Arc::new(Periodic {
            name,
            every,
            run: Box::new(run),
        }));
    }

    /// The periodic jobs modules asked for.
    pub fn periodic(&self) -> &[Arc<Periodic>] {
        &self.periodic
    }

    /// Ask the host to run `event` once at startup, after the script loaded and before any
    /// message is routed, in one worker (Kamailio runs `htable:mod-init` once, at startup).
    pub fn on_startup(&mut self, event: ScriptEvent) {
        self.startup_events.push(event);
    }

    /// The startup events modules asked for, in the order they asked.
    pub fn startup_events(&self) -> &[ScriptEvent] {
        &self.startup_events
    }
}

/// The host's view of its open stream connections, for modules that must not hand out a
/// destination whose connection is gone: registrar's `lookup` skips a WebSocket contact whose
/// connection closed (a WebSocket client cannot be reached any other way, RFC 7118 5).
pub struct OpenConnections(
    Box<dyn Fn(crate::msg::Proto, std::net::SocketAddr) -> bool + Send + Sync>,
);

impl OpenConnections {
    /// Answer with `is_open(proto, peer)`.
    pub fn new(
        is_open: impl Fn(crate::msg::Proto, std::net::SocketAddr) -> bool + Send + Sync + 'static,
    ) -> OpenConnections {
        OpenConnections(Box::new(is_open))
    }

    /// Whether a connection over `proto` to `peer` is open.
    pub fn is_open(&self, proto: crate::msg::Proto, peer: std::net::SocketAddr) -> bool {
        (self.0)(proto, peer)
    }
}

impl fmt::Debug for OpenConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpenConnections")
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("items", &self.items.len())
            .field("periodic", &self.periodic)
            .field("startup_events", &self.startup_events)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_state_by_type() {
        let mut s = Services::new();
        s.insert(Arc::new(5u32));
        s.insert(Arc::new(String::from("x")));
        assert_eq!(s.get::<u32>(), Some(&5));
        assert_eq!(s.get::<String>().map(String::as_str), Some("x"));
        assert!(s.get::<u64>().is_none());
        s.insert(Arc::new(6u32));
        assert_eq!(s.get_arc::<u32>().as_deref(), Some(&6));
    }
}
