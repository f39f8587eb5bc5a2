//! `$shv(name)`: values shared by every worker of the process (Kamailio's shared variables).
//!
//! A `$shv` starts as the integer 0, holds an integer or a string, and `unset` puts it back to
//! 0; it is never null. The store is one process-wide map from name to a variable behind its
//! own lock: `RwLock<HashMap<String, Arc<Mutex<VarValue>>>>`. The map's write lock is taken only
//! the first time a name is set; every other access takes the map's read lock for one lookup,
//! then only that variable's mutex. The lock is per variable, not per message, because the
//! data is per variable: workers routing unrelated messages never touch each other's variables
//! and so never wait for each other, while two workers updating the same counter are
//! serialized on just that counter (as Kamailio's per-variable shv locks do). Reads copy the
//! value out, so no lock is held while the script runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use kemi_runtime::msg::VarValue;

type Store = RwLock<HashMap<String, Arc<Mutex<VarValue>>>>;

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| RwLock::new(HashMap::new()))
}

/// The variable `name`, if it was ever set.
fn slot(name: &str) -> Option<Arc<Mutex<VarValue>>> {
    let map = store().read().unwrap_or_else(PoisonError::into_inner);
    map.get(name).map(Arc::clone)
}

/// The value of `$shv(name)`: 0 when it was never set.
pub fn get(name: &str) -> VarValue {
    match slot(name) {
        Some(var) => var.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        None => VarValue::Int(0),
    }
}

/// Set `$shv(name)` to `value` (`None` resets it to 0).
pub fn set(name: &str, value: Option<VarValue>) {
    let value = value.unwrap_or(VarValue::Int(0));
    let var = match slot(name) {
        Some(var) => var,
        None => {
            let mut map = store().write().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(
                map.entry(name.to_string())
                    .or_insert_with(|| Arc::new(Mutex::new(VarValue::Int(0)))),
            )
        }
    };
    *var.lock().unwrap_or_else(PoisonError::into_inner) = value;
}
