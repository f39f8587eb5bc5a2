//! Header names and the borrowed view of one header line: [`HeaderKind`] (the common headers,
//! compact forms folded onto long ones) and [`HeaderRef`]. Value grammars live in their own
//! modules (`via`, `name_addr`, `value`).

use std::borrow::Cow;

macro_rules! header_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal $(, $compact:literal)? ; )*) => {
        /// The headers the model knows by name. Compact forms map to their long form
        /// (`v` is [`HeaderKind::Via`]); anything else is [`HeaderKind::Other`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum HeaderKind {
            $( $(#[$doc])* $variant, )*
            /// Any other header: compare it by name.
            Other,
        }

        impl HeaderKind {
            /// Every known kind (not [`HeaderKind::Other`]).
            pub const ALL: &'static [HeaderKind] = &[$(HeaderKind::$variant,)*];

            /// The canonical long name (`Call-ID`); `""` for [`HeaderKind::Other`].
            pub const fn name(self) -> &'static str {
                match self {
                    $(HeaderKind::$variant => $name,)*
                    HeaderKind::Other => "",
                }
            }

            /// The compact form (RFC 3261 7.3.3 and later RFCs), if there is one.
            pub const fn compact(self) -> Option<u8> {
                match self {
                    $($(HeaderKind::$variant => Some($compact),)?)*
                    _ => None,
                }
            }

            /// Classify a header name: case-insensitive, compact forms included.
            ///
            /// ```
            /// use kemi_runtime::sip::HeaderKind;
            /// assert_eq!(HeaderKind::from_name("i"), HeaderKind::CallId);
            /// assert_eq!(HeaderKind::from_name("CALL-id"), HeaderKind::CallId);
            /// assert_eq!(HeaderKind::from_name("X-Foo"), HeaderKind::Other);
            /// ```
            pub fn from_name(name: &str) -> HeaderKind {
                HeaderKind::from_bytes(name.as_bytes())
            }

            /// [`HeaderKind::from_name`] the plain way: every known name compared in turn.
            /// The reference the fast classifier is tested against.
            #[cfg(test)]
            fn from_name_slow(name: &str) -> HeaderKind {
                let b = name.as_bytes();
                if let [c] = b {
                    return match c.to_ascii_lowercase() {
                        $($($compact => HeaderKind::$variant,)?)*
                        _ => HeaderKind::Other,
                    };
                }
                $(
                    if b.len() == $name.len() && b.eq_ignore_ascii_case($name.as_bytes()) {
                        return HeaderKind::$variant;
                    }
                )*
                HeaderKind::Other
            }
        }

        /// The kind of a compact (one-letter) name, given lower-cased.
        fn compact_kind(c: u8) -> HeaderKind {
            match c {
                $($($compact => HeaderKind::$variant,)?)*
                _ => HeaderKind::Other,
            }
        }
    };
}

