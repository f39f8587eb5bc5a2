//! Reading a PV: [`read`] evaluates a [`PvSpec`] against the message into a [`PvValue`].
//!
//! Reads see the message as received, except the R-URI family (`$ru`, `$rU`, `$rd`, `$rp`, `$rz`)
//! and `$du`, which reflect what the script set, as in Kamailio. Integer-typed PVs (`$rs`, `$sp`,
//! `$Rp`, `$cl`, `$ml`, `$hdrc`, `$T_reply_code`, `$T_branch_idx`, `$TS`, `$Ts`, integer
//! `$var`/`$shv`/`$avp`/`$xavp` values, and `$rp` when the URI has no port) read as integers;
//! the rest, `$cs` included, read as strings.

use std::borrow::Cow;

use kemi_runtime::msg::VarValue;
use kemi_runtime::sip::text::IpText;
use kemi_runtime::sip::HeaderKind;
use kemi_runtime::SipMsg;

use super::spec::PvSpec;
use super::{auth, shv, stack, time};
use crate::uri_parts::UriParts;
use crate::view;

/// The value of a PV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvValue<'m> {
    /// No value (`$null`).
    Null,
    /// An integer.
    Int(i64),
    /// A string, borrowed from the message when possible.
    Str(Cow<'m, str>),
}

impl<'m> PvValue<'m> {
    fn opt_str(s: Option<&'m str>) -> PvValue<'m> {
        match s {
            Some(s) if !s.is_empty() => PvValue::Str(Cow::Borrowed(s)),
            _ => PvValue::Null,
        }
    }
}

/// Which URI part a `$xU`/`$xd`/`$xp` PV reads.
#[derive(Clone, Copy)]
enum UriPart {
    User,
    Host,
    Port,
    Scheme,
}

fn uri_part(uri: Option<&str>, part: UriPart) -> PvValue<'_> {
    let Some(uri) = uri else { return PvValue::Null };
    let Some(parts) = UriParts::parse(uri) else {
        return PvValue::Null;
    };
    match part {
        UriPart::User => PvValue::opt_str(Some(UriParts::part(uri, &parts.user))),
        UriPart::Host => PvValue::opt_str(Some(UriParts::part(uri, &parts.host))),
        UriPart::Scheme => PvValue::opt_str(Some(UriParts::part(uri, &parts.scheme))),
        UriPart::Port if parts.has_port => PvValue::opt_str(Some(UriParts::part(uri, &parts.port))),
        UriPart::Port => {
            let secure = UriParts::part(uri, &parts.scheme).eq_ignore_ascii_case("sips");
            PvValue::Int(if secure { 5061 } else { 5060 })
        }
    }
}

