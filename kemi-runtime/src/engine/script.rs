//! Load, reload and run plumbing the engines share: the script text, the core callbacks looked
//! up once per (re)load, and the script flags reset for each run.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{LoadError, ONSEND_ROUTE, REPLY_ROUTE, REQUEST_ROUTE};
use crate::SipMsg;

/// A file the script loaded besides itself (a Lua module it `require`d), with the text it ran,
/// so that interpreters built later from the same version run the same companions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Companion {
    /// The name it was required by (`helper`, `lib.util`).
    pub name: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// The text that ran.
    pub text: Arc<[u8]>,
}

/// The script text: `source` when given, else the contents of the file at `path`.
pub(crate) fn script_text<'a>(
    path: &Path,
    source: Option<&'a [u8]>,
) -> Result<Cow<'a, [u8]>, LoadError> {
    match source {
        Some(src) => Ok(Cow::Borrowed(src)),
        None => std::fs::read(path)
            .map(Cow::Owned)
            .map_err(|e| LoadError::new(path, format!("cannot read the script: {e}"))),
    }
}

/// The core callbacks (`F`: a saved function of the language), looked up once per (re)load so
/// a run does no global lookup.
pub(crate) struct Callbacks<F> {
    /// `ksr_request_route`; always there once a script is loaded.
    request: Option<F>,
    /// `ksr_reply_route`, optional.
    reply: Option<F>,
    /// `ksr_onsend_route`, optional.
    onsend: Option<F>,
}

impl<F> Default for Callbacks<F> {
    fn default() -> Self {
        Callbacks {
            request: None,
            reply: None,
            onsend: None,
        }
    }
}

impl<F> Callbacks<F> {
    /// Look the core callbacks up with `get` (the function the script defines under a name),
    /// the request callback first. A script of `path` without one fails to load.
    pub(crate) fn lookup(
        path: &Path,
        mut get: impl FnMut(&str) -> Option<F>,
    ) -> Result<Self, LoadError> {
        let request = get(REQUEST_ROUTE).ok_or_else(|| {
            LoadError::new(path, format!("function {REQUEST_ROUTE} is not defined"))
        })?;
        Ok(Callbacks {
            request: Some(request),
            reply: get(REPLY_ROUTE),
            onsend: get(ONSEND_ROUTE),
        })
    }

    /// The saved callback for `name`: `Some(None)` for a core callback the script does not
    /// define, `None` for any other name (to be looked up on each run, as Kamailio does).
    #[inline]
    pub(crate) fn cached(&self, name: &str) -> Option<Option<&F>> {
        match name {
            REQUEST_ROUTE => Some(self.request.as_ref()),
            REPLY_ROUTE => Some(self.reply.as_ref()),
            ONSEND_ROUTE => Some(self.onsend.as_ref()),
            _ => None,
        }
    }
}

/// Run `f` on `msg` with its script flags reset to 0, then restore them (Kamailio's per-run
/// flags).
#[inline]
pub(crate) fn with_fresh_sflags<R>(msg: &mut SipMsg, f: impl FnOnce(&mut SipMsg) -> R) -> R {
    let saved_sflags = std::mem::take(&mut msg.route.sflags);
    let result = f(msg);
    msg.route.sflags = saved_sflags;
    result
}
