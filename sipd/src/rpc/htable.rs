//! htable RPC methods with Kamailio's names, parameters and result shapes: `htable.dump`,
//! `htable.get`, `htable.sets`, `htable.seti`, `htable.setex`, `htable.setxs`, `htable.setxi`,
//! `htable.delete`, `htable.reload`, `htable.flush`, `htable.listTables`, `htable.stats`.
//! Faults are Kamailio's (500 with its text; 404 for `htable.delete` of a missing key).

use std::sync::Arc;

use kemi_runtime::services::Services;
use modules::htable::table::Htable;
use modules::htable::HtableState;
use modules::store::HtableValue;
use serde_json::{json, Value};

use super::jsonrpc::RpcError;

/// The htable methods (answered when htable is set up).
pub const METHODS: [&str; 12] = [
    "htable.delete",
    "htable.dump",
    "htable.flush",
    "htable.get",
    "htable.listTables",
    "htable.reload",
    "htable.setex",
    "htable.sets",
    "htable.seti",
    "htable.setxi",
    "htable.setxs",
    "htable.stats",
];

fn fault(message: impl Into<String>) -> RpcError {
    RpcError::new(500, message)
}

fn str_at<'a>(params: &'a [Value], i: usize, missing: &str) -> Result<&'a str, RpcError> {
    params
        .get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| fault(missing))
}

/// An integer parameter: a JSON number or a string holding one (as `kamcmd` sends).
fn int_at(params: &[Value], i: usize, missing: &str) -> Result<i64, RpcError> {
    match params.get(i) {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| fault(missing)),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| fault(missing)),
        _ => Err(fault(missing)),
    }
}

fn value_json(v: &HtableValue) -> (Value, &'static str) {
    match v {
        HtableValue::Int(n) => (json!(n), "int"),
        HtableValue::Str(s) => (json!(s), "str"),
    }
}

/// Local time of Unix milliseconds as `%Y-%m-%d %H:%M:%S` (UTC here), or `NEVER`.
fn expire_text(ms: u64) -> String {
    if ms == 0 {
        return "NEVER".into();
    }
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Run htable method `method`; None when it is not one.
pub fn call(
    services: &Services,
    method: &str,
    params: &[Value],
) -> Option<Result<Value, RpcError>> {
    if !METHODS.contains(&method) {
        return None;
    }
    let Some(st) = services.get::<HtableState>() else {
        return Some(Err(fault(
            "htable is not set up (enable the htable module)",
        )));
    };
    Some(run(st, method, params))
}

fn table<'a>(st: &'a HtableState, name: &str) -> Result<&'a Arc<Htable>, RpcError> {
    st.table(name).ok_or_else(|| fault("No such htable"))
}

