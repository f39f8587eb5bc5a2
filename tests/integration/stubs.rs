//! `sipd api stubs`: the generated editor stubs are valid in their languages and cover the API.

use kemi_runtime::table::Enabled;
use sipd::stubs::{self, StubLang};

fn table() -> kemi_runtime::ExportTable {
    sipd::exports::build_table(&Enabled::All).expect("table")
}

#[test]
fn python_stub_compiles_and_lists_every_module() {
    let dir = tempfile::tempdir().unwrap();
    let table = table();
    let path = stubs::write(&table, StubLang::Python, dir.path()).unwrap();
    let status = std::process::Command::new("python3")
        .args(["-m", "py_compile"])
        .arg(&path)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "the .pyi must be valid Python");
    let text = std::fs::read_to_string(&path).unwrap();
    for m in table.modules().iter().filter(|m| !m.name.is_empty()) {
        assert!(
            text.contains(&format!("\n{}: _{}\n", m.name, m.name)),
            "module {} missing",
            m.name
        );
    }
    assert!(
        text.contains("def sl_send_reply(code: int, reason: str) -> int:"),
        "{text}"
    );
}

#[test]
fn lua_stub_loads_in_lua_and_declares_every_export() {
    let dir = tempfile::tempdir().unwrap();
    let table = table();
    let path = stubs::write(&table, StubLang::Lua, dir.path()).unwrap();
    // Load the stub in a real Lua interpreter, then count the functions it declared.
    let lua = mlua::Lua::new();
    let src = std::fs::read_to_string(&path).unwrap();
    lua.load(&src)
        .set_name("KSR.lua")
        .exec()
        .expect("stub loads in Lua");
    let count: usize = lua
        .load(
            r#"local n = 0
               for k, v in pairs(KSR) do
                 if type(v) == "function" then n = n + 1
                 elseif type(v) == "table" and k ~= "x" then
                   for _, f in pairs(v) do if type(f) == "function" then n = n + 1 end end
                 end
               end
               return n"#,
        )
        .eval()
        .unwrap();
    assert_eq!(count, table.len());
}

#[test]
fn typescript_stub_declares_modules_and_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let path = stubs::write(&table(), StubLang::Js, dir.path()).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("declare namespace KSR {"));
    assert!(text.contains("namespace sl {"));
    assert!(text.contains("function is_INVITE(): boolean;"), "{text}");
    assert!(
        text.contains("function sl_send_reply(code: number, reason: string): number;"),
        "{text}"
    );
    assert_eq!(text.matches('{').count(), text.matches('}').count());
}
