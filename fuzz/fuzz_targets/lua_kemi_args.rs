//! The KEMI argument conversions of the Lua engine, through the real engine
//! (`kemi_runtime::engine`) and every export sipd links (as `sipd::exports::build_table`,
//! less the two file exports, see `kemi_args::LEFT_OUT`): the
//! input picks an export and up to seven arguments of any Lua type (strings with any bytes,
//! integers, floats such as 2^63, -0, NaN and inf, booleans, nil, tables), and a Lua script
//! calls `KSR.<module>.<name>(...)` with them on a sample request or reply. A script error is
//! the expected answer to a wrong argument; a panic, an abort or a hang is a bug.
//!
//! Input layout and the spec the script decodes: `common/kemi_args.rs`.
#![no_main]

use kemi_runtime::engine::EngineKind;
use libfuzzer_sys::fuzz_target;

#[path = "common/kemi_args.rs"]
mod kemi_args;

/// The script: `fuzz(spec)` decodes the export name and its arguments and calls it.
/// Separators are control characters that the encoder escapes inside strings.
const SCRIPT: &str = r#"
function ksr_request_route() end
function ksr_reply_route() end

local function unescape(s)
    return (string.gsub(s, "\27(.)", function(c) return string.char(string.byte(c) - 64) end))
end

function fuzz(spec)
    local parts = {}
    for p in string.gmatch(spec, "([^\30]*)\30") do parts[#parts + 1] = p end
    local name = parts[1]
    local f
    local dot = string.find(name, ".", 1, true)
    if dot then
        local mod = KSR[string.sub(name, 1, dot - 1)]
        f = mod and mod[string.sub(name, dot + 1)]
    else
        f = KSR[name]
    end
    if type(f) ~= "function" then error("no export " .. name) end
    local args, n = {}, #parts - 1
    for i = 1, n do
        local p = parts[i + 1]
        local tag, v = string.sub(p, 1, 1), string.sub(p, 2)
        if tag == "s" then args[i] = unescape(v)
        elseif tag == "n" then args[i] = tonumber(v)
        elseif tag == "I" then args[i] = math.huge
        elseif tag == "J" then args[i] = -math.huge
        elseif tag == "N" then args[i] = 0 / 0
        elseif tag == "Z" then args[i] = -0.0
        elseif tag == "t" then args[i] = true
        elseif tag == "f" then args[i] = false
        elseif tag == "T" then args[i] = { unescape(v) }
        elseif tag == "F" then args[i] = print
        else args[i] = nil end
    end
    f(unpack(args, 1, n))
end
"#;

fuzz_target!(|input: &[u8]| {
    kemi_args::run(EngineKind::Lua, "fuzz.lua", SCRIPT, input);
});
