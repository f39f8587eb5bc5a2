//! `$avp(name)` and `$xavp(root=>field)`: per-message attribute-value pairs, kept in
//! [`RouteState`](kemi_runtime::msg::RouteState) (`avps`, `xavps`) and dropped with the message.
//!
//! `$avp(name)`: a set pushes a value on top of the ones of that name, a read gives the newest,
//! `unset` removes the newest (Kamailio's `$avp(x) = $null`); `$(avp(name)[*])` reads them all
//! (newest first, joined by `, `), a set through it replaces them all, an unset removes them
//! all. A name never set reads as null.
//!
//! `$xavp(root)`: a list of root items, index 0 the newest. As in Kamailio, a set without an
//! index always adds a new root item: `$xavp(r=>a) = 1` creates an item holding field `a`,
//! `$xavp(r[0]=>b) = 2` adds field `b` to the newest item (creating one when there is none).
//! `$xavp(r=>a)` reads the newest field `a` of the newest item; `$xavp(r)` reads a plain item's
//! value (`$xavp(r) = v`), or the text `<<xavp:r>>` for an item holding fields, or null when
//! there is no item. `unset` removes the newest item (`$xavp(r)`), the indexed one
//! (`$xavp(r[1])`), every one (`$xavp(r[*])`), or the newest field of that name in the selected
//! item(s) (`$xavp(r=>a)`, `$xavp(r[*]=>a)`).

use std::borrow::Cow;

use kemi_runtime::msg::{Avp, VarValue, Xavp, XavpValue};
use kemi_runtime::SipMsg;

use super::spec::{XavpIndex, XavpName};
use super::value::PvValue;

fn var_value(v: &VarValue) -> PvValue<'_> {
    match v {
        VarValue::Int(n) => PvValue::Int(*n),
        VarValue::Str(s) => PvValue::Str(Cow::Borrowed(s)),
    }
}

/// The newest `$avp(name)`.
pub fn avp_get<'m>(msg: &'m SipMsg, name: &str) -> PvValue<'m> {
    msg.route
        .avps
        .iter()
        .rev()
        .find(|a| a.name == name)
        .map_or(PvValue::Null, |a| var_value(&a.value))
}

/// Every `$avp(name)`, newest first, joined by `, `; null when there is none.
pub fn avp_get_all<'m>(msg: &'m SipMsg, name: &str) -> PvValue<'m> {
    let mut values = msg.route.avps.iter().rev().filter(|a| a.name == name);
    let Some(first) = values.next() else {
        return PvValue::Null;
    };
    let mut out = String::new();
    for (i, a) in std::iter::once(first).chain(values).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match &a.value {
            VarValue::Int(n) => out.push_str(&n.to_string()),
            VarValue::Str(s) => out.push_str(s),
        }
    }
    PvValue::Str(Cow::Owned(out))
}

/// Assign to `$avp(name)` (`all`: `$(avp(name)[*])`): push `value`, or remove when `None`.
pub fn avp_set(msg: &mut SipMsg, name: &str, all: bool, value: Option<VarValue>) {
    let avps = &mut msg.route.avps;
    if all {
        avps.retain(|a| a.name != name);
    } else if value.is_none() {
        if let Some(pos) = avps.iter().rposition(|a| a.name == name) {
            avps.remove(pos);
        }
    }
    if let Some(value) = value {
        avps.push(Avp {
            name: name.to_string(),
            value,
        });
    }
}

/// Position in `xavps` of the root item `index` of `name` (0 the newest, negative from the
/// oldest); `All` and no index select the newest.
fn root_pos(xavps: &[Xavp], name: &str, index: XavpIndex) -> Option<usize> {
    let idx = match index {
        XavpIndex::At(i) => i,
        XavpIndex::None | XavpIndex::All => 0,
    };
    let nth = if idx >= 0 {
        usize::try_from(idx).ok()?
    } else {
        let count = xavps.iter().filter(|x| x.name == name).count();
        count.checked_sub(usize::try_from(idx.unsigned_abs()).ok()?)?
    };
    xavps
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, x)| x.name == name)
        .nth(nth)
        .map(|(pos, _)| pos)
}

/// The value `$xavp(...)` names.
pub fn xavp_get<'m>(msg: &'m SipMsg, x: &XavpName<'_>) -> PvValue<'m> {
    let xavps = &msg.route.xavps;
    let Some(item) = root_pos(xavps, x.root, x.index).and_then(|p| xavps.get(p)) else {
        return PvValue::Null;
    };
    match (&item.value, x.field) {
        (XavpValue::Value(v), None) => var_value(v),
        (XavpValue::Fields(_), None) => PvValue::Str(Cow::Owned(format!("<<xavp:{}>>", x.root))),
        (XavpValue::Fields(fields), Some(f)) => fields
            .iter()
            .rev()
            .find(|(n, _)| n == f)
            .map_or(PvValue::Null, |(_, v)| var_value(v)),
        (XavpValue::Value(_), Some(_)) => PvValue::Null,
    }
}

/// Assign `value` to `$xavp(...)` (`None` removes); false when the name selects nothing that
/// can take it (an indexed item that does not exist, a field of a plain item, a set through
/// `[*]`).
pub fn xavp_set(msg: &mut SipMsg, x: &XavpName<'_>, value: Option<VarValue>) -> bool {
    let xavps = &mut msg.route.xavps;
    let Some(value) = value else {
        xavp_remove(xavps, x);
        return true;
    };
    let new_item = |value: XavpValue| Xavp {
        name: x.root.to_string(),
        value,
    };
    match (x.index, x.field) {
        (XavpIndex::All, _) => false,
        (XavpIndex::None, None) => {
            xavps.push(new_item(XavpValue::Value(value)));
            true
        }
        (XavpIndex::None, Some(f)) => {
            xavps.push(new_item(XavpValue::Fields(vec![(f.to_string(), value)])));
            true
        }
        (index @ XavpIndex::At(i), field) => {
            let slot = root_pos(xavps, x.root, index).and_then(|p| xavps.get_mut(p));
            match (slot, field) {
                (Some(item), None) => {
                    item.value = XavpValue::Value(value);
                    true
                }
                (Some(item), Some(f)) => match &mut item.value {
                    XavpValue::Fields(fields) => {
                        fields.push((f.to_string(), value));
                        true
                    }
                    XavpValue::Value(_) => false,
                },
                (None, Some(f)) if i == 0 => {
                    xavps.push(new_item(XavpValue::Fields(vec![(f.to_string(), value)])));
                    true
                }
                (None, _) => false,
            }
        }
    }
}

/// Unset `$xavp(...)`.
fn xavp_remove(xavps: &mut Vec<Xavp>, x: &XavpName<'_>) {
    let remove_field = |item: &mut Xavp, f: &str| {
        if let XavpValue::Fields(fields) = &mut item.value {
            if let Some(pos) = fields.iter().rposition(|(n, _)| n == f) {
                fields.remove(pos);
            }
        }
    };
    match (x.index, x.field) {
        (XavpIndex::All, None) => xavps.retain(|i| i.name != x.root),
        (XavpIndex::All, Some(f)) => xavps
            .iter_mut()
            .filter(|i| i.name == x.root)
            .for_each(|i| remove_field(i, f)),
        (index, field) => {
            let Some(pos) = root_pos(xavps, x.root, index) else {
                return;
            };
            match field {
                None => {
                    xavps.remove(pos);
                }
                Some(f) => {
                    if let Some(item) = xavps.get_mut(pos) {
                        remove_field(item, f);
                    }
                }
            }
        }
    }
}