header_kinds! {
    /// `Via` (`v`).
    Via = "Via", b'v';
    /// `From` (`f`).
    From = "From", b'f';
    /// `To` (`t`).
    To = "To", b't';
    /// `Call-ID` (`i`).
    CallId = "Call-ID", b'i';
    /// `CSeq`.
    CSeq = "CSeq";
    /// `Contact` (`m`).
    Contact = "Contact", b'm';
    /// `Content-Length` (`l`).
    ContentLength = "Content-Length", b'l';
    /// `Content-Type` (`c`).
    ContentType = "Content-Type", b'c';
    /// `Max-Forwards`.
    MaxForwards = "Max-Forwards";
    /// `Route`.
    Route = "Route";
    /// `Record-Route`.
    RecordRoute = "Record-Route";
    /// `Supported` (`k`).
    Supported = "Supported", b'k';
    /// `Require`.
    Require = "Require";
    /// `Proxy-Require`.
    ProxyRequire = "Proxy-Require";
    /// `Unsupported`.
    Unsupported = "Unsupported";
    /// `Allow`.
    Allow = "Allow";
    /// `Expires`.
    Expires = "Expires";
    /// `User-Agent`.
    UserAgent = "User-Agent";
    /// `Server`.
    Server = "Server";
    /// `Subject` (`s`).
    Subject = "Subject", b's';
    /// `Content-Encoding` (`e`).
    ContentEncoding = "Content-Encoding", b'e';
    /// `Event` (`o`).
    Event = "Event", b'o';
    /// `Refer-To` (`r`).
    ReferTo = "Refer-To", b'r';
    /// `Referred-By` (`b`).
    ReferredBy = "Referred-By", b'b';
    /// `Session-Expires` (`x`).
    SessionExpires = "Session-Expires", b'x';
    /// `Allow-Events` (`u`).
    AllowEvents = "Allow-Events", b'u';
    /// `Accept-Contact` (`a`).
    AcceptContact = "Accept-Contact", b'a';
    /// `Reject-Contact` (`j`).
    RejectContact = "Reject-Contact", b'j';
    /// `Request-Disposition` (`d`).
    RequestDisposition = "Request-Disposition", b'd';
    /// `Identity` (`y`).
    Identity = "Identity", b'y';
    /// `Identity-Info` (`n`).
    IdentityInfo = "Identity-Info", b'n';
    /// `Accept`.
    Accept = "Accept";
    /// `Authorization`.
    Authorization = "Authorization";
    /// `Proxy-Authorization`.
    ProxyAuthorization = "Proxy-Authorization";
    /// `WWW-Authenticate`.
    WwwAuthenticate = "WWW-Authenticate";
    /// `Proxy-Authenticate`.
    ProxyAuthenticate = "Proxy-Authenticate";
    /// `Date`.
    Date = "Date";
    /// `Min-Expires`.
    MinExpires = "Min-Expires";
    /// `Retry-After`.
    RetryAfter = "Retry-After";
    /// `Path`.
    Path = "Path";
    /// `Privacy`.
    Privacy = "Privacy";
    /// `P-Asserted-Identity`.
    PAssertedIdentity = "P-Asserted-Identity";
    /// `Diversion`.
    Diversion = "Diversion";
    /// `Warning`.
    Warning = "Warning";
}

impl HeaderKind {
    /// Whether this header may carry several comma-separated values in one line.
    pub const fn is_list(self) -> bool {
        matches!(
            self,
            HeaderKind::Via
                | HeaderKind::Contact
                | HeaderKind::Route
                | HeaderKind::RecordRoute
                | HeaderKind::Supported
                | HeaderKind::Require
                | HeaderKind::ProxyRequire
                | HeaderKind::Unsupported
                | HeaderKind::Allow
                | HeaderKind::Accept
                | HeaderKind::AllowEvents
                | HeaderKind::Path
        )
    }
}

/// A borrowed view of one header of a [`Message`](super::Message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// Position among the message's headers (0 = first header after the start line); the
    /// index [`HeaderEdit`](super::HeaderEdit)s refer to.
    pub index: usize,
    /// The name as written (`v`, `VIA`...).
    pub name: &'a str,
    /// The value as written, trimmed of surrounding LWS. A folded value still contains its
    /// CRLF + whitespace continuations; see [`HeaderRef::unfolded`].
    pub value: &'a str,
    /// What header this is.
    pub kind: HeaderKind,
    /// The whole line(s), name to line end, including the final CRLF (or bare LF).
    pub line: &'a str,
}

impl<'a> HeaderRef<'a> {
    /// Whether the value spans continuation lines.
    pub fn is_folded(&self) -> bool {
        self.value.contains('\n')
    }

    /// The value with each line break and the whitespace around it replaced by one space;
    /// allocates only when the value is folded.
    ///
    /// ```
    /// use kemi_runtime::sip::Message;
    /// let m = Message::parse("OPTIONS sip:a@b SIP/2.0\r\nSubject: a\r\n  b\r\n\r\n".into()).unwrap();
    /// assert_eq!(m.first("s").unwrap().unfolded(), "a b");
    /// ```
    pub fn unfolded(&self) -> Cow<'a, str> {
        unfold(self.value)
    }

    /// Whether the header's name is `name` (case-insensitive, compact forms equal long ones).
    pub fn is(&self, name: &str) -> bool {
        name_matches(self.kind, self.name, HeaderKind::from_name(name), name)
    }
}

/// Replace every line break in `value`, with the whitespace around it, by one space.
pub fn unfold(value: &str) -> Cow<'_, str> {
    if !value.contains('\n') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    for (i, line) in value.split('\n').enumerate() {
        let line = line.trim_end_matches(['\r', ' ', '\t']);
        let line = if i == 0 {
            line
        } else {
            line.trim_start_matches([' ', '\t'])
        };
        if i > 0 && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line);
    }
    Cow::Owned(out)
}

