//! The `permissions` module (`KSR.permissions.*`): address groups from the store's `address`
//! table (Kamailio's `grp`, `ip_addr`, `mask`, `port`, `tag`), matched by source or given
//! address.
//!
//! A row is an exact address (mask 32 for IPv4, 128 for IPv6, or 0, which Kamailio also takes
//! as a single address), a subnet (a shorter mask), or a host name matched as text (no DNS
//! lookup). Port 0 matches any port. IPv4-mapped IPv6 sources count as IPv4.
//!
//! The table lives in memory as one immutable [`AddressTable`] behind an `RwLock<Arc<..>>`: a
//! call takes the read lock only to clone the `Arc`, then matches without any lock. A reload
//! (RPC `permissions.addressReload`, or the periodic check every `reload_interval` seconds, a
//! sipd parameter, default 5, 0 off) builds a new table and swaps the pointer, so
//! `sipd address add` takes effect in a running sipd without a restart.
//!
//! `allow_trusted` (the `trusted` table) is not implemented: it logs and returns -1.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use kemi_runtime::msg::{LogLevel, VarValue};
use kemi_runtime::{kemi, SipMsg};

use crate::setup::{SetupCtx, SetupError};
use crate::store::{check_table, AddressRow, StoreError, StoreRef};

/// One match target.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    grp: i32,
    port: u16,
    tag: String,
}

/// A parsed address (or subnet) of a row: the network and its prefix length.
pub fn parse_net(ip: &str, mask: i32) -> Option<(IpAddr, u8)> {
    let ip: IpAddr = ip
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let full: u8 = if ip.is_ipv4() { 32 } else { 128 };
    let mask = match mask {
        0 => full,
        m if (1..=i32::from(full)).contains(&m) => m as u8,
        _ => return None,
    };
    Some((network(ip, mask), mask))
}

fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address groups, ready for matching.
#[derive(Debug, Default, PartialEq)]
pub struct AddressTable {
    rows: Vec<AddressRow>,
    exact: HashMap<IpAddr, Vec<Target>>,
    subnets: Vec<(IpAddr, u8, Target)>,
    names: Vec<(String, Target)>,
}

impl AddressTable {
    /// Build from store rows; rows that cannot be used are skipped with a warning.
    pub fn new(rows: Vec<AddressRow>) -> AddressTable {
        let mut t = AddressTable::default();
        for r in &rows {
            let Ok(port) = u16::try_from(r.port) else {
                tracing::warn!(
                    grp = r.grp,
                    ip = r.ip_addr,
                    port = r.port,
                    "permissions: bad port; row skipped"
                );
                continue;
            };
            let target = Target {
                grp: r.grp,
                port,
                tag: r.tag.clone(),
            };
            match parse_net(&r.ip_addr, r.mask) {
                Some((net, prefix))
                    if u32::from(prefix) == if net.is_ipv4() { 32 } else { 128 } =>
                {
                    t.exact.entry(normalize(net)).or_default().push(target);
                }
                Some((net, prefix)) => t.subnets.push((net, prefix, target)),
                None if r.ip_addr.parse::<IpAddr>().is_err()
                    && !r.ip_addr.trim().is_empty()
                    && !r.ip_addr.contains(['/', ' ']) =>
                {
                    t.names
                        .push((r.ip_addr.trim().to_ascii_lowercase(), target));
                }
                None => {
                    tracing::warn!(
                        grp = r.grp,
                        ip = r.ip_addr,
                        mask = r.mask,
                        "permissions: bad address or mask; row skipped"
                    );
                }
            }
        }
        for v in t.exact.values_mut() {
            v.sort_by_key(|x| x.grp);
        }
        t.subnets.sort_by_key(|x| x.2.grp);
        t.names.sort_by_key(|x| x.1.grp);
        t.rows = rows;
        t
    }

    /// The rows it was built from.
    pub fn rows(&self) -> &[AddressRow] {
        &self.rows
    }

    /// The first match of `addr`:`port` in group `grp` (any group when `None`): exact addresses
    /// first, then subnets, then host names, each by ascending group.
    fn find(&self, addr: &str, port: u16, grp: Option<i32>) -> Option<&Target> {
        let ok = |t: &&Target| grp.is_none_or(|g| g == t.grp) && (t.port == 0 || t.port == port);
        let text = addr.trim();
        let ip = text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>();
        match ip {
            Ok(ip) => {
                let ip = normalize(ip);
                if let Some(t) = self.exact.get(&ip).and_then(|v| v.iter().find(ok)) {
                    return Some(t);
                }
                self.subnets
                    .iter()
                    .filter(|(net, prefix, _)| {
                        net.is_ipv4() == ip.is_ipv4() && network(ip, *prefix) == *net
                    })
                    .map(|(_, _, t)| t)
                    .find(ok)
            }
            Err(_) => {
                let name = text.to_ascii_lowercase();
                self.names
                    .iter()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, t)| t)
                    .find(ok)
            }
        }
    }

    /// Whether `addr`:`port` is in group `grp`; its tag when it is.
    pub fn allow(&self, grp: i32, addr: &str, port: u16) -> Option<&str> {
        self.find(addr, port, Some(grp)).map(|t| t.tag.as_str())
    }

    /// The group `addr`:`port` is in (and its tag).
    pub fn group_of(&self, addr: &str, port: u16) -> Option<(i32, &str)> {
        self.find(addr, port, None).map(|t| (t.grp, t.tag.as_str()))
    }
}

