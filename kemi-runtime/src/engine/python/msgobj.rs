//! The `msg` object that class-style callbacks receive (`app_python3`'s `msgobj`), reduced to
//! what can be read cheaply from the current message.
//!
//! One object per engine, created once and passed to every callback: it has no state of its
//! own and reads the message current on the calling thread. Outside a callback (no message)
//! every attribute is `None`. What it offers:
//!
//! | member | value |
//! |---|---|
//! | `Type` | `"SIP_REQUEST"` or `"SIP_REPLY"` |
//! | `Method` | the request method, `None` for a reply |
//! | `Status` | the reply status code as `str` (as `app_python3`), `None` for a request |
//! | `RURI` | the Request-URI in effect (rewritten or received), `None` for a reply |
//! | `src_address` | `(ip, port)` the message came from |
//! | `dst_address` | `(ip, port)` of the local socket that received it |
//! | `getHeader(name)` | the first header `name` (any case, compact forms too) as `str`, or `None` |
//!
//! `app_python3`'s `rewrite_ruri()`, `set_dst_uri()` and `call_function()` are not offered: use
//! `KSR.setruri()`, `KSR.setdsturi()` and `KSR.x.modf()`. Unlike `app_python3`, `Method` on a
//! reply (or `Status` on a request) gives `None` instead of raising `TypeError`.

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::current::with_msg;

/// The `msg` argument of class-style callbacks.
#[pyclass(frozen, module = "KSR", name = "msg")]
pub(super) struct MsgObject;

#[pymethods]
impl MsgObject {
    /// `"SIP_REQUEST"` or `"SIP_REPLY"`.
    #[getter(Type)]
    fn kind(&self) -> Option<&'static str> {
        with_msg(|m| {
            if m.message.is_request() {
                "SIP_REQUEST"
            } else {
                "SIP_REPLY"
            }
        })
    }

    /// The request method.
    #[getter(Method)]
    fn method(&self, py: Python<'_>) -> Option<PyObject> {
        with_msg(|m| {
            m.message
                .method_str()
                .map(|s| PyString::new(py, s).into_any().unbind())
        })
        .flatten()
    }

    /// The reply status code, as a string.
    #[getter(Status)]
    fn status(&self) -> Option<String> {
        with_msg(|m| m.message.status().map(|s| s.to_string())).flatten()
    }

    /// The Request-URI in effect.
    #[getter(RURI)]
    fn ruri(&self, py: Python<'_>) -> Option<PyObject> {
        with_msg(|m| m.ruri().map(|s| PyString::new(py, s).into_any().unbind())).flatten()
    }

    /// `(ip, port)` of the sender.
    #[getter]
    fn src_address(&self) -> Option<(String, u16)> {
        with_msg(|m| (m.rcv.src.ip().to_string(), m.rcv.src.port()))
    }

    /// `(ip, port)` of the receiving socket.
    #[getter]
    fn dst_address(&self) -> Option<(String, u16)> {
        with_msg(|m| (m.rcv.dst.ip().to_string(), m.rcv.dst.port()))
    }

    /// The value of the first header `name`, or `None`.
    #[pyo3(name = "getHeader")]
    fn get_header(&self, py: Python<'_>, name: &str) -> Option<PyObject> {
        with_msg(|m| {
            m.message
                .header_value(name)
                .map(|v| PyString::new(py, v).into_any().unbind())
        })
        .flatten()
    }

    fn __repr__(&self) -> String {
        with_msg(|m| format!("<KSR msg {}>", m.message.start_line()))
            .unwrap_or_else(|| "<KSR msg (no current message)>".to_owned())
    }
}
