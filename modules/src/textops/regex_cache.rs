//! Compiled regular expressions, cached per worker thread so that a script calling
//! `textops.search("^Via:")` for every message compiles the pattern once.
//!
//! Kamailio compiles POSIX extended regexes; the `regex` crate's syntax agrees on everything
//! scripts commonly use (classes, groups, alternation, anchors, repetition), but has no
//! back-references in patterns. [`Flavor`] carries the two POSIX flags textops uses.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex::bytes::{Regex, RegexBuilder};

/// Entries per flavor before that flavor's cache is cleared (patterns built per message must
/// not grow it without bound).
const CACHE_LIMIT: usize = 256;

/// How a pattern is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flavor {
    /// `REG_ICASE`: ignore case.
    pub icase: bool,
    /// `REG_NEWLINE`: `^`/`$` match at line breaks (CRLF aware) and `.` does not match a line
    /// break. Without it `.` matches anything and `^`/`$` only the ends of the text.
    pub newline: bool,
}

impl Flavor {
    /// `REG_EXTENDED | REG_ICASE | REG_NEWLINE`: what most textops functions use.
    pub const TEXTOPS: Flavor = Flavor {
        icase: true,
        newline: true,
    };
    /// `REG_EXTENDED` alone (`regex_substring`).
    pub const PLAIN: Flavor = Flavor {
        icase: false,
        newline: false,
    };

    fn slot(self) -> usize {
        usize::from(self.icase) * 2 + usize::from(self.newline)
    }
}

thread_local! {
    static REGEXES: RefCell<[HashMap<Box<str>, Rc<Regex>>; 4]> = RefCell::new(Default::default());
}

/// The compiled form of `pattern`, from this worker's cache when it was compiled before.
pub fn compile(pattern: &str, flavor: Flavor) -> Result<Rc<Regex>, regex::Error> {
    REGEXES.with(|cell| {
        let mut maps = cell.borrow_mut();
        let Some(map) = maps.get_mut(flavor.slot()) else {
            return Err(regex::Error::Syntax("bad regex flavor".into()));
        };
        if let Some(re) = map.get(pattern) {
            return Ok(Rc::clone(re));
        }
        let re = Rc::new(
            RegexBuilder::new(pattern)
                .case_insensitive(flavor.icase)
                .multi_line(flavor.newline)
                .crlf(flavor.newline)
                .dot_matches_new_line(!flavor.newline)
                .build()?,
        );
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        map.insert(pattern.into(), Rc::clone(&re));
        Ok(re)
    })
}

/// Whether `pattern` is in this worker's cache (for tests).
pub fn is_cached(pattern: &str, flavor: Flavor) -> bool {
    REGEXES.with(|cell| {
        cell.borrow()
            .get(flavor.slot())
            .is_some_and(|m| m.contains_key(pattern))
    })
}
