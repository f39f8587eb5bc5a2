//! Integration tests of the KEMI modules, called through the real dispatch table so that the
//! descriptors (names, kinds, trampolines) are exercised with the functions.

mod api_tsv;
mod auth_exports;
mod common;
mod core_exports;
mod corex_exports;
mod dispatcher_exports;
mod hdr_exports;
mod htable_exports;
mod kx_exports;
mod maxfwd_exports;
mod nathelper_exports;
mod permissions_exports;
mod pike_exports;
mod pv_exports;
mod pv_more_exports;
mod redis_server;
mod redis_store;
mod registrar_exports;
mod sanity_exports;
mod siputils_exports;
mod sl_exports;
mod textops_exports;
mod tm_exports;
mod websocket_exports;
mod xlog_exports;