/// The permissions state of one server.
#[derive(Debug)]
pub struct PermissionsState {
    table: RwLock<Arc<AddressTable>>,
    store: Option<StoreRef>,
    address_table: String,
    peer_tag_avp: Option<String>,
}

impl PermissionsState {
    /// A state serving `rows` without a store (tests).
    pub fn from_rows(rows: Vec<AddressRow>) -> PermissionsState {
        PermissionsState {
            table: RwLock::new(Arc::new(AddressTable::new(rows))),
            store: None,
            address_table: "address".into(),
            peer_tag_avp: None,
        }
    }

    /// A state that loads `address_table` from `store`.
    pub fn with_store(
        store: StoreRef,
        address_table: &str,
        peer_tag_avp: Option<String>,
    ) -> Result<PermissionsState, StoreError> {
        check_table(address_table)?;
        let rows = store.addresses(address_table)?;
        Ok(PermissionsState {
            table: RwLock::new(Arc::new(AddressTable::new(rows))),
            store: Some(store),
            address_table: address_table.to_string(),
            peer_tag_avp,
        })
    }

    /// The table in effect.
    pub fn current(&self) -> Arc<AddressTable> {
        Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Read the store again and swap the table in when it changed; the number of rows.
    pub fn reload(&self) -> Result<usize, StoreError> {
        let Some(store) = &self.store else {
            return Ok(self.current().rows().len());
        };
        let rows = store.addresses(&self.address_table)?;
        let n = rows.len();
        if self.current().rows() != rows.as_slice() {
            let t = Arc::new(AddressTable::new(rows));
            *self.table.write().unwrap_or_else(PoisonError::into_inner) = t;
            tracing::info!(rows = n, "permissions: address table reloaded");
        }
        Ok(n)
    }
}

/// Set up permissions: load the address table and schedule its periodic reload check.
pub fn setup(ctx: &mut SetupCtx<'_>) -> Result<(), SetupError> {
    let p = ctx.params("permissions");
    p.check_known(&[
        "db_url",
        "db_mode",
        "address_table",
        "grp_col",
        "ip_addr_col",
        "mask_col",
        "port_col",
        "tag_col",
        "peer_tag_avp",
        "peer_tag_mode",
        "max_subnets",
        "load_backends",
        "reload_delta",
        "reload_interval",
        "trusted_table",
        "trusted_cleanup_interval",
        "source_col",
        "proto_col",
        "from_col",
        "ruri_col",
        "priority_col",
        "default_allow_file",
        "default_deny_file",
        "check_all_branches",
        "allow_suffix",
        "deny_suffix",
    ])?;
    for (param, default) in [
        ("grp_col", "grp"),
        ("ip_addr_col", "ip_addr"),
        ("mask_col", "mask"),
        ("port_col", "port"),
        ("tag_col", "tag"),
    ] {
        if let Some(v) = p.str(param)? {
            if v != default {
                return Err(p
                    .error(
                        param,
                        format!("only the default column `{default}` is supported"),
                    )
                    .into());
            }
        }
    }
    let table = p.str("address_table")?.unwrap_or_else(|| "address".into());
    let peer_tag_avp = match p.str("peer_tag_avp")? {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) => {
            let name = s
                .strip_prefix("$avp(")
                .and_then(|n| n.strip_suffix(')'))
                .filter(|n| !n.is_empty() && !n.contains(['(', ')', '$', '[']))
                .ok_or_else(|| p.error("peer_tag_avp", format!("`{s}` is not an $avp(name)")))?;
            Some(name.to_string())
        }
    };
    let interval = p.int("reload_interval", 5)?;
    if interval < 0 {
        return Err(p
            .error("reload_interval", "must be 0 (off) or a number of seconds")
            .into());
    }
    let writer = ctx.store(&p)?;
    let state = PermissionsState::with_store(Arc::clone(writer.store()), &table, peer_tag_avp)
        .map_err(SetupCtx::store_error("permissions"))?;
    let state = Arc::new(state);
    if interval > 0 {
        let s = Arc::clone(&state);
        ctx.services.every(
            "permissions reload",
            Duration::from_secs(interval as u64),
            move || {
                if let Err(e) = s.reload() {
                    tracing::error!("permissions: address table reload failed: {e}");
                }
            },
        );
    }
    ctx.services.insert(state);
    Ok(())
}

