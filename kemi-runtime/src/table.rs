//! The dispatch table: every export of the enabled modules, indexed once at startup into a fixed
//! array of [`TABLE_SLOTS`] slots. Engines bind `KSR.<module>.<name>` to a slot index and call by
//! index; nothing is looked up by name on the message path.

use std::collections::{BTreeMap, HashMap};

use crate::export::{ArgError, KemiExport, KemiRet};
use crate::{Arg, SipMsg};

/// Number of slots in the dispatch table (Kamailio's `SR_APY_KEMI_EXPORT_SIZE`).
pub const TABLE_SLOTS: usize = 1024;

/// Sub-modules that are always present, as in Kamailio: the core (`KSR.<fn>`), `pv` and `hdr`.
pub const CORE_MODULES: [&str; 3] = ["", "pv", "hdr"];

/// The modules one crate provides.
///
/// A crate that defines exports publishes one `ModuleSet` and hosts pass it to
/// [`ExportTable::build`]. Naming it is what makes the linker keep the crate (and with it every
/// `#[kemi]` descriptor it holds); `build` then checks that each declared module really
/// contributed exports, so a crate that was dropped at link time stops startup with an error
/// instead of silently missing functions.
#[derive(Debug)]
pub struct ModuleSet {
    /// The crate, for error messages.
    pub crate_name: &'static str,
    /// Sub-module names (`""` for the core) that this crate exports into.
    pub modules: &'static [&'static str],
}

/// Which non-core modules a host enables.
#[derive(Clone, Debug, Default)]
pub enum Enabled {
    /// Every module of every given [`ModuleSet`].
    #[default]
    All,
    /// Only these (plus the core modules, which are always on).
    Only(Vec<String>),
}

impl Enabled {
    /// Whether `module` is on (core modules always are).
    pub fn is_enabled(&self, module: &str) -> bool {
        self.includes(module)
    }

    fn includes(&self, module: &str) -> bool {
        CORE_MODULES.contains(&module)
            || match self {
                Enabled::All => true,
                Enabled::Only(names) => names.iter().any(|n| n == module),
            }
    }
}

/// Why the table could not be built. Each variant names the exports or modules at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    /// Two exports share `module.name`.
    #[error("duplicate KEMI export `{name}`: defined at {first} and at {second}")]
    Duplicate {
        /// `module.name`.
        name: String,
        /// `file:line` of one definition.
        first: String,
        /// `file:line` of the other.
        second: String,
    },
    /// More exports than slots.
    #[error("{count} KEMI exports do not fit the {TABLE_SLOTS}-slot dispatch table; first export without a slot: `{first_unplaced}`")]
    Full {
        /// Exports that were to be indexed.
        count: usize,
        /// The first export that found no slot.
        first_unplaced: String,
    },
    /// A declared module has no exports: its crate was not linked.
    #[error("module `{module}` declared by crate `{crate_name}` has no exports in this binary; was the crate dropped by the linker?")]
    NotLinked {
        /// Declaring crate.
        crate_name: &'static str,
        /// The module with no exports.
        module: &'static str,
    },
    /// An export names a module that no [`ModuleSet`] declares.
    #[error(
        "export `{name}` ({location}) belongs to module `{module}`, which no module set declares"
    )]
    Undeclared {
        /// `module.name` of the export.
        name: String,
        /// The export's module.
        module: &'static str,
        /// `file:line` of the export.
        location: String,
    },
    /// The configuration enables a module that does not exist.
    #[error("unknown module `{0}` (known modules: {1})")]
    UnknownModule(String, String),
}

/// One sub-module in the table: its name and the slot range of its exports.
#[derive(Clone, Debug)]
pub struct ModuleEntry {
    /// Sub-module name (`""` for the core).
    pub name: &'static str,
    /// Slot indexes of its exports, sorted by name.
    pub slots: std::ops::Range<u16>,
}

/// The indexed exports of the enabled modules.
pub struct ExportTable {
    slots: Box<[Option<&'static KemiExport>; TABLE_SLOTS]>,
    len: usize,
    modules: Vec<ModuleEntry>,
    by_name: HashMap<(&'static str, &'static str), u16>,
}

impl std::fmt::Debug for ExportTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportTable")
            .field("len", &self.len)
            .field("modules", &self.modules)
            .finish()
    }
}

/// Sort key: the core, `pv` and `hdr` first (as Kamailio indexes them), then modules by name.
fn module_rank(module: &str) -> (usize, &str) {
    match CORE_MODULES.iter().position(|m| *m == module) {
        Some(pos) => (pos, ""),
        None => (CORE_MODULES.len(), module),
    }
}

fn location(e: &KemiExport) -> String {
    format!("{}:{}", e.file, e.line)
}

