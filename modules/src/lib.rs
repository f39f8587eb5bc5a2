//! sipd's KEMI modules. Each file is one sub-module of `KSR` with Kamailio's names and signatures.
//!
//! Hosts pass [`MODULES`] to [`kemi_runtime::ExportTable::build`]; naming it links this crate.

use kemi_runtime::table::ModuleSet;

pub mod core;

/// The modules this crate provides.
pub static MODULES: ModuleSet = ModuleSet { crate_name: "modules", modules: &[""] };
