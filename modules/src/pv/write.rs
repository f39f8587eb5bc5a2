//! Writing a PV: [`write`] assigns a value to a writable [`PvSpec`]: the R-URI family (`$ru`,
//! `$rU`, `$rd`, `$rp`), `$du`, `$var(name)`, `$shv(name)`, `$avp(name)` (and
//! `$(avp(name)[*])`) and `$xavp(...)`. Everything else is read-only here.

use kemi_runtime::msg::{LogLevel, VarValue};
use kemi_runtime::SipMsg;

use super::spec::PvSpec;
use super::{shv, stack};
use crate::core::uri::{set_ruri, set_ruri_part, RuriPart};

/// A value to assign (`$null` is [`Assign::Null`], as `pv.unset` does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assign<'a> {
    /// Unset.
    Null,
    /// An integer.
    Int(i64),
    /// A string.
    Str(&'a str),
}

/// Assign `value` to `spec`; false (logged) when the PV is read-only or the value does not fit.
pub fn write(msg: &mut SipMsg, spec: &PvSpec<'_>, name: &str, value: Assign<'_>) -> bool {
    let mut digits = itoa_buf();
    let text = match value {
        Assign::Null => None,
        Assign::Int(n) => Some(fmt_int(&mut digits, n)),
        Assign::Str(s) => Some(s),
    };
    match (*spec, text) {
        (PvSpec::Ruri, Some(uri)) => set_ruri(msg, uri),
        (PvSpec::RuriUser, user) => set_ruri_part(msg, RuriPart::User, user.unwrap_or("")),
        (PvSpec::RuriDomain, Some(host)) => set_ruri_part(msg, RuriPart::Host, host),
        (PvSpec::RuriPort, port) => {
            let port = port.unwrap_or("");
            if !port.is_empty() && port.parse::<u16>().is_err() {
                msg.log(LogLevel::Err, &format!("invalid port [{port}] for {name}"));
                return false;
            }
            set_ruri_part(msg, RuriPart::Port, port)
        }
        (PvSpec::DstUri, Some(uri)) if !uri.is_empty() => {
            msg.route.dst_uri = Some(uri.to_string());
            true
        }
        (PvSpec::DstUri, _) => {
            msg.route.dst_uri = None;
            true
        }
        (PvSpec::Var(var), _) => {
            set_var(msg, var, value);
            true
        }
        (PvSpec::Shv(var), _) => {
            shv::set(var, to_var(value));
            true
        }
        (PvSpec::Avp(avp), _) => {
            stack::avp_set(msg, avp, false, to_var(value));
            true
        }
        (PvSpec::AvpAll(avp), _) => {
            stack::avp_set(msg, avp, true, to_var(value));
            true
        }
        (PvSpec::Sht { table, key }, _) => {
            let key = crate::xlog::format::render(msg, key);
            let value = match value {
                Assign::Null => None,
                Assign::Int(n) => Some(crate::store::HtableValue::Int(n)),
                Assign::Str(s) => Some(crate::store::HtableValue::Str(s.to_string())),
            };
            crate::htable::write(msg, table, &key, value)
        }
        (PvSpec::DlgVar(var), _) => {
            let ok = crate::dialog::pv_set_var(msg, var, text);
            if !ok {
                msg.log(LogLevel::Err, &format!("cannot set {name}: no dialog"));
            }
            ok
        }
        (PvSpec::Xavp(ref x), _) => {
            let ok = stack::xavp_set(msg, x, to_var(value));
            if !ok {
                msg.log(
                    LogLevel::Err,
                    &format!("cannot set {name}: no such xavp item or not a field list"),
                );
            }
            ok
        }
        _ => {
            msg.log(
                LogLevel::Err,
                &format!("cannot set {name}: not writable or bad value"),
            );
            false
        }
    }
}

/// The stored form of `value`; `None` for [`Assign::Null`].
fn to_var(value: Assign<'_>) -> Option<VarValue> {
    match value {
        Assign::Null => None,
        Assign::Int(n) => Some(VarValue::Int(n)),
        Assign::Str(s) => Some(VarValue::Str(s.to_string())),
    }
}

/// `$var(name) = value`; `Null` resets it to 0, as Kamailio does.
fn set_var(msg: &mut SipMsg, var: &str, value: Assign<'_>) {
    let new = match value {
        Assign::Null => {
            msg.vars.remove(var);
            return;
        }
        Assign::Int(n) => VarValue::Int(n),
        Assign::Str(s) => VarValue::Str(s.to_string()),
    };
    match msg.vars.get_mut(var) {
        Some(slot) => *slot = new,
        None => {
            msg.vars.insert(var.to_string(), new);
        }
    }
}

/// Room for the decimal text of any `i64`.
type DigitBuf = [u8; 20];

fn itoa_buf() -> DigitBuf {
    [0; 20]
}

/// Format `n` into `buf` without allocating.
fn fmt_int(buf: &mut DigitBuf, n: i64) -> &str {
    let mut pos = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        pos -= 1;
        if let Some(b) = buf.get_mut(pos) {
            *b = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || pos == 1 {
            break;
        }
    }
    if n < 0 {
        pos -= 1;
        if let Some(b) = buf.get_mut(pos) {
            *b = b'-';
        }
    }
    std::str::from_utf8(buf.get(pos..).unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_integers() {
        let mut b = itoa_buf();
        assert_eq!(fmt_int(&mut b, 0), "0");
        assert_eq!(fmt_int(&mut b, 5060), "5060");
        assert_eq!(fmt_int(&mut b, -42), "-42");
        assert_eq!(fmt_int(&mut b, i64::MAX), i64::MAX.to_string());
        assert_eq!(fmt_int(&mut b, i64::MIN + 1), (i64::MIN + 1).to_string());
    }
}
