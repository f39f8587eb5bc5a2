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
#[inline]
pub(crate) const fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
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
    fn unfold_joins_continuations_with_one_space() {
        assert_eq!(unfold("a\r\n  b\r\n\tc"), "a b c");
        assert!(matches!(unfold("plain"), Cow::Borrowed("plain")));
    }
}
