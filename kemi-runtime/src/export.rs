//! Export descriptors: what `#[kemi]` emits for one function, and the traits that classify the
//! Rust parameter and return types of an export into KEMI's kinds.
//!
//! An engine converts script values into [`Arg`]s following the declared [`ParamType`]s, then calls
//! the export's uniform [`Trampoline`]; the trampoline unpacks the arguments and calls the plain Rust
//! function. Nothing here knows about any particular scripting language.

use crate::{SipMsg, Xval};

/// Kind of one export parameter (`SR_KEMIP_INT`, `SR_KEMIP_STR`, `SR_KEMIP_LONG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// A 32-bit integer (`i32`).
    Int,
    /// A string (`&str`).
    Str,
    /// A 64-bit integer (`i64`); only valid as the second parameter after a `str` (`pv.setl`).
    Long,
}

impl ParamType {
    /// The type name used by `api_list` and the editor stubs.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParamType::Int => "int",
            ParamType::Str => "str",
            ParamType::Long => "long",
        }
    }
}

/// Result kind of an export (`SR_KEMIP_NONE`, `_INT`, `_BOOL`, `_XVAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetType {
    /// No value (`()`): the logging functions and `set_drop`.
    None,
    /// An `i32` with the native convention: `>0` true, `<0` false, `0` "stop" (handed to the script).
    Int,
    /// A boolean.
    Bool,
    /// A value of any kind ([`Xval`]).
    Xval,
}

impl RetType {
    /// The type name used by `api_list` and the editor stubs.
    pub const fn as_str(self) -> &'static str {
        match self {
            RetType::None => "none",
            RetType::Int => "int",
            RetType::Bool => "bool",
            RetType::Xval => "xval",
        }
    }
}

/// One argument, already converted by the engine to the declared [`ParamType`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a> {
    /// An `int` argument.
    Int(i32),
    /// A `str` argument.
    Str(&'a str),
    /// A `long` argument.
    Long(i64),
}

/// Why a trampoline refused its arguments. Engines turn this into the script-visible `false` that
/// Kamailio gives for invalid parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// The number of arguments differs from the declared parameter count.
    #[error("expected {expected} arguments, got {got}")]
    Count {
        /// Declared parameter count.
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// Argument `index` (0-based) is not of its declared kind.
    #[error("argument {index} has the wrong type")]
    Type {
        /// 0-based position of the offending argument.
        index: usize,
    },
}

/// The value an export returned, tagged by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum KemiRet {
    /// The export returns nothing.
    None,
    /// An `int` result.
    Int(i32),
    /// A `bool` result.
    Bool(bool),
    /// A value result.
    Xval(Xval),
}

/// The uniform entry point of one export: unpack `args` and call the Rust function.
pub type Trampoline = fn(&mut SipMsg, &[Arg<'_>]) -> Result<KemiRet, ArgError>;

/// The static descriptor of one exported function (Kamailio's `sr_kemi_t`).
///
/// Created only by `#[kemi]`; collected at link time and indexed by [`crate::ExportTable`].
#[derive(Debug)]
pub struct KemiExport {
    /// Sub-module name (`""` for core exports, which scripts reach as `KSR.<name>`).
    pub module: &'static str,
    /// Function name as scripts see it.
    pub name: &'static str,
    /// Result kind.
    pub ret: RetType,
    /// Parameter kinds, in order (at most six).
    pub params: &'static [ParamType],
    /// Parameter names as written in the Rust function, for listings and editor stubs.
    pub param_names: &'static [&'static str],
    /// The Rust doc comment of the function, for `api_list` and editor stubs.
    pub doc: &'static str,
    /// The uniform trampoline.
    pub call: Trampoline,
    /// Source file of the export, for diagnostics.
    pub file: &'static str,
    /// Source line of the export, for diagnostics.
    pub line: u32,
}

impl KemiExport {
    /// `module.name`, or just `name` for a core export.
    pub fn qualified_name(&self) -> String {
        if self.module.is_empty() {
            self.name.to_string()
        } else {
            format!("{}.{}", self.module, self.name)
        }
    }
}

/// A Rust type that can be a parameter of an export (after the context parameter).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a KEMI parameter",
    label = "KEMI parameters are `i32` (int), `&str` (str), or `i64` (long, only in `(&str, i64)`)"
)]
pub trait KemiParam<'a>: Sized {
    /// The declared kind.
    const TYPE: ParamType;
    /// Extract the value from an engine-converted argument.
    fn from_arg(arg: &Arg<'a>, index: usize) -> Result<Self, ArgError>;
}

impl<'a> KemiParam<'a> for i32 {
    const TYPE: ParamType = ParamType::Int;
    #[inline]
    fn from_arg(arg: &Arg<'a>, index: usize) -> Result<Self, ArgError> {
        match *arg {
            Arg::Int(v) => Ok(v),
            _ => Err(ArgError::Type { index }),
        }
    }
}

impl<'a> KemiParam<'a> for &'a str {
    const TYPE: ParamType = ParamType::Str;
    #[inline]
    fn from_arg(arg: &Arg<'a>, index: usize) -> Result<Self, ArgError> {
        match *arg {
            Arg::Str(v) => Ok(v),
            _ => Err(ArgError::Type { index }),
        }
    }
}

impl<'a> KemiParam<'a> for i64 {
    const TYPE: ParamType = ParamType::Long;
    #[inline]
    fn from_arg(arg: &Arg<'a>, index: usize) -> Result<Self, ArgError> {
        match *arg {
            Arg::Long(v) => Ok(v),
            _ => Err(ArgError::Type { index }),
        }
    }
}

/// A Rust type that can be the return type of an export.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a KEMI return type",
    label = "KEMI exports return `i32` (int), `bool`, `()` (none) or `Xval` (a value)"
)]
pub trait KemiReturn {
    /// The declared kind.
    const TYPE: RetType;
    /// Tag the value with its kind.
    fn into_ret(self) -> KemiRet;
}

impl KemiReturn for i32 {
    const TYPE: RetType = RetType::Int;
    #[inline]
    fn into_ret(self) -> KemiRet {
        KemiRet::Int(self)
    }
}

impl KemiReturn for bool {
    const TYPE: RetType = RetType::Bool;
    #[inline]
    fn into_ret(self) -> KemiRet {
        KemiRet::Bool(self)
    }
}

impl KemiReturn for () {
    const TYPE: RetType = RetType::None;
    #[inline]
    fn into_ret(self) -> KemiRet {
        KemiRet::None
    }
}

impl KemiReturn for Xval {
    const TYPE: RetType = RetType::Xval;
    #[inline]
    fn into_ret(self) -> KemiRet {
        KemiRet::Xval(self)
    }
}
