//! The searcher behind `require` for pure-Lua modules (`package.loaders[2]`): it finds a module
//! on `package.path` as Lua's own does, loads only text, and records each file it loaded with the
//! text that ran ([`Companion`]). An interpreter built with a recorded set runs those texts for
//! those names instead of reading the files again, so every worker runs exactly what a staging
//! interpreter validated, whatever happened to the files since.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Table, Value};

use crate::engine::Companion;

/// Replaces Lua's searcher with one that gets the file from `companion` (a Rust function) and
/// raises Lua's own message when the file does not compile, so errors read as they always did.
const SEARCHER: &str = r#"
local companion, load, error = ...
package.loaders[2] = function(name)
    local path, text, why = companion(name)
    if not path then
        return text
    end
    local chunk, err
    if text then
        chunk, err = load(text, "@" .. path, "t")
    end
    if not chunk then
        error("error loading module '" .. name .. "' from file '" .. path .. "':\n\t" .. (err or why), 0)
    end
    return chunk
end
"#;

/// The files an interpreter's `require` loaded, in order.
pub(super) type Loaded = Rc<RefCell<Vec<Companion>>>;

/// Install the searcher on `lua`: `snapshot` holds texts to run instead of reading the files;
/// what is loaded is pushed to the returned list.
pub(super) fn install(lua: &Lua, snapshot: &[Companion]) -> mlua::Result<Loaded> {
    let loaded = Loaded::default();
    let snapshot: Arc<[Companion]> = snapshot.into();
    let record = Rc::clone(&loaded);
    let companion = lua.create_function(move |lua, name: String| {
        let found = match snapshot.iter().find(|c| c.name == name) {
            Some(c) => c.clone(),
            None => match find_on_path(lua, &name)? {
                Ok(path) => match std::fs::read(&path) {
                    Ok(text) => Companion {
                        name,
                        path,
                        text: text.into(),
                    },
                    Err(e) => {
                        let why = format!("cannot read {}: {e}", path.display());
                        let path = lua.create_string(path.as_os_str().as_bytes())?;
                        return (path, Value::Nil, why).into_lua_multi(lua);
                    }
                },
                Err(missing) => return (Value::Nil, missing).into_lua_multi(lua),
            },
        };
        let path = lua.create_string(found.path.as_os_str().as_bytes())?;
        let text = lua.create_string(&*found.text)?;
        record.borrow_mut().push(found);
        (path, text).into_lua_multi(lua)
    })?;
    let globals = lua.globals();
    lua.load(SEARCHER).set_name("=sipd").call::<()>((
        companion,
        globals.raw_get::<Function>("load")?,
        globals.raw_get::<Function>("error")?,
    ))?;
    Ok(loaded)
}

/// Where `package.searchpath` finds `name` on the current `package.path`, or the list of the
/// files it tried (`\n\tno file '...'`, what the searcher returns to `require`).
fn find_on_path(lua: &Lua, name: &str) -> mlua::Result<Result<PathBuf, Value>> {
    let package: Table = lua.globals().raw_get("package")?;
    let searchpath: Function = package.raw_get("searchpath")?;
    let path: Value = package.raw_get("path")?;
    let found: MultiValue = searchpath.call((name, path))?;
    let mut found = found.into_iter();
    Ok(match (found.next(), found.next()) {
        (Some(Value::String(file)), _) => Ok(PathBuf::from(OsStr::from_bytes(&file.as_bytes()))),
        (_, Some(missing)) => Err(missing),
        _ => Err(Value::Nil),
    })
}
