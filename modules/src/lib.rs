//! sipd's KEMI modules. Each module is one sub-module of `KSR` with Kamailio's names and
//! signatures (see `kemi-api.tsv`):
//!
//! - [`core`]: `KSR.<fn>`: logging, flags, method and transport tests, R-URI and destination
//!   setters, `is_myself*`.
//! - [`pv`]: `KSR.pv.*`: pseudo-variables (`$ru`, `$fU`, `$hdr(Name)`, `$var(x)`, ...).
//! - [`hdr`]: `KSR.hdr.*`: header reads and header edits (lumps).
//! - [`sl`]: `KSR.sl.*`: stateless replies.
//! - [`maxfwd`]: `KSR.maxfwd.*`: Max-Forwards processing.
//! - [`siputils`]: `KSR.siputils.*`: message tests (`has_totag`, `is_first_hop`, ...) and URI
//!   parameter helpers.
//! - [`sanity`]: `KSR.sanity.*`: Kamailio's sanity checks, with their replies.
//! - [`corex`]: `KSR.corex.*`: `has_ruri_user`, `has_user_agent`, file helpers.
//! - [`xlog`]: `KSR.xlog.*`: logging with `$pv` interpolation.
//! - [`kx`]: `KSR.kx.*`: the fast getters of Kamailio's `kemix`.
//! - [`textops`]: `KSR.textops.*`: regex searches and edits of headers, string tests.
//! - [`tm`]: `KSR.tm.*`: transaction-stateful relaying, failure/branch/onreply callbacks
//!   (also `corex.append_branch*`); carried out by the host's transaction layer.
//! - [`tmx`]: `KSR.tmx.*`: which tm callback runs, the retransmission pre-check.
//! - [`rr`]: `KSR.rr.*`: Record-Route and Route processing.
//! - [`auth`], [`auth_db`]: `KSR.auth.*`, `KSR.auth_db.*`: Digest authentication (RFC 7616),
//!   challenges, stateless nonces, subscribers from the store.
//! - [`nathelper`]: `KSR.nathelper.*`: NAT detection, Contact aliasing and fixing.
//! - [`htable`]: `KSR.htable.*` and `$sht(t=>k)`: shared hash tables with expiry.
//! - [`pike`]: `KSR.pike.*`: flood detection per source IP.
//! - [`permissions`]: `KSR.permissions.*`: address groups (CIDR, port) from the store.
//! - [`registrar`]: `KSR.registrar.*` and `$ulc(p=>a)`: usrloc location tables (sharded,
//!   written through to the store), save/lookup with Kamailio's codes.
//! - [`ndb_redis`]: `KSR.ndb_redis.*` and `$redis(res=>key)`: scripts' own commands on named
//!   Redis servers (bounded by `cmd_timeout`).
//! - [`dispatcher`]: `KSR.dispatcher.*`: load balancing and failover over destination sets
//!   (Kamailio's list file, algorithms, XAVP candidates), OPTIONS probing of their state.
//! - [`websocket`]: `KSR.websocket.*`: Kamailio's names for the handshake (done by sipd) and
//!   closing the current WebSocket connection.
//!
//! - [`dialog`]: `KSR.dialog.*`, `$dlg(attr)`, `$dlg_var(name)`: calls tracked from INVITE to
//!   BYE or timeout (shared sharded table), profiles, timeouts with BYEs, script events.
//! - [`rtpengine`], [`rtpproxy`]: `KSR.rtpengine.*`, `KSR.rtpproxy.*`: media relay through
//!   rtpengine (ng protocol) or an rtpproxy-protocol daemon; the SDP body replaced.
//!
//! Hosts pass [`MODULES`] to [`kemi_runtime::ExportTable::build`]; naming it links this crate.
//! Exports never touch the network (replies are queued in `SipMsg::outbox`, header changes in
//! `SipMsg::route`), except the media relay commands of `rtpengine`/`rtpproxy`: one bounded,
//! blocking UDP exchange with the daemon, as Kamailio's modules do.

use kemi_runtime::table::ModuleSet;

pub mod auth;
pub mod auth_db;
pub mod core;
pub mod corex;
pub mod dialog;
pub mod dispatcher;
pub mod hdr;
pub mod htable;
pub mod kx;
pub mod maxfwd;
pub mod modparam;
pub mod nathelper;
pub mod ndb_redis;
pub mod permissions;
pub mod pike;
pub mod pv;
pub mod registrar;
pub mod rr;
pub mod rtpengine;
pub mod rtpproxy;
pub mod sanity;
pub mod setup;
pub mod siptrace;
pub mod siputils;
pub mod sl;
pub mod store;
pub mod textops;
pub mod tm;
pub mod tmx;
pub mod websocket;
pub mod xlog;

mod uri_parts;
mod view;

/// The modules this crate provides.
pub static MODULES: ModuleSet = ModuleSet {
    crate_name: "modules",
    modules: &[
        "",
        "pv",
        "hdr",
        "sl",
        "maxfwd",
        "xlog",
        "kx",
        "siputils",
        "sanity",
        "corex",
        "textops",
        "tm",
        "tmx",
        "rr",
        "auth",
        "auth_db",
        "nathelper",
        "htable",
        "pike",
        "permissions",
        "registrar",
        "siptrace",
        "websocket",
        "ndb_redis",
        "dispatcher",
        "rtpengine",
        "rtpproxy",
        "dialog",
    ],
};
