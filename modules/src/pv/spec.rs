//! PV name parsing: `"$ru"`, `"$hdr(X-Foo)"`, `"$var(count)"` into a [`PvSpec`]. A plain match on
//! the name: nothing is allocated, and a `$hdr`/`$var` spec borrows its inner name.

/// One pseudo-variable the modules know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvSpec<'a> {
    /// `$ru`: the Request-URI in effect.
    Ruri,
    /// `$rU`: user of the Request-URI in effect.
    RuriUser,
    /// `$rd`: host of the Request-URI in effect.
    RuriDomain,
    /// `$rp`: port of the Request-URI in effect.
    RuriPort,
    /// `$rz`: scheme of the Request-URI in effect.
    RuriScheme,
    /// `$ou`: the Request-URI as received.
    OrigRuri,
    /// `$du`: the destination URI.
    DstUri,
    /// `$fu`: From URI.
    FromUri,
    /// `$fU`: From URI user.
    FromUser,
    /// `$fd`: From URI host.
    FromDomain,
    /// `$ft`: From tag.
    FromTag,
    /// `$fn`: From display name.
    FromName,
    /// `$tu`: To URI.
    ToUri,
    /// `$tU`: To URI user.
    ToUser,
    /// `$td`: To URI host.
    ToDomain,
    /// `$tt`: To tag.
    ToTag,
    /// `$tn`: To display name.
    ToName,
    /// `$ci`: Call-ID.
    CallId,
    /// `$cs`: CSeq number.
    CSeq,
    /// `$rm`: method (the CSeq method for replies).
    Method,
    /// `$rs`: reply status code.
    Status,
    /// `$rr`: reply reason phrase.
    Reason,
    /// `$si`: source IP address.
    SrcIp,
    /// `$sp`: source port.
    SrcPort,
    /// `$Ri`: IP address of the receiving socket.
    RcvIp,
    /// `$Rp`: port of the receiving socket.
    RcvPort,
    /// `$pr` / `$proto`: transport, lower case.
    Proto,
    /// `$ua`: User-Agent header value.
    UserAgent,
    /// `$cl`: Content-Length value.
    ContentLength,
    /// `$rb`: message body.
    Body,
    /// `$ml`: length of the message as received.
    MsgLen,
    /// `$hdr(Name)`: value of the first `Name` header.
    Header(&'a str),
    /// `$hdrc(Name)`: number of `Name` headers.
    HeaderCount(&'a str),
    /// `$var(name)`: a worker-local script variable.
    Var(&'a str),
    /// `$T_reply_code`: in tm failure/onreply callbacks, the reply's status (408 for a
    /// timeout).
    TReplyCode,
    /// `$T_reply_reason`: the reason phrase of that reply.
    TReplyReason,
    /// `$T_branch_idx`: the branch a tm callback runs for.
    TBranchIdx,
    /// `$T_rpl(pv)`: `pv` evaluated on the reply a failure callback runs for (`$T_rpl($hdr(X))`).
    TReply(&'a str),
    /// `$rv`: the SIP version of the start line (`SIP/2.0`).
    Version,
    /// `$ct`: the value of the first Contact header, as written (all its comma-separated
    /// contacts).
    Contact,
    /// `$cT`: the Content-Type header value.
    ContentType,
    /// `$au`: the user part of the Digest `username` (before `@`) of the Proxy-Authorization
    /// header, else of the Authorization header.
    AuthUser,
    /// `$aU`: the whole Digest `username` of those credentials.
    AuthUsername,
    /// `$ad`: the domain part of the Digest `username` (after `@`), null without one.
    AuthDomain,
    /// `$ar`: the Digest `realm` of those credentials.
    AuthRealm,
    /// `$mb`: the whole message buffer as received.
    MsgBuf,
    /// `$TS`: the current Unix time in seconds, read anew at every use.
    TimeNow,
    /// `$Ts`: the Unix time of the message, taken at its first use and then kept.
    TimeMsg,
    /// `$TF`: the current time as `ctime` text (`Thu Nov 26 10:20:30 2020`, UTC).
    TimeNowText,
    /// `$Tf`: the time of the message (the one `$Ts` gives) as `ctime` text, UTC.
    TimeMsgText,
    /// `$shv(name)`: a value shared by all workers.
    Shv(&'a str),
    /// `$ulc(profile=>attr)` / `$(ulc(profile=>attr)[i])`: a contact fetched by
    /// `registrar.reg_fetch_contacts` (the text after `$`, parsed when read).
    Ulc(&'a str),
    /// `$redis(res=>key)`: a reply of `ndb_redis` (the text inside the parentheses).
    Redis(&'a str),
    /// `$dlg(attr)`: an attribute of the message's dialog.
    Dlg(&'a str),
    /// `$dlg_var(name)`: a variable of the message's dialog.
    DlgVar(&'a str),
    /// `$avp(name)`: the newest per-message AVP of that name.
    Avp(&'a str),
    /// `$(avp(name)[*])`: every AVP of that name (read joined by `, `, newest first; a write
    /// replaces them all; unset removes them all).
    AvpAll(&'a str),
    /// `$xavp(root)`, `$xavp(root=>field)`, with an optional root index (`root[0]`, `root[-1]`,
    /// `root[*]`).
    Xavp(XavpName<'a>),
    /// `$sht(table=>key)`: an item of an htable; `key` may hold PVs (`$sht(ipban=>$si)`),
    /// expanded at each use.
    Sht {
        /// The table.
        table: &'a str,
        /// The key, as written.
        key: &'a str,
    },
}

/// Which items of a root `$xavp` a name selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XavpIndex {
    /// No index: reads take the newest item; a set adds a new item.
    None,
    /// `[n]`: the n-th item, 0 the newest, negative counting from the oldest (-1).
    At(i32),
    /// `[*]`: every item (for unset).
    All,
}

/// A parsed `$xavp(...)` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XavpName<'a> {
    /// The root name.
    pub root: &'a str,
    /// The root index.
    pub index: XavpIndex,
    /// The field (`root=>field`), if any.
    pub field: Option<&'a str>,
}

impl<'a> XavpName<'a> {
    /// Parse the inside of `$xavp(...)`: `root`, `root[i]`, `root=>field`, `root[i]=>field`.
    pub fn parse(arg: &'a str) -> Option<XavpName<'a>> {
        let (root, field) = match arg.split_once("=>") {
            Some((r, f)) => (r, Some(f)),
            None => (arg, None),
        };
        let (root, index) = match root.split_once('[') {
            Some((r, rest)) => {
                let idx = rest.strip_suffix(']')?;
                let index = if idx == "*" {
                    XavpIndex::All
                } else {
                    XavpIndex::At(idx.parse().ok()?)
                };
                (r, index)
            }
            None => (root, XavpIndex::None),
        };
        let valid = |n: &str| !n.is_empty() && !n.contains(['[', ']', '=', '>']);
        if !valid(root) || !field.is_none_or(valid) {
            return None;
        }
        Some(XavpName { root, index, field })
    }
}

impl<'a> PvSpec<'a> {
    /// Parse a full PV name (with its `$`); `None` when it is not one this module knows.
    pub fn parse(name: &'a str) -> Option<PvSpec<'a>> {
        let inner = name.strip_prefix('$')?;
        let simple = match inner {
            "ru" => PvSpec::Ruri,
            "rU" => PvSpec::RuriUser,
            "rd" => PvSpec::RuriDomain,
            "rp" => PvSpec::RuriPort,
            "rz" => PvSpec::RuriScheme,
            "ou" => PvSpec::OrigRuri,
            "du" => PvSpec::DstUri,
            "fu" => PvSpec::FromUri,
            "fU" => PvSpec::FromUser,
            "fd" => PvSpec::FromDomain,
            "ft" => PvSpec::FromTag,
            "fn" => PvSpec::FromName,
            "tu" => PvSpec::ToUri,
            "tU" => PvSpec::ToUser,
            "td" => PvSpec::ToDomain,
            "tt" => PvSpec::ToTag,
            "tn" => PvSpec::ToName,
            "ci" => PvSpec::CallId,
            "cs" => PvSpec::CSeq,
            "rm" => PvSpec::Method,
            "rs" => PvSpec::Status,
            "rr" => PvSpec::Reason,
            "si" => PvSpec::SrcIp,
            "sp" => PvSpec::SrcPort,
            "Ri" => PvSpec::RcvIp,
            "Rp" => PvSpec::RcvPort,
            "pr" | "proto" => PvSpec::Proto,
            "ua" => PvSpec::UserAgent,
            "cl" => PvSpec::ContentLength,
            "rb" => PvSpec::Body,
            "ml" => PvSpec::MsgLen,
            "T_reply_code" => PvSpec::TReplyCode,
            "T_reply_reason" => PvSpec::TReplyReason,
            "T_branch_idx" => PvSpec::TBranchIdx,
            "rv" => PvSpec::Version,
            "ct" => PvSpec::Contact,
            "cT" => PvSpec::ContentType,
            "au" => PvSpec::AuthUser,
            "aU" => PvSpec::AuthUsername,
            "ad" => PvSpec::AuthDomain,
            "ar" => PvSpec::AuthRealm,
            "mb" => PvSpec::MsgBuf,
            "TS" => PvSpec::TimeNow,
            "Ts" => PvSpec::TimeMsg,
            "TF" => PvSpec::TimeNowText,
            "Tf" => PvSpec::TimeMsgText,
            _ => {
                if let Some(body) = inner.strip_prefix("sht(").and_then(|r| r.strip_suffix(')')) {
                    let (table, key) = body.split_once("=>")?;
                    let ok = !table.is_empty()
                        && table
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
                    return (ok && !key.is_empty()).then_some(PvSpec::Sht { table, key });
                }
                if let Some(name) = Self::avp_all(inner) {
                    return Some(PvSpec::AvpAll(name));
                }
                if let Some(body) = inner
                    .strip_prefix("redis(")
                    .and_then(|r| r.strip_suffix(')'))
                {
                    return body.contains("=>").then_some(PvSpec::Redis(body));
                }
                if let Some(attr) = inner.strip_prefix("dlg(").and_then(|r| r.strip_suffix(')')) {
                    return (!attr.is_empty()).then_some(PvSpec::Dlg(attr));
                }
                if let Some(name) = inner
                    .strip_prefix("dlg_var(")
                    .and_then(|r| r.strip_suffix(')'))
                {
                    return (!name.is_empty()).then_some(PvSpec::DlgVar(name));
                }
                if inner.starts_with("ulc(") || inner.starts_with("(ulc(") {
                    return Some(PvSpec::Ulc(inner));
                }
                if let Some(pv) = inner
                    .strip_prefix("T_rpl(")
                    .and_then(|r| r.strip_suffix(')'))
                {
                    return PvSpec::parse(pv).map(|_| PvSpec::TReply(pv));
                }
                return Self::parse_with_name(inner);
            }
        };
        Some(simple)
    }

    /// The name in `(avp(name)[*])` (from `$(avp(name)[*])`) or `avp(name)[*]` (the form xlog
    /// passes on).
    fn avp_all(inner: &'a str) -> Option<&'a str> {
        let body = inner
            .strip_prefix('(')
            .and_then(|b| b.strip_suffix(')'))
            .unwrap_or(inner);
        let name = body.strip_prefix("avp(")?.strip_suffix(")[*]")?;
        (!name.is_empty() && !name.contains(['(', ')', '$', ' ', '\t', '[', ']'])).then_some(name)
    }

    /// `hdr(Name)`, `hdrc(Name)`, `var(name)`, `shv(name)`, `avp(name)`, `xavp(...)`.
    fn parse_with_name(inner: &'a str) -> Option<PvSpec<'a>> {
        let (class, rest) = inner.split_once('(')?;
        let arg = rest.strip_suffix(')')?;
        if arg.is_empty() || arg.contains(['(', ')', '$', ' ', '\t']) {
            return None;
        }
        match class {
            "hdr" => Some(PvSpec::Header(arg)),
            "hdrc" => Some(PvSpec::HeaderCount(arg)),
            "var" => Some(PvSpec::Var(arg)),
            "shv" => Some(PvSpec::Shv(arg)),
            "avp" if !arg.contains(['[', ']']) => Some(PvSpec::Avp(arg)),
            "xavp" => XavpName::parse(arg).map(PvSpec::Xavp),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simple_and_named_pvs() {
        assert_eq!(PvSpec::parse("$ru"), Some(PvSpec::Ruri));
        assert_eq!(PvSpec::parse("$rU"), Some(PvSpec::RuriUser));
        assert_eq!(PvSpec::parse("$hdr(X-Foo)"), Some(PvSpec::Header("X-Foo")));
        assert_eq!(
            PvSpec::parse("$hdrc(Via)"),
            Some(PvSpec::HeaderCount("Via"))
        );
        assert_eq!(PvSpec::parse("$var(n)"), Some(PvSpec::Var("n")));
        assert_eq!(PvSpec::parse("$shv(n)"), Some(PvSpec::Shv("n")));
        assert_eq!(PvSpec::parse("$avp(n)"), Some(PvSpec::Avp("n")));
        assert_eq!(PvSpec::parse("$(avp(n)[*])"), Some(PvSpec::AvpAll("n")));
        assert_eq!(PvSpec::parse("$avp(n)[*]"), Some(PvSpec::AvpAll("n")));
        assert_eq!(PvSpec::parse("$rv"), Some(PvSpec::Version));
        assert_eq!(PvSpec::parse("$Ts"), Some(PvSpec::TimeMsg));
        assert_eq!(PvSpec::parse("$TS"), Some(PvSpec::TimeNow));
        assert_eq!(
            PvSpec::parse("$sht(ipban=>$si)"),
            Some(PvSpec::Sht {
                table: "ipban",
                key: "$si"
            })
        );
        assert_eq!(PvSpec::parse("$sht(ipban)"), None);
        assert_eq!(PvSpec::parse("$sht(=>k)"), None);
    }

    #[test]
    fn parses_xavp_names() {
        let x = |root, index, field| Some(PvSpec::Xavp(XavpName { root, index, field }));
        assert_eq!(PvSpec::parse("$xavp(r)"), x("r", XavpIndex::None, None));
        assert_eq!(
            PvSpec::parse("$xavp(r=>f)"),
            x("r", XavpIndex::None, Some("f"))
        );
        assert_eq!(
            PvSpec::parse("$xavp(r[0]=>f)"),
            x("r", XavpIndex::At(0), Some("f"))
        );
        assert_eq!(
            PvSpec::parse("$xavp(r[-1])"),
            x("r", XavpIndex::At(-1), None)
        );
        assert_eq!(PvSpec::parse("$xavp(r[*])"), x("r", XavpIndex::All, None));
        for bad in [
            "$xavp(=>f)",
            "$xavp(r=>)",
            "$xavp(r[x]=>f)",
            "$xavp(r[0)",
            "$xavp(r=>f[0])",
            "$xavp(r=>f=>g)",
            "$avp(x[0])",
            "$(avp()[*])",
        ] {
            assert_eq!(PvSpec::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for bad in [
            "ru",
            "$",
            "$xyz",
            "$hdr()",
            "$hdr(X",
            "$var(a b)",
            "$foo(x)",
            "$ru ",
        ] {
            assert_eq!(PvSpec::parse(bad), None, "{bad}");
        }
    }
}
