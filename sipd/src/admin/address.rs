//! `sipd address add GROUP IP[/MASK] [PORT]`, `sipd address rm GROUP IP[/MASK] [PORT]` and
//! `sipd address list`: the permissions module's `address` table, as `kamctl address` edits it.
//!
//! The store is the one sipd uses (`--config FILE`: its `[db] url`, or the permissions
//! `db_url` modparam, and its `address_table`), or `--db URL`. SQLite runs in WAL mode, so this
//! works while sipd runs; a running sipd picks the change up within its `reload_interval`
//! (5 s), or at once with `sipd rpc permissions.addressReload`.

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use modules::store::{AddressRow, StoreRef};

/// `sipd address ...`.
#[derive(Debug, Args)]
pub struct AddressArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AddressCommand,
    /// Where the store is (the table is the permissions `address_table` modparam, else `address`).
    #[command(flatten)]
    pub store: super::StoreArgs,
}

/// The address subcommands.
#[derive(Debug, Subcommand)]
pub enum AddressCommand {
    /// Add an address or subnet to a group (port 0 or none: any port).
    Add {
        /// The group id (a non-negative integer).
        group: String,
        /// An IPv4 or IPv6 address, optionally with a prefix length (`10.0.0.0/8`).
        address: String,
        /// The port (0, the default, matches any).
        port: Option<String>,
        /// Free text kept with the address (`$avp(peer_tag)` in Kamailio).
        #[arg(long, default_value = "")]
        tag: String,
    },
    /// Remove an address (exactly as added) from a group.
    Rm {
        /// The group id.
        group: String,
        /// The address, with its prefix length if it was added with one.
        address: String,
        /// The port it was added with (default 0).
        port: Option<String>,
    },
    /// List every address: group, address/mask, port, tag.
    List,
}

/// A validated address row.
pub fn parse_row(group: &str, address: &str, port: Option<&str>, tag: &str) -> Result<AddressRow> {
    let grp: i32 = group
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(|g| i32::try_from(g).ok())
        .with_context(|| format!("bad group `{group}`: expected a non-negative integer"))?;
    let (ip_text, mask_text) = match address.split_once('/') {
        Some((ip, mask)) => (ip, Some(mask)),
        None => (address, None),
    };
    let ip: IpAddr = ip_text
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("bad address `{ip_text}`: expected an IPv4 or IPv6 address"))?;
    let full: i32 = if ip.is_ipv4() { 32 } else { 128 };
    let mask = match mask_text {
        None => full,
        Some(m) => match m.trim().parse::<i32>() {
            Ok(m) if (1..=full).contains(&m) => m,
            _ => bail!("bad mask `/{m}` for {ip}: expected 1 to {full}"),
        },
    };
    let port = match port {
        None => 0,
        Some(p) => match p.trim().parse::<u16>() {
            Ok(p) => i32::from(p),
            Err(_) => bail!("bad port `{p}`: expected 0 to 65535"),
        },
    };
    // Store the network address, as the match uses it.
    let (net, _) = modules::permissions::parse_net(&ip.to_string(), mask)
        .with_context(|| format!("bad address {ip}/{mask}"))?;
    Ok(AddressRow {
        grp,
        ip_addr: net.to_string(),
        mask,
        port,
        tag: tag.to_string(),
    })
}

/// The store and address table the arguments name.
fn open(args: &AddressArgs) -> Result<(StoreRef, String)> {
    let (st, params) = args.store.open("permissions")?;
    let table = params
        .get("address_table")
        .and_then(|v| v.as_str())
        .unwrap_or("address")
        .to_string();
    Ok((st, table))
}

/// Run `sipd address ...`.
pub fn run(args: &AddressArgs) -> Result<ExitCode> {
    // Validate before touching the store.
    let row = match &args.command {
        AddressCommand::Add {
            group,
            address,
            port,
            tag,
        } => Some(parse_row(group, address, port.as_deref(), tag)?),
        AddressCommand::Rm {
            group,
            address,
            port,
        } => Some(parse_row(group, address, port.as_deref(), "")?),
        AddressCommand::List => None,
    };
    let (st, table) = open(args)?;
    match (&args.command, row) {
        (AddressCommand::Add { .. }, Some(row)) => {
            let exists = st.addresses(&table)?.iter().any(|r| {
                (r.grp, &r.ip_addr, r.mask, r.port) == (row.grp, &row.ip_addr, row.mask, row.port)
            });
            if exists {
                bail!(
                    "{}/{} port {} is already in group {}",
                    row.ip_addr,
                    row.mask,
                    row.port,
                    row.grp
                );
            }
            st.add_address(&table, &row)?;
            println!(
                "added {}/{} port {} to group {}",
                row.ip_addr, row.mask, row.port, row.grp
            );
        }
        (AddressCommand::Rm { .. }, Some(row)) => {
            if st.delete_address(&table, &row)? == 0 {
                bail!(
                    "{}/{} port {} is not in group {}",
                    row.ip_addr,
                    row.mask,
                    row.port,
                    row.grp
                );
            }
            println!(
                "removed {}/{} port {} from group {}",
                row.ip_addr, row.mask, row.port, row.grp
            );
        }
        _ => {
            for r in st.addresses(&table)? {
                println!("{}\t{}/{}\t{}\t{}", r.grp, r.ip_addr, r.mask, r.port, r.tag);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_input() {
        let r = parse_row("1", "10.1.2.3/16", Some("5060"), "t").unwrap();
        assert_eq!(
            (r.grp, r.ip_addr.as_str(), r.mask, r.port),
            (1, "10.1.0.0", 16, 5060)
        );
        let r = parse_row("2", "::1", None, "").unwrap();
        assert_eq!((r.ip_addr.as_str(), r.mask, r.port), ("::1", 128, 0));
        for (g, a, p, what) in [
            ("x", "127.0.0.1", None, "bad group"),
            ("-1", "127.0.0.1", None, "bad group"),
            ("1", "300.0.0.1", None, "bad address"),
            ("1", "host.example.com", None, "bad address"),
            ("1", "127.0.0.1/33", None, "bad mask"),
            ("1", "127.0.0.1/0", None, "bad mask"),
            ("1", "::1/129", None, "bad mask"),
            ("1", "127.0.0.1", Some("70000"), "bad port"),
            ("1", "127.0.0.1", Some("x"), "bad port"),
        ] {
            let e = parse_row(g, a, p, "").unwrap_err().to_string();
            assert!(e.contains(what), "{g} {a} {p:?}: {e}");
        }
    }
}