/// Whether a header of `kind` named `name` matches a query classified as `qkind` named `query`.
pub(crate) fn name_matches(kind: HeaderKind, name: &str, qkind: HeaderKind, query: &str) -> bool {
    if qkind == HeaderKind::Other {
        kind == HeaderKind::Other && name.eq_ignore_ascii_case(query)
    } else {
        kind == qkind
    }
}

/// RFC 3261 `token` characters (header names, methods, transports, param names).
const fn is_token_char_slow(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// [`is_token_char_slow`] for every byte, computed at compile time.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = is_token_char_slow(i as u8);
        i += 1;
    }
    t
};

/// RFC 3261 `token` characters (header names, methods, transports, param names): one table
/// lookup.
#[inline]
pub(crate) fn is_token_char(c: u8) -> bool {
    TOKEN[c as usize]
}

impl HeaderKind {
    /// Classify a header name given as bytes (case-insensitive, compact forms included):
    /// dispatch on the length and the first letter, then one comparison.
    pub fn from_bytes(b: &[u8]) -> HeaderKind {
        use HeaderKind as H;
        let Some(&first) = b.first() else {
            return H::Other;
        };
        let f = first.to_ascii_lowercase();
        let k = match (b.len(), f) {
            (1, _) => return compact_kind(f),
            (2, b't') => H::To,
            (3, b'v') => H::Via,
            (4, b'f') => H::From,
            (4, b'c') => H::CSeq,
            (4, b'd') => H::Date,
            (4, b'p') => H::Path,
            (5, b'r') => H::Route,
            (5, b'a') => H::Allow,
            (5, b'e') => H::Event,
            (6, b'a') => H::Accept,
            (6, b's') => H::Server,
            (7, b'c') => match b.get(1).map(u8::to_ascii_lowercase) {
                Some(b'a') => H::CallId,
                _ => H::Contact,
            },
            (7, b'e') => H::Expires,
            (7, b'r') => H::Require,
            (7, b's') => H::Subject,
            (7, b'w') => H::Warning,
            (7, b'p') => H::Privacy,
            (8, b'r') => H::ReferTo,
            (8, b'i') => H::Identity,
            (9, b's') => H::Supported,
            (9, b'd') => H::Diversion,
            (10, b'u') => H::UserAgent,
            (11, b'u') => H::Unsupported,
            (11, b'r') => match b.get(2).map(u8::to_ascii_lowercase) {
                Some(b'f') => H::ReferredBy,
                _ => H::RetryAfter,
            },
            (11, b'm') => H::MinExpires,
            (12, b'm') => H::MaxForwards,
            (12, b'r') => H::RecordRoute,
            (12, b'c') => H::ContentType,
            (12, b'a') => H::AllowEvents,
            (13, b'p') => H::ProxyRequire,
            (13, b'i') => H::IdentityInfo,
            (13, b'a') => H::Authorization,
            (14, b'c') => H::ContentLength,
            (14, b'a') => H::AcceptContact,
            (14, b'r') => H::RejectContact,
            (15, b's') => H::SessionExpires,
            (16, b'c') => H::ContentEncoding,
            (16, b'w') => H::WwwAuthenticate,
            (18, b'p') => H::ProxyAuthenticate,
            (19, b'r') => H::RequestDisposition,
            (19, b'p') => match b.get(6).map(u8::to_ascii_lowercase) {
                Some(b'a') => H::ProxyAuthorization,
                _ => H::PAssertedIdentity,
            },
            _ => return H::Other,
        };
        if fold_eq(b, k.name().as_bytes()) {
            k
        } else {
            H::Other
        }
    }
}

/// `b.eq_ignore_ascii_case(name)` for a `name` made of ASCII letters and `-` (every known
/// header name), a word at a time: a letter of `name` matches its two cases (the byte ORed with
/// 0x20), a `-` only itself. Exact for any `b`.
#[inline]
fn fold_eq(b: &[u8], name: &[u8]) -> bool {
    let n = name.len();
    if b.len() != n {
        return false;
    }
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if !fold_eq_word(b, name, i) {
                return false;
            }
            i += 8;
        }
        fold_eq_word(b, name, n - 8)
    } else if n >= 4 {
        fold_eq_half(b, name, 0) && fold_eq_half(b, name, n - 4)
    } else {
        b.eq_ignore_ascii_case(name)
    }
}

