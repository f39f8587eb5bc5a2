//! The `pv` sub-module (`KSR.pv.*`): read and write pseudo-variables by name.
//!
//! Known PVs: `$ru $rU $rd $rp $rz $ou $du $fu $fU $fd $ft $fn $tu $tU $td $tt $tn $ci $cs $rm
//! $rs $rr $rv $si $sp $Ri $Rp $pr $ua $ct $cT $cl $rb $ml $mb $au $aU $ad $ar $TS $Ts $TF $Tf
//! $hdr(Name) $hdrc(Name) $var(name) $shv(name) $avp(name) $(avp(name)[*]) $xavp(root)
//! $xavp(root=>field) $sht(table=>key)` and the tm ones (`$T_reply_code`, ...). Names are
//! parsed by [`spec`], read by [`value`], written by [`write`]. An unknown or malformed name is
//! logged as an error and reads as null.
//!
//! Lifetimes: `$var` is per worker (kept across messages), `$shv` is shared by every worker
//! ([`shv`]), `$avp` and `$xavp` belong to the message and go with it ([`stack`]).

pub mod auth;
pub mod shv;
pub mod spec;
pub mod stack;
pub mod time;
pub mod value;
pub mod write;

use kemi_runtime::msg::LogLevel;
use kemi_runtime::{kemi, SipMsg, Xval};

use spec::PvSpec;
use value::PvValue;
use write::Assign;

/// What a getter gives for a null value.
#[derive(Clone, Copy)]
enum NullAs {
    Null,
    Empty,
    Printed,
}

/// Parse `name`, logging an error when it is not a known PV.
fn parse<'a>(msg: &mut SipMsg, name: &'a str) -> Option<PvSpec<'a>> {
    let spec = PvSpec::parse(name);
    if spec.is_none() {
        msg.log(LogLevel::Err, &format!("invalid pv [{name}]"));
    }
    spec
}

/// The value of `name`; `None` when the name is invalid (already logged).
fn lookup<'m>(msg: &'m mut SipMsg, name: &str) -> Option<PvValue<'m>> {
    let spec = parse(msg, name)?;
    Some(value::read(msg, &spec))
}

fn to_xval(v: PvValue<'_>) -> Option<Xval> {
    match v {
        PvValue::Null => None,
        PvValue::Int(n) => Some(i32::try_from(n).map_or(Xval::Long(n), Xval::Int)),
        PvValue::Str(s) => Some(Xval::Str(s.into_owned())),
    }
}

fn get_mode(msg: &mut SipMsg, name: &str, null: NullAs) -> Xval {
    match lookup(msg, name).and_then(to_xval) {
        Some(x) => x,
        None => match null {
            NullAs::Null => Xval::Null,
            NullAs::Empty => Xval::str(""),
            NullAs::Printed => Xval::str("<null>"),
        },
    }
}

/// Leading optional sign and digits of `s` as an integer; 0 when there are none.
fn str_to_int(s: &str) -> i64 {
    s.trim().parse::<i64>().unwrap_or(0)
}

/// The value of PV `name`: an integer for integer-typed PVs (`$rs`, `$sp`, `$cl`, ...), a string
/// otherwise, or null when the PV has no value or the name is invalid.
#[kemi(module = "pv")]
pub fn get(msg: &mut SipMsg, name: &str) -> Xval {
    get_mode(msg, name, NullAs::Null)
}

/// Like `pv.get`, but gives the empty string `""` instead of null.
#[kemi(module = "pv")]
pub fn gete(msg: &mut SipMsg, name: &str) -> Xval {
    get_mode(msg, name, NullAs::Empty)
}

/// Like `pv.get`, but gives the string `"<null>"` instead of null.
#[kemi(module = "pv")]
pub fn getw(msg: &mut SipMsg, name: &str) -> Xval {
    get_mode(msg, name, NullAs::Printed)
}

/// The value of PV `name` as an integer: a string value is converted (`"101"` gives 101); null,
/// non-numeric or invalid gives 0.
#[kemi(module = "pv")]
pub fn geti(msg: &mut SipMsg, name: &str) -> i32 {
    let n = match lookup(msg, name) {
        Some(PvValue::Int(n)) => n,
        Some(PvValue::Str(s)) => str_to_int(&s),
        Some(PvValue::Null) | None => 0,
    };
    i32::try_from(n).unwrap_or(0)
}

/// The value of PV `name` as a 64-bit integer (a float in Lua): a string value is converted;
/// null, non-numeric or invalid gives 0.
#[kemi(module = "pv")]
pub fn getl(msg: &mut SipMsg, name: &str) -> Xval {
    Xval::Long(match lookup(msg, name) {
        Some(PvValue::Int(n)) => n,
        Some(PvValue::Str(s)) => str_to_int(&s),
        Some(PvValue::Null) | None => 0,
    })
}

/// The value of PV `name`, or the integer `default` when it is null or the name is invalid.
#[kemi(module = "pv")]
pub fn getvn(msg: &mut SipMsg, name: &str, default: i32) -> Xval {
    lookup(msg, name)
        .and_then(to_xval)
        .unwrap_or(Xval::Int(default))
}

/// The value of PV `name`, or the string `default` when it is null or the name is invalid.
#[kemi(module = "pv")]
pub fn getvs(msg: &mut SipMsg, name: &str, default: &str) -> Xval {
    lookup(msg, name)
        .and_then(to_xval)
        .unwrap_or_else(|| Xval::str(default))
}

fn set(msg: &mut SipMsg, name: &str, value: Assign<'_>) -> bool {
    match parse(msg, name) {
        Some(spec) => write::write(msg, &spec, name, value),
        None => false,
    }
}

/// Assign the integer `value` to PV `name`. Writable: `$ru $rU $rd $rp $du $var(x) $shv(x)
/// $avp(x) $xavp(r=>f)`. Returns false for an invalid or read-only PV.
#[kemi(module = "pv")]
pub fn seti(msg: &mut SipMsg, name: &str, value: i32) -> bool {
    set(msg, name, Assign::Int(value.into()))
}

/// Assign the 64-bit integer `value` to PV `name`. Returns false for an invalid or read-only PV.
#[kemi(module = "pv")]
pub fn setl(msg: &mut SipMsg, name: &str, value: i64) -> bool {
    set(msg, name, Assign::Int(value))
}

/// Assign the string `value` to PV `name` (`KSR.pv.sets("$ru", "sip:bob@example.com")`).
/// Returns false for an invalid or read-only PV, or a value the PV cannot take.
#[kemi(module = "pv")]
pub fn sets(msg: &mut SipMsg, name: &str, value: &str) -> bool {
    set(msg, name, Assign::Str(value))
}

/// Unset PV `name` (assign null): `$du` is cleared, `$var(x)` and `$shv(x)` go back to 0, `$rU`
/// loses its user, `$avp(x)` loses its newest value (`$(avp(x)[*])` all of them), `$xavp(r)` its
/// newest item and `$xavp(r=>f)` the newest field `f` of that item. Returns false for an
/// invalid or read-only PV.
#[kemi(module = "pv")]
pub fn unset(msg: &mut SipMsg, name: &str) -> bool {
    set(msg, name, Assign::Null)
}

/// True when PV `name` has no value, or when the name is invalid.
#[kemi(module = "pv")]
pub fn is_null(msg: &mut SipMsg, name: &str) -> bool {
    matches!(lookup(msg, name), None | Some(PvValue::Null))
}
