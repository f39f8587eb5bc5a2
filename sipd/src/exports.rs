//! The one place that names every crate with KEMI exports. Naming [`modules::MODULES`] here is
//! what links the `modules` crate into the binary; [`ExportTable::build`] then checks that each
//! declared module really contributed exports.

use kemi_runtime::table::Enabled;
use kemi_runtime::{ExportTable, TableError};

/// Build the dispatch table of the enabled modules.
pub fn build_table(enabled: &Enabled) -> Result<ExportTable, TableError> {
    ExportTable::build(
        kemi_runtime::linked_exports(),
        &[&modules::MODULES],
        enabled,
    )
}
