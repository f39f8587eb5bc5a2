//! Which strings scripts can write after `KSR.` as a module or function name.
//!
//! A name must be an ASCII identifier (`[A-Za-z_][A-Za-z0-9_]*`) and must not be a reserved word
//! of a language whose engine exposes `KSR`: `KSR.m.end` does not parse in Lua, nor `KSR.m.class`
//! in Python. JavaScript allows reserved words after a dot, but scripts are shared between
//! languages, so its reserved words are refused too.

/// Reserved words of Lua 5.4 (LuaJIT, the engine's Lua, reserves the same, `goto` included).
const LUA: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// Reserved words of JavaScript (ECMAScript 2015+, strict mode included).
const JS: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Hard keywords of Python 3.
const PYTHON: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Why a string cannot be a script name.
#[derive(Debug, PartialEq, Eq)]
pub enum NameProblem {
    /// The string is empty.
    Empty,
    /// It is not `[A-Za-z_][A-Za-z0-9_]*`.
    NotIdentifier,
    /// It is reserved in these languages (display names, in a fixed order).
    Reserved(Vec<&'static str>),
}

/// Check one module or function name.
pub fn check(name: &str) -> Result<(), NameProblem> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(NameProblem::Empty),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        Some(_) => return Err(NameProblem::NotIdentifier),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(NameProblem::NotIdentifier);
    }
    let reserved_in: Vec<&'static str> = [("Lua", LUA), ("JavaScript", JS), ("Python", PYTHON)]
        .into_iter()
        .filter(|(_, words)| words.contains(&name))
        .map(|(lang, _)| lang)
        .collect();
    if reserved_in.is_empty() {
        Ok(())
    } else {
        Err(NameProblem::Reserved(reserved_in))
    }
}

#[cfg(test)]
mod tests {
    use super::{check, NameProblem};

    #[test]
    fn identifiers_pass() {
        for ok in [
            "setflag",
            "_x",
            "is_method",
            "t_relay2",
            "A",
            "_",
            "match",
            "print",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn non_identifiers_fail() {
        assert_eq!(check(""), Err(NameProblem::Empty));
        for bad in ["1abc", "a-b", "a.b", "a b", "é", "x\u{0}"] {
            assert_eq!(check(bad), Err(NameProblem::NotIdentifier), "{bad}");
        }
    }

    #[test]
    fn keywords_name_their_languages() {
        assert_eq!(check("end"), Err(NameProblem::Reserved(vec!["Lua"])));
        assert_eq!(
            check("class"),
            Err(NameProblem::Reserved(vec!["JavaScript", "Python"]))
        );
        assert_eq!(
            check("return"),
            Err(NameProblem::Reserved(vec!["Lua", "JavaScript", "Python"]))
        );
        assert_eq!(check("None"), Err(NameProblem::Reserved(vec!["Python"])));
        assert_eq!(check("none"), Ok(()));
    }
}
