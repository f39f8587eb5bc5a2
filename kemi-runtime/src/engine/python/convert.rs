//! Conversions between Python values and KEMI values, with `app_python3`'s strict rules
//! (`kemi-reference.md` §2.2 Python column and §3.3).
//!
//! Arguments: a `str` parameter takes only a `str` (not `bytes`, not a number); an `int` or
//! `long` parameter takes only an `int` (`bool` included, as it is an `int` subclass), within the
//! parameter's range. Strings are borrowed from the Python objects (CPython caches their UTF-8
//! form), so a call with int and str arguments allocates nothing here.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};

use crate::export::{KemiRet, ParamType};
use crate::{Arg, Xval};

pub(super) use crate::engine::MAX_PARAMS;

/// Why the arguments of a call were refused; the call gives `False`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum BadArgs {
    /// Fewer arguments than parameters.
    #[error("not enough parameters: {got} of {expected}")]
    Missing {
        /// Declared parameters.
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// Argument `index` (1-based) has the wrong Python type.
    #[error("argument {index} must be {expected}, not {found}")]
    Type {
        /// 1-based position.
        index: usize,
        /// What the parameter takes.
        expected: &'static str,
        /// The Python type name given.
        found: String,
    },
    /// Argument `index` (1-based) is an `int` out of the parameter's range.
    #[error("argument {index} is out of range for {expected}")]
    Range {
        /// 1-based position.
        index: usize,
        /// The parameter kind.
        expected: &'static str,
    },
    /// A `str` argument is not encodable as UTF-8 (lone surrogates).
    #[error("argument {index} is not valid UTF-8")]
    Utf8 {
        /// 1-based position.
        index: usize,
    },
}

/// Convert `args` for the parameter kinds `params` and call `f` with them. Extra arguments are
/// ignored, as in `app_python3`.
#[inline]
pub(super) fn with_args<'a, R>(
    args: &'a [Bound<'_, PyAny>],
    params: &[ParamType],
    f: impl FnOnce(&[Arg<'a>]) -> R,
) -> Result<R, BadArgs> {
    if args.len() < params.len() || params.len() > MAX_PARAMS {
        return Err(BadArgs::Missing {
            expected: params.len(),
            got: args.len(),
        });
    }
    let mut out = [Arg::Int(0); MAX_PARAMS];
    for (i, (obj, ty)) in args.iter().zip(params).enumerate() {
        out[i] = arg(obj, *ty, i + 1)?;
    }
    Ok(f(&out[..params.len()]))
}

/// One argument of kind `ty`; `index` is 1-based, for errors.
#[inline]
fn arg<'a>(obj: &'a Bound<'_, PyAny>, ty: ParamType, index: usize) -> Result<Arg<'a>, BadArgs> {
    match ty {
        ParamType::Str => {
            let s = obj
                .downcast::<PyString>()
                .map_err(|_| type_error(obj, index, "str"))?;
            s.to_str()
                .map(Arg::Str)
                .map_err(|_| BadArgs::Utf8 { index })
        }
        ParamType::Int => {
            if !obj.is_instance_of::<PyInt>() {
                return Err(type_error(obj, index, "int"));
            }
            obj.extract::<i32>()
                .map(Arg::Int)
                .map_err(|_| BadArgs::Range {
                    index,
                    expected: "int",
                })
        }
        ParamType::Long => {
            if !obj.is_instance_of::<PyInt>() {
                return Err(type_error(obj, index, "int"));
            }
            obj.extract::<i64>()
                .map(Arg::Long)
                .map_err(|_| BadArgs::Range {
                    index,
                    expected: "long",
                })
        }
    }
}

/// A type error naming the Python type given.
#[cold]
fn type_error(obj: &Bound<'_, PyAny>, index: usize, expected: &'static str) -> BadArgs {
    let found = obj
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    BadArgs::Type {
        index,
        expected,
        found,
    }
}

/// A Python value for an export result (§2.2 Python column): INT → `int`, BOOL → `bool`, NONE →
/// `int` 0, XVAL int/long → `int`, str → `str`, bool → `bool`, null and none → `None`; arrays and
/// dicts are not supported by `app_python3`: `None` and an error log.
#[inline]
pub(super) fn ret_to_py(py: Python<'_>, ret: KemiRet, name: &dyn std::fmt::Display) -> PyObject {
    match ret {
        KemiRet::None => int(py, 0),
        KemiRet::Int(n) => int(py, i64::from(n)),
        KemiRet::Bool(b) => boolean(py, b),
        KemiRet::Xval(x) => match x {
            Xval::None | Xval::Null => py.None(),
            Xval::Int(n) => int(py, i64::from(n)),
            Xval::Long(n) => int(py, n),
            Xval::Bool(b) => boolean(py, b),
            Xval::Str(s) => PyString::new(py, &s).into_any().unbind(),
            Xval::Array(_) | Xval::Dict(_) => {
                tracing::error!(target: "python", "KSR.{name}: arrays and dicts are not supported in Python; returning None");
                py.None()
            }
        },
    }
}

/// A Python `int`.
#[inline]
pub(super) fn int(py: Python<'_>, n: i64) -> PyObject {
    match n.into_pyobject(py) {
        Ok(v) => v.into_any().unbind(),
        Err(never) => match never {},
    }
}

/// Python `True` or `False`.
#[inline]
pub(super) fn boolean(py: Python<'_>, b: bool) -> PyObject {
    PyBool::new(py, b).to_owned().into_any().unbind()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::types::{PyBytes, PyFloat};

    #[test]
    fn strict_types() {
        Python::with_gil(|py| {
            let s = PyString::new(py, "x").into_any();
            let i = 5i32.into_pyobject(py).expect("int").into_any();
            let b = PyBool::new(py, true).to_owned().into_any();
            let f = PyFloat::new(py, 1.5).into_any();
            let by = PyBytes::new(py, b"x").into_any();
            assert_eq!(arg(&s, ParamType::Str, 1), Ok(Arg::Str("x")));
            assert_eq!(arg(&i, ParamType::Int, 1), Ok(Arg::Int(5)));
            assert_eq!(arg(&b, ParamType::Int, 1), Ok(Arg::Int(1)));
            assert_eq!(arg(&i, ParamType::Long, 1), Ok(Arg::Long(5)));
            assert!(matches!(
                arg(&i, ParamType::Str, 1),
                Err(BadArgs::Type { .. })
            ));
            assert!(matches!(
                arg(&by, ParamType::Str, 1),
                Err(BadArgs::Type { .. })
            ));
            assert!(matches!(
                arg(&f, ParamType::Int, 2),
                Err(BadArgs::Type { index: 2, .. })
            ));
            assert!(matches!(
                arg(&s, ParamType::Long, 1),
                Err(BadArgs::Type { .. })
            ));
            let big = (1i64 << 40).into_pyobject(py).expect("int").into_any();
            assert!(matches!(
                arg(&big, ParamType::Int, 1),
                Err(BadArgs::Range { .. })
            ));
            assert_eq!(arg(&big, ParamType::Long, 1), Ok(Arg::Long(1 << 40)));
        });
    }
}