/// Evaluate `spec` against `msg`.
pub fn read<'m>(msg: &'m SipMsg, spec: &PvSpec<'_>) -> PvValue<'m> {
    let m = &msg.message;
    let ruri = view::current_ruri(msg);
    let from = || view::from_hdr(m);
    let to = || view::to_hdr(m);
    match *spec {
        PvSpec::Ruri => PvValue::opt_str(ruri),
        PvSpec::RuriUser => uri_part(ruri, UriPart::User),
        PvSpec::RuriDomain => uri_part(ruri, UriPart::Host),
        PvSpec::RuriPort => uri_part(ruri, UriPart::Port),
        PvSpec::RuriScheme => uri_part(ruri, UriPart::Scheme),
        PvSpec::OrigRuri => PvValue::opt_str(m.ruri()),
        PvSpec::DstUri => PvValue::opt_str(msg.route.dst_uri.as_deref()),
        PvSpec::FromUri => PvValue::opt_str(from().map(|f| f.uri)),
        PvSpec::FromUser => uri_part(from().map(|f| f.uri), UriPart::User),
        PvSpec::FromDomain => uri_part(from().map(|f| f.uri), UriPart::Host),
        PvSpec::FromTag => PvValue::opt_str(from().and_then(|f| f.tag)),
        PvSpec::FromName => PvValue::opt_str(from().and_then(|f| f.display)),
        PvSpec::ToUri => PvValue::opt_str(to().map(|t| t.uri)),
        PvSpec::ToUser => uri_part(to().map(|t| t.uri), UriPart::User),
        PvSpec::ToDomain => uri_part(to().map(|t| t.uri), UriPart::Host),
        PvSpec::ToTag => PvValue::opt_str(to().and_then(|t| t.tag)),
        PvSpec::ToName => PvValue::opt_str(to().and_then(|t| t.display)),
        PvSpec::CallId => PvValue::opt_str(m.call_id()),
        PvSpec::CSeq => PvValue::opt_str(view::cseq_number(m)),
        PvSpec::Method => PvValue::opt_str(view::method(m)),
        PvSpec::Status => m.status().map_or(PvValue::Null, |s| PvValue::Int(s.into())),
        PvSpec::Reason => PvValue::opt_str(m.reason()),
        PvSpec::SrcIp => PvValue::Str(Cow::Owned(
            IpText::new(msg.rcv.src.ip()).as_str().to_owned(),
        )),
        PvSpec::SrcPort => PvValue::Int(msg.rcv.src.port().into()),
        PvSpec::RcvIp => PvValue::Str(Cow::Owned(
            IpText::new(msg.rcv.dst.ip()).as_str().to_owned(),
        )),
        PvSpec::RcvPort => PvValue::Int(msg.rcv.dst.port().into()),
        PvSpec::Proto => PvValue::Str(Cow::Borrowed(msg.rcv.proto.as_str())),
        PvSpec::UserAgent => PvValue::opt_str(m.user_agent()),
        PvSpec::ContentLength => m
            .content_length()
            .map_or(PvValue::Null, |n| PvValue::Int(n.into())),
        PvSpec::Body => PvValue::Str(String::from_utf8_lossy(m.body())),
        PvSpec::MsgLen => PvValue::Int(i64::try_from(m.as_bytes().len()).unwrap_or(i64::MAX)),
        PvSpec::Header(name) => match m.first(name) {
            Some(h) => PvValue::Str(Cow::Borrowed(h.value)),
            None => PvValue::Null,
        },
        PvSpec::HeaderCount(name) => {
            PvValue::Int(i64::try_from(m.find(name).count()).unwrap_or(i64::MAX))
        }
        PvSpec::Var(name) => match msg.vars.get(name) {
            Some(VarValue::Int(n)) => PvValue::Int(*n),
            Some(VarValue::Str(s)) => PvValue::Str(Cow::Borrowed(s)),
            // Kamailio creates a `$var` on first mention with the value 0: never null.
            None => PvValue::Int(0),
        },
        PvSpec::TReplyCode => msg
            .tm
            .reply_code
            .map_or(PvValue::Null, |c| PvValue::Int(c.into())),
        PvSpec::TReplyReason => PvValue::opt_str(msg.tm.reply.as_ref().and_then(|r| r.reason())),
        PvSpec::TBranchIdx => msg
            .tm
            .branch_index
            .map_or(PvValue::Null, |i| PvValue::Int(i.into())),
        PvSpec::TReply(inner) => t_rpl(msg, inner),
        PvSpec::Version => PvValue::opt_str(Some(m.version())),
        PvSpec::Contact => PvValue::opt_str(m.first_kind(HeaderKind::Contact).map(|h| h.value)),
        PvSpec::ContentType => PvValue::opt_str(m.content_type()),
        PvSpec::AuthUser => PvValue::opt_str(auth::username(m).map(|u| auth::split_username(u).0)),
        PvSpec::AuthUsername => PvValue::opt_str(auth::username(m)),
        PvSpec::AuthDomain => {
            PvValue::opt_str(auth::username(m).and_then(|u| auth::split_username(u).1))
        }
        PvSpec::AuthRealm => PvValue::opt_str(auth::realm(m)),
        PvSpec::MsgBuf => PvValue::Str(String::from_utf8_lossy(m.as_bytes())),
        PvSpec::TimeNow => PvValue::Int(time::now()),
        PvSpec::TimeMsg => PvValue::Int(time::message_time(msg)),
        PvSpec::TimeNowText => PvValue::Str(Cow::Owned(time::ctime(time::now()))),
        PvSpec::TimeMsgText => PvValue::Str(Cow::Owned(time::ctime(time::message_time(msg)))),
        PvSpec::Shv(name) => match shv::get(name) {
            VarValue::Int(n) => PvValue::Int(n),
            VarValue::Str(s) => PvValue::Str(Cow::Owned(s)),
        },
        PvSpec::Ulc(inner) => match crate::registrar::ulc::pv_spec_get(inner) {
            crate::registrar::ulc::UlcValue::Null => PvValue::Null,
            crate::registrar::ulc::UlcValue::Int(n) => PvValue::Int(n),
            crate::registrar::ulc::UlcValue::Str(s) => PvValue::Str(Cow::Owned(s)),
        },
        PvSpec::Redis(body) => match crate::ndb_redis::pv_get(body) {
            crate::ndb_redis::PvValue::Null => PvValue::Null,
            crate::ndb_redis::PvValue::Int(n) => PvValue::Int(n),
            crate::ndb_redis::PvValue::Str(s) => PvValue::Str(Cow::Owned(s)),
        },
        PvSpec::Dlg(attr) => match crate::dialog::pv_get(msg, attr) {
            Some(crate::dialog::DlgPv::Int(n)) => PvValue::Int(n),
            Some(crate::dialog::DlgPv::Str(s)) => PvValue::Str(Cow::Owned(s)),
            None => PvValue::Null,
        },
        PvSpec::DlgVar(name) => {
            crate::dialog::pv_var(msg, name).map_or(PvValue::Null, |s| PvValue::Str(Cow::Owned(s)))
        }
        PvSpec::Avp(name) => stack::avp_get(msg, name),
        PvSpec::AvpAll(name) => stack::avp_get_all(msg, name),
        PvSpec::Xavp(ref x) => stack::xavp_get(msg, x),
        PvSpec::Sht { table, key } => {
            let key = crate::xlog::format::render(msg, key);
            match crate::htable::read(msg, table, &key) {
                Some(crate::store::HtableValue::Int(n)) => PvValue::Int(n),
                Some(crate::store::HtableValue::Str(s)) => PvValue::Str(Cow::Owned(s)),
                None => PvValue::Null,
            }
        }
    }
}

/// `$T_rpl(pv)`: `pv` read from the failure callback's reply (null without one).
fn t_rpl(msg: &SipMsg, inner: &str) -> PvValue<'static> {
    let (Some(reply), Some(spec)) = (msg.tm.reply.as_ref(), PvSpec::parse(inner)) else {
        return PvValue::Null;
    };
    let rmsg = SipMsg::new(reply.clone(), msg.rcv, std::sync::Arc::clone(&msg.env));
    match read(&rmsg, &spec) {
        PvValue::Null => PvValue::Null,
        PvValue::Int(n) => PvValue::Int(n),
        PvValue::Str(s) => PvValue::Str(Cow::Owned(s.into_owned())),
    }
}
