//! The `KSR` module of one Python engine and the callables behind it.
//!
//! `KSR` is a module object with the core exports as attributes, a child module `KSR.x` holding
//! only `modf` (as in `app_python3`: no `exit`, no `drop`), and one child module per enabled
//! sub-module (`KSR.pv`, `KSR.hdr`, ...). Modules that are not enabled are absent, so
//! `hasattr(KSR, "tm")` tells whether `tm` is loaded. Every function is a [`KsrFunction`]: a
//! small callable object holding its slot index, built once per engine. A call converts the
//! arguments (`convert`), borrows the thread's current message (`current`) and calls the export
//! through the table by slot.

use std::sync::Arc;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyModule, PyString, PyTuple};

use super::convert::{int, ret_to_py, with_args, MAX_PARAMS};
use super::current::call;
use crate::engine::lease::CallError;
use crate::engine::modf::{self, ModfIndex};
use crate::engine::EngineKind;
use crate::export::{KemiExport, ParamType};
use crate::ExportTable;

/// One `KSR.<module>.<function>`: calls the export in `slot`.
#[pyclass(frozen, module = "KSR", name = "function")]
pub(super) struct KsrFunction {
    table: Arc<ExportTable>,
    slot: u16,
}

/// The error a caught (and logged) export panic raises in the script.
#[cold]
fn panicked(export: &KemiExport) -> PyErr {
    PyRuntimeError::new_err(format!("KSR.{} panicked", export.qualified_name()))
}

#[pymethods]
impl KsrFunction {
    /// Call the export with `app_python3`'s argument rules; `False` on bad arguments.
    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<PyObject> {
        let Some(export) = self.table.get(self.slot) else {
            return Ok(super::convert::boolean(py, false));
        };
        let name = Qualified(export);
        // 0-param exports ignore any arguments (§3.3).
        let res = if export.params.is_empty() {
            call(export, &[])
        } else {
            match with_args(args.as_slice(), export.params, |a| call(export, a)) {
                Ok(res) => res,
                Err(e) => {
                    tracing::error!(target: "python", "invalid parameters for KSR.{name}: {e}");
                    return Ok(super::convert::boolean(py, false));
                }
            }
        };
        match res {
            Ok(ret) => Ok(ret_to_py(py, ret, &name)),
            Err(CallError::NoMessage) => {
                tracing::error!(target: "python", "invalid Python environment: KSR.{name} called with no current message on this thread");
                Ok(super::convert::boolean(py, false))
            }
            Err(CallError::Args(e)) => {
                tracing::error!(target: "python", "invalid parameters for KSR.{name}: {e}");
                Ok(super::convert::boolean(py, false))
            }
            Err(CallError::Panicked) => Err(panicked(export)),
        }
    }

    fn __repr__(&self) -> String {
        match self.table.get(self.slot) {
            Some(e) => format!("<KSR function {}>", e.qualified_name()),
            None => "<KSR function ?>".to_owned(),
        }
    }
}

/// Displays `module.name` without allocating.
struct Qualified(&'static KemiExport);

impl std::fmt::Display for Qualified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.module.is_empty() {
            f.write_str(self.0.name)
        } else {
            write!(f, "{}.{}", self.0.module, self.0.name)
        }
    }
}

/// `KSR.x.modf(fname, *args)`: run an export found by function name (core first, then modules
/// in slot order) with string arguments converted to the declared kinds. Returns the native
/// integer result (bool gives 1/-1, none and values 1); -1 with an error log for an unknown
/// function, a non-`str` argument, too few arguments or an unparsable number.
#[pyclass(frozen, module = "KSR.x", name = "modf")]
pub(super) struct Modf {
    table: Arc<ExportTable>,
    /// Slot by function name.
    index: ModfIndex,
}

#[pymethods]
impl Modf {
    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<PyObject> {
        let args = args.as_slice();
        let name = args.first().and_then(|a| a.downcast::<PyString>().ok());
        let name = name.as_ref().map(|n| n.to_str().unwrap_or(""));
        let Some(export) = self
            .index
            .resolve(EngineKind::Python, &self.table, name, None)
        else {
            return Ok(int(py, -1));
        };
        let name = export.name;
        let strs = [ParamType::Str; MAX_PARAMS];
        let n = export.params.len().min(MAX_PARAMS);
        let res = with_args(&args[1..], &strs[..n], |strs| {
            modf::call_with_strs(EngineKind::Python, export, strs, |a| call(export, a))
        });
        let code = match res {
            Err(e) => {
                tracing::error!(target: "python", "KSR.x.modf: invalid parameters for `{name}`: {e}");
                -1
            }
            Ok(modf::Outcome::Code(code)) => code,
            Ok(modf::Outcome::Panicked) => return Err(panicked(export)),
            Ok(modf::Outcome::NoMessage) => {
                tracing::error!(target: "python", "invalid Python environment: KSR.x.modf called with no current message on this thread");
                -1
            }
        };
        Ok(int(py, i64::from(code)))
    }
}

/// The `KSR` module of one engine and its child modules.
pub(super) struct KsrModules<'py> {
    /// `KSR` itself.
    pub(super) root: Bound<'py, PyModule>,
    /// `KSR.x` and `KSR.<mod>` by qualified name (`"KSR.pv"`), for `sys.modules`.
    pub(super) children: Vec<(String, Bound<'py, PyModule>)>,
}

/// Build the `KSR` module for `table`: core exports on `KSR`, `KSR.x` first, then one child
/// module per enabled sub-module.
pub(super) fn build<'py>(py: Python<'py>, table: &Arc<ExportTable>) -> PyResult<KsrModules<'py>> {
    let ksr = PyModule::new(py, "KSR")?;
    let mut children = Vec::with_capacity(table.modules().len() + 1);

    let x = PyModule::new(py, "KSR.x")?;
    x.add(
        "modf",
        Bound::new(
            py,
            Modf {
                table: Arc::clone(table),
                index: ModfIndex::new(table),
            },
        )?,
    )?;
    ksr.add("x", &x)?;
    children.push(("KSR.x".to_owned(), x));

    for module in table.modules() {
        let target = if module.name.is_empty() {
            ksr.clone()
        } else {
            let qualified = format!("KSR.{}", module.name);
            let m = PyModule::new(py, &qualified)?;
            ksr.add(module.name, &m)?;
            children.push((qualified, m.clone()));
            m
        };
        for slot in module.slots.clone() {
            if let Some(export) = table.get(slot) {
                let f = Bound::new(
                    py,
                    KsrFunction {
                        table: Arc::clone(table),
                        slot,
                    },
                )?;
                target.add(export.name, f)?;
            }
        }
    }
    Ok(KsrModules {
        root: ksr,
        children,
    })
}
