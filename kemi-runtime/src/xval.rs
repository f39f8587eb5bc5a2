//! [`Xval`]: the result of value-returning exports (Kamailio's `sr_kemi_xval_t`).

/// A value returned by an `xval` export.
///
/// Engines convert it as `kemi-reference.md` §2.2 says: for Lua, `Long` becomes a float, `Null`
/// becomes `nil`, `None` becomes no value at all, arrays and dicts become tables.
#[derive(Clone, Debug, PartialEq)]
pub enum Xval {
    /// No value: the call evaluates to nothing.
    None,
    /// The null value (`nil`, `null`, `None`).
    Null,
    /// A 32-bit integer.
    Int(i32),
    /// A 64-bit integer.
    Long(i64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// An ordered list.
    Array(Vec<Xval>),
    /// Named items, in order.
    Dict(Vec<(String, Xval)>),
}

impl Xval {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        Xval::Str(s.into())
    }
}

impl From<&str> for Xval {
    fn from(s: &str) -> Self {
        Xval::Str(s.to_string())
    }
}

impl From<String> for Xval {
    fn from(s: String) -> Self {
        Xval::Str(s)
    }
}

impl From<i32> for Xval {
    fn from(n: i32) -> Self {
        Xval::Int(n)
    }
}