/// [`fold_eq`] on the 8 bytes at `at` (both slices hold them).
#[inline]
fn fold_eq_word(b: &[u8], name: &[u8], at: usize) -> bool {
    let word = |s: &[u8]| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let (x, y) = (word(b), word(name));
    // 0x20 where `name` has a letter (bit 0x40 set; `-` is 0x2d).
    let m = (y & 0x4040_4040_4040_4040) >> 1;
    (x | m) == (y | m)
}

/// [`fold_eq`] on the 4 bytes at `at` (both slices hold them).
#[inline]
fn fold_eq_half(b: &[u8], name: &[u8], at: usize) -> bool {
    let word = |s: &[u8]| {
        s.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_le_bytes)
    };
    let (x, y) = (word(b), word(name));
    let m = (y & 0x4040_4040) >> 1;
    (x | m) == (y | m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compact_form_maps_to_its_long_name() {
        for (c, long) in [
            ("v", "Via"),
            ("f", "From"),
            ("t", "To"),
            ("i", "Call-ID"),
            ("m", "Contact"),
            ("l", "Content-Length"),
            ("c", "Content-Type"),
            ("k", "Supported"),
            ("s", "Subject"),
            ("e", "Content-Encoding"),
            ("o", "Event"),
            ("r", "Refer-To"),
            ("b", "Referred-By"),
            ("x", "Session-Expires"),
            ("u", "Allow-Events"),
            ("a", "Accept-Contact"),
            ("j", "Reject-Contact"),
            ("d", "Request-Disposition"),
            ("y", "Identity"),
            ("n", "Identity-Info"),
        ] {
            let k = HeaderKind::from_name(c);
            assert_eq!(k, HeaderKind::from_name(long), "{c}");
            assert_eq!(k, HeaderKind::from_name(&c.to_uppercase()), "{c}");
            assert_eq!(k.name(), long);
            assert_ne!(k, HeaderKind::Other);
        }
        assert_eq!(HeaderKind::from_name("q"), HeaderKind::Other);
    }

    #[test]
    fn known_names_are_letters_and_dashes() {
        // What `fold_eq` relies on.
        for k in HeaderKind::ALL {
            assert!(
                k.name()
                    .bytes()
                    .all(|c| c.is_ascii_alphabetic() || c == b'-'),
                "{}",
                k.name()
            );
        }
    }

    #[test]
    fn word_compare_is_exact_for_every_byte() {
        // Every known name with one byte replaced by each of the 256 values: the word-at-a-time
        // compare agrees with `eq_ignore_ascii_case`.
        for k in HeaderKind::ALL {
            let name = k.name().as_bytes();
            for at in 0..name.len() {
                let mut b = name.to_vec();
                for c in 0u8..=255 {
                    b[at] = c;
                    assert_eq!(
                        fold_eq(&b, name),
                        b.eq_ignore_ascii_case(name),
                        "{} with {c:#x} at {at}",
                        k.name()
                    );
                }
            }
        }
    }

    #[test]
    fn fast_classifier_matches_the_plain_one() {
        let mut names: Vec<String> = Vec::new();
        for k in HeaderKind::ALL {
            let n = k.name();
            names.push(n.to_string());
            names.push(n.to_lowercase());
            names.push(n.to_uppercase());
            // Same length and first letter, one letter changed: never a known header.
            let mut other = n.to_lowercase().into_bytes();
            if let Some(last) = other.last_mut() {
                *last = if *last == b'q' { b'z' } else { b'q' };
            }
            names.push(String::from_utf8(other).unwrap());
            names.push(format!("{n}x"));
            names.push(n[..n.len() - 1].to_string());
        }
        for c in 0u8..=255 {
            names.push(String::from_utf8_lossy(&[c]).into_owned());
        }
        names.extend(
            [
                "",
                "X-Bench",
                "P-Called-Party-ID",
                "Proxy-Authorizatiom",
                "Ca",
                "Rv",
            ]
            .map(String::from),
        );
        for n in &names {
            assert_eq!(
                HeaderKind::from_name(n),
                HeaderKind::from_name_slow(n),
                "{n:?}"
            );
        }
        for c in 0u8..=255 {
            assert_eq!(is_token_char(c), is_token_char_slow(c), "{c}");
        }
    }

    #[test]
    fn unfold_joins_continuations_with_one_space() {
        assert_eq!(unfold("a\r\n  b\r\n\tc"), "a b c");
        assert!(matches!(unfold("plain"), Cow::Borrowed("plain")));
    }
}