fn state(msg: &mut SipMsg) -> Option<Arc<PermissionsState>> {
    let s = msg.env.services.get_arc::<PermissionsState>();
    if s.is_none() {
        msg.log(LogLevel::Err, "permissions: module not set up");
    }
    s
}

fn set_tag(msg: &mut SipMsg, st: &PermissionsState, tag: &str) {
    if let (Some(avp), false) = (&st.peer_tag_avp, tag.is_empty()) {
        crate::pv::stack::avp_set(msg, avp, false, Some(VarValue::Str(tag.to_string())));
    }
}

fn allow(msg: &mut SipMsg, grp: i32, addr: &str, port: u16) -> i32 {
    let Some(st) = state(msg) else {
        return -1;
    };
    let table = st.current();
    match table.allow(grp, addr, port) {
        Some(tag) => {
            set_tag(msg, &st, tag);
            1
        }
        None => -1,
    }
}

fn group(msg: &mut SipMsg, addr: &str, port: u16) -> i32 {
    let Some(st) = state(msg) else {
        return -1;
    };
    let table = st.current();
    match table.group_of(addr, port) {
        Some((grp, tag)) => {
            set_tag(msg, &st, tag);
            grp
        }
        None => -1,
    }
}

fn src(msg: &SipMsg) -> (String, u16) {
    (normalize(msg.rcv.src.ip()).to_string(), msg.rcv.src.port())
}

fn port_arg(msg: &mut SipMsg, port: i32) -> Option<u16> {
    let p = u16::try_from(port).ok();
    if p.is_none() {
        msg.log(LogLevel::Err, &format!("permissions: invalid port {port}"));
    }
    p
}

/// 1 when the message's source IP and port are in address group `group_id`, else -1.
#[kemi(module = "permissions", name = "allow_source_address")]
pub fn allow_source_address(msg: &mut SipMsg, group_id: i32) -> i32 {
    let (ip, port) = src(msg);
    allow(msg, group_id, &ip, port)
}

/// 1 when `ip_addr` (an IP, or a host name matched as text) and `port` are in address group
/// `group_id`, else -1.
#[kemi(module = "permissions", name = "allow_address")]
pub fn allow_address(msg: &mut SipMsg, group_id: i32, ip_addr: &str, port: i32) -> i32 {
    match port_arg(msg, port) {
        Some(port) => allow(msg, group_id, ip_addr, port),
        None => -1,
    }
}

/// The address group the message's source IP and port are in, or -1.
#[kemi(module = "permissions", name = "allow_source_address_group")]
pub fn allow_source_address_group(msg: &mut SipMsg) -> i32 {
    let (ip, port) = src(msg);
    group(msg, &ip, port)
}

/// The address group `addr` and `port` are in, or -1.
#[kemi(module = "permissions", name = "allow_address_group")]
pub fn allow_address_group(msg: &mut SipMsg, addr: &str, port: i32) -> i32 {
    match port_arg(msg, port) {
        Some(port) => group(msg, addr, port),
        None => -1,
    }
}

/// Kamailio's `trusted` table is not supported: logs an error and returns -1.
#[kemi(module = "permissions", name = "allow_trusted")]
pub fn allow_trusted(msg: &mut SipMsg) -> i32 {
    msg.log(
        LogLevel::Err,
        "permissions: allow_trusted: the trusted table is not supported by sipd",
    );
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(grp: i32, ip: &str, mask: i32, port: i32) -> AddressRow {
        AddressRow {
            grp,
            ip_addr: ip.into(),
            mask,
            port,
            tag: String::new(),
        }
    }

    #[test]
    fn cidr_port_and_groups() {
        let t = AddressTable::new(vec![
            row(1, "127.0.0.1", 32, 0),
            row(2, "10.1.0.0", 16, 5060),
            row(3, "fd00::", 8, 0),
            row(4, "gw.example.com", 32, 0),
            row(5, "1.2.3.4", 40, 0),
        ]);
        assert!(t.allow(1, "127.0.0.1", 9).is_some());
        assert!(t.allow(1, "::ffff:127.0.0.1", 9).is_some());
        assert!(t.allow(2, "127.0.0.1", 9).is_none());
        assert!(t.allow(2, "10.1.200.3", 5060).is_some());
        assert!(t.allow(2, "10.1.200.3", 5061).is_none());
        assert!(t.allow(2, "10.2.0.1", 5060).is_none());
        assert!(t.allow(3, "fdab::1", 1).is_some());
        assert!(t.allow(3, "fe00::1", 1).is_none());
        assert!(t.allow(4, "GW.example.com", 1).is_some());
        assert_eq!(t.group_of("1.2.3.4", 1), None);
        assert_eq!(t.group_of("10.1.0.9", 5060), Some((2, "")));
    }
}
