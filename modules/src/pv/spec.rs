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
            _ => {
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

    /// `hdr(Name)`, `hdrc(Name)`, `var(name)`.
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