impl ExportTable {
    /// Index every export of `exports` whose module is enabled.
    ///
    /// The order of slots depends only on module and function names, never on link order.
    pub fn build(
        exports: &'static [KemiExport],
        sets: &[&ModuleSet],
        enabled: &Enabled,
    ) -> Result<Self, TableError> {
        let declared: BTreeMap<&'static str, &'static str> = sets
            .iter()
            .flat_map(|s| s.modules.iter().map(move |m| (*m, s.crate_name)))
            .collect();
        if let Enabled::Only(names) = enabled {
            for n in names {
                if !declared.contains_key(n.as_str()) {
                    let known: Vec<&str> =
                        declared.keys().filter(|k| !k.is_empty()).copied().collect();
                    return Err(TableError::UnknownModule(n.clone(), known.join(", ")));
                }
            }
        }
        for e in exports {
            if !declared.contains_key(e.module) {
                return Err(TableError::Undeclared {
                    name: e.qualified_name(),
                    module: e.module,
                    location: location(e),
                });
            }
        }
        for (module, crate_name) in &declared {
            if !exports.iter().any(|e| e.module == *module) {
                return Err(TableError::NotLinked { crate_name, module });
            }
        }

        let mut sorted: Vec<&'static KemiExport> = exports
            .iter()
            .filter(|e| enabled.includes(e.module))
            .collect();
        sorted
            .sort_by(|a, b| (module_rank(a.module), a.name).cmp(&(module_rank(b.module), b.name)));
        for pair in sorted.windows(2) {
            if pair[0].module == pair[1].module && pair[0].name == pair[1].name {
                return Err(TableError::Duplicate {
                    name: pair[0].qualified_name(),
                    first: location(pair[0]),
                    second: location(pair[1]),
                });
            }
        }
        if sorted.len() > TABLE_SLOTS {
            return Err(TableError::Full {
                count: sorted.len(),
                first_unplaced: sorted[TABLE_SLOTS].qualified_name(),
            });
        }

        let mut slots: Box<[Option<&'static KemiExport>; TABLE_SLOTS]> =
            Box::new([None; TABLE_SLOTS]);
        let mut by_name = HashMap::with_capacity(sorted.len());
        let mut modules: Vec<ModuleEntry> = Vec::new();
        for (i, e) in sorted.iter().enumerate() {
            // `i < TABLE_SLOTS <= u16::MAX` was checked above.
            let idx = i as u16;
            slots[i] = Some(e);
            by_name.insert((e.module, e.name), idx);
            match modules.last_mut() {
                Some(m) if m.name == e.module => m.slots.end = idx + 1,
                _ => modules.push(ModuleEntry {
                    name: e.module,
                    slots: idx..idx + 1,
                }),
            }
        }
        Ok(ExportTable {
            slots,
            len: sorted.len(),
            modules,
            by_name,
        })
    }

    /// Number of indexed exports.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no export is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The export in slot `idx`.
    #[inline]
    pub fn get(&self, idx: u16) -> Option<&'static KemiExport> {
        self.slots.get(usize::from(idx)).copied().flatten()
    }

    /// Slot of `module.name` (`module` is `""` for the core).
    pub fn lookup(&self, module: &str, name: &str) -> Option<u16> {
        self.by_name.get(&(module, name)).copied()
    }

    /// Every indexed export with its slot, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &'static KemiExport)> + '_ {
        self.slots[..self.len]
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (i as u16, e)))
    }

    /// The enabled sub-modules, in slot order.
    pub fn modules(&self) -> &[ModuleEntry] {
        &self.modules
    }

    /// True when `module` has exports in this table (the core `""` always does).
    pub fn has_module(&self, module: &str) -> bool {
        self.modules.iter().any(|m| m.name == module)
    }

    /// Call the export in slot `idx`.
    ///
    /// # Panics
    /// Never on script input: an empty slot gives [`ArgError::Count`] with `expected` 0.
    #[inline]
    pub fn call(&self, idx: u16, msg: &mut SipMsg, args: &[Arg<'_>]) -> Result<KemiRet, ArgError> {
        match self.get(idx) {
            Some(e) => (e.call)(msg, args),
            None => Err(ArgError::Count {
                expected: 0,
                got: args.len(),
            }),
        }
    }

    /// The listing in the shape of Kamailio's `app_lua.api_list`, with the docs added.
    pub fn api_list(&self) -> serde_json::Value {
        let methods: Vec<serde_json::Value> = self
            .iter()
            .map(|(_, e)| {
                let params = if e.params.is_empty() {
                    "none".to_string()
                } else {
                    e.params
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                serde_json::json!({ "func": {
                    "ret": e.ret.as_str(),
                    "module": e.module,
                    "name": e.name,
                    "params": params,
                    "doc": e.doc,
                }})
            })
            .collect();
        serde_json::json!({ "msize": methods.len(), "methods": methods })
    }
}
