//! permissions RPC methods with Kamailio's names and result shapes:
//! `permissions.addressReload` ("Reload OK"), `permissions.addressDump` (exact addresses),
//! `permissions.subnetDump` (subnets) and `permissions.domainDump` (host names).

use kemi_runtime::services::Services;
use modules::permissions::{parse_net, PermissionsState};
use modules::store::AddressRow;
use serde_json::{json, Value};

use super::jsonrpc::RpcError;

/// The permissions methods (answered when permissions is set up).
pub const METHODS: [&str; 4] = [
    "permissions.addressDump",
    "permissions.addressReload",
    "permissions.domainDump",
    "permissions.subnetDump",
];

fn tag(r: &AddressRow) -> &str {
    if r.tag.is_empty() {
        "NULL"
    } else {
        &r.tag
    }
}

/// Run permissions method `method`; None when it is not one.
pub fn call(
    services: &Services,
    method: &str,
    params: &[Value],
) -> Option<Result<Value, RpcError>> {
    if !METHODS.contains(&method) {
        return None;
    }
    if !params.is_empty() {
        return Some(Err(RpcError::params(format!(
            "{method} takes no parameters"
        ))));
    }
    let Some(st) = services.get::<PermissionsState>() else {
        return Some(Err(RpcError::new(
            500,
            "permissions is not set up (enable the permissions module)",
        )));
    };
    Some(run(st, method))
}

fn run(st: &PermissionsState, method: &str) -> Result<Value, RpcError> {
    if method == "permissions.addressReload" {
        return st
            .reload()
            .map(|_| json!("Reload OK"))
            .map_err(|e| RpcError::new(500, format!("Reload failed. ({e})")));
    }
    let table = st.current();
    let mut out = Vec::new();
    for r in table.rows() {
        let net = parse_net(&r.ip_addr, r.mask);
        let full = |ip: &std::net::IpAddr| if ip.is_ipv4() { 32 } else { 128 };
        match (method, net) {
            ("permissions.addressDump", Some((ip, m))) if u32::from(m) == full(&ip) => {
                out.push(json!({"table": 0, "group": r.grp,
                    "item": {"ip": ip.to_string(), "port": r.port, "tag": tag(r)}}));
            }
            ("permissions.subnetDump", Some((ip, m))) if u32::from(m) != full(&ip) => {
                out.push(json!({"id": out.len(), "group": r.grp,
                    "item": {"ip": ip.to_string(), "mask": m, "port": r.port, "tag": tag(r)}}));
            }
            ("permissions.domainDump", None) => {
                out.push(json!({"id": out.len(), "group": r.grp,
                    "item": {"domain_name": r.ip_addr, "port": r.port, "tag": tag(r)}}));
            }
            _ => {}
        }
    }
    Ok(json!(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn dumps_and_reload() {
        let mut s = Services::new();
        let row = |grp, ip: &str, mask| AddressRow {
            grp,
            ip_addr: ip.into(),
            mask,
            port: 0,
            tag: String::new(),
        };
        s.insert(Arc::new(PermissionsState::from_rows(vec![
            row(1, "127.0.0.1", 32),
            row(2, "10.0.0.0", 8),
            row(3, "gw.example.com", 32),
        ])));
        let c = |m: &str| call(&s, m, &[]).unwrap().unwrap();
        assert_eq!(c("permissions.addressReload"), json!("Reload OK"));
        let a = c("permissions.addressDump");
        assert_eq!(a[0]["item"]["ip"], json!("127.0.0.1"));
        assert_eq!(a.as_array().unwrap().len(), 1);
        let sn = c("permissions.subnetDump");
        assert_eq!(sn[0]["item"]["mask"], json!(8));
        let d = c("permissions.domainDump");
        assert_eq!(d[0]["item"]["domain_name"], json!("gw.example.com"));
        assert!(call(&s, "permissions.addressReload", &[json!(1)])
            .unwrap()
            .is_err());
    }
}