fn run(st: &HtableState, method: &str, params: &[Value]) -> Result<Value, RpcError> {
    const KEY: &str = "Not enough parameters (htable name and key name)";
    const VAL: &str = "Not enough parameters (htable name, key name and value)";
    const EXP: &str = "Not enough parameters (htable name, key name, value and expire)";
    match method {
        "htable.dump" => {
            let t = table(st, str_at(params, 0, "No htable name given")?)?;
            let out: Vec<Value> = t
                .dump()
                .into_iter()
                .map(|(slot, items)| {
                    let size = items.len();
                    let items: Vec<Value> = items
                        .iter()
                        .map(|(k, it)| {
                            let (v, ty) = value_json(&it.value);
                            json!({"name": k, "value": v, "type": ty})
                        })
                        .collect();
                    json!({"entry": slot, "size": size, "slot": items})
                })
                .collect();
            Ok(json!(out))
        }
        "htable.get" => {
            let t = table(st, str_at(params, 0, KEY)?)?;
            let key = str_at(params, 1, KEY)?;
            let it = t
                .item(key)
                .ok_or_else(|| fault("Key name doesn't exist in htable."))?;
            let (v, _) = value_json(&it.value);
            let flags = i32::from(matches!(it.value, HtableValue::Str(_))) * 2;
            Ok(json!({"item": {
                "name": key, "value": v, "flags": flags, "expire": expire_text(it.expires_ms),
            }}))
        }
        "htable.sets" | "htable.seti" => {
            let t = table(st, str_at(params, 0, VAL)?)?;
            let key = str_at(params, 1, VAL)?;
            let value = if method == "htable.sets" {
                match params.get(2) {
                    Some(Value::String(s)) => HtableValue::Str(s.clone()),
                    Some(Value::Number(n)) => HtableValue::Str(n.to_string()),
                    _ => return Err(fault(VAL)),
                }
            } else {
                HtableValue::Int(int_at(params, 2, VAL)?)
            };
            t.set(key, value, 0);
            Ok(json!("Ok. Key set to new value."))
        }
        "htable.setex" => {
            const M: &str = "Not enough parameters (htable name, item name and expire)";
            let t = table(st, str_at(params, 0, M)?)?;
            t.set_expire(str_at(params, 1, M)?, int_at(params, 2, M)?);
            Ok(json!("Ok"))
        }
        "htable.setxs" | "htable.setxi" => {
            let t = table(st, str_at(params, 0, EXP)?)?;
            let key = str_at(params, 1, EXP)?;
            let value = if method == "htable.setxs" {
                HtableValue::Str(str_at(params, 2, EXP)?.to_string())
            } else {
                HtableValue::Int(int_at(params, 2, EXP)?)
            };
            t.set(key, value, int_at(params, 3, EXP)?);
            Ok(json!("Ok. Key set to new value."))
        }
        "htable.delete" => {
            const M: &str = "Not enough parameters (htable name & key name";
            let t = table(st, str_at(params, 0, M)?)?;
            if t.delete(str_at(params, 1, M)?) {
                Ok(json!("Ok. Key deleted."))
            } else {
                Err(RpcError::new(404, "Key not found in htable."))
            }
        }
        "htable.reload" => {
            let name = str_at(params, 0, "No htable name given")?;
            table(st, name)?;
            st.reload(name)
                .map(|_| json!("Ok. Htable reloaded."))
                .map_err(|e| fault(format!("Htable reload failed: {e}")))
        }
        "htable.flush" => {
            let t = table(st, str_at(params, 0, "No htable name given")?)?;
            t.reset();
            Ok(json!("Ok. Htable flushed."))
        }
        "htable.listTables" => Ok(json!(st
            .tables()
            .iter()
            .map(|t| {
                let s = t.spec();
                json!({
                    "name": s.name, "dbtable": s.dbtable, "dbmode": s.dbmode,
                    "expire": s.autoexpire, "updateexpire": i32::from(s.updateexpire),
                    "size": t.slots(), "dmqreplicate": s.dmqreplicate,
                })
            })
            .collect::<Vec<_>>())),
        "htable.stats" => Ok(json!(st
            .tables()
            .iter()
            .map(|t| {
                let per_slot: Vec<usize> = t.dump().iter().map(|(_, v)| v.len()).collect();
                let max = per_slot.iter().copied().max().unwrap_or(0);
                let min = if per_slot.len() < t.slots() {
                    0
                } else {
                    per_slot.iter().copied().min().unwrap_or(0)
                };
                json!({
                    "name": t.name(), "slots": t.slots(), "all": t.len(),
                    "min": min, "max": max,
                })
            })
            .collect::<Vec<_>>())),
        _ => Err(RpcError::new(
            super::jsonrpc::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modules::htable::spec::TableSpec;

    fn services() -> Services {
        let mut s = Services::new();
        s.insert(Arc::new(HtableState::from_specs(vec![TableSpec::parse(
            "ipban=>size=4;autoexpire=300",
        )
        .unwrap()])));
        s
    }

    #[test]
    fn kamailio_shapes() {
        let s = services();
        let c = |m: &str, p: Value| call(&s, m, p.as_array().unwrap()).unwrap();
        assert!(call(&s, "core.ps", &[]).is_none());
        assert_eq!(
            c("htable.sets", json!(["ipban", "a", "x"])),
            Ok(json!("Ok. Key set to new value."))
        );
        assert_eq!(
            c("htable.seti", json!(["ipban", "n", "5"])),
            Ok(json!("Ok. Key set to new value."))
        );
        let got = c("htable.get", json!(["ipban", "n"])).unwrap();
        assert_eq!(got["item"]["value"], json!(5));
        assert_eq!(got["item"]["name"], json!("n"));
        let dump = c("htable.dump", json!(["ipban"])).unwrap();
        let n: usize = dump
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["slot"].as_array().unwrap().len())
            .sum();
        assert_eq!(n, 2);
        assert_eq!(
            c("htable.delete", json!(["ipban", "a"])),
            Ok(json!("Ok. Key deleted."))
        );
        assert_eq!(
            c("htable.delete", json!(["ipban", "a"])).unwrap_err().code,
            404
        );
        assert_eq!(
            c("htable.get", json!(["nosuch", "a"])).unwrap_err().message,
            "No such htable"
        );
        assert!(c("htable.reload", json!(["ipban"])).is_err());
        assert_eq!(c("htable.seti", json!(["ipban"])).unwrap_err().code, 500);
        assert_eq!(expire_text(0), "NEVER");
        assert_eq!(expire_text(86_400_000 + 3_661_000), "1970-01-02 01:01:01");
    }
}
