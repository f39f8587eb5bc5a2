-- A routing script in the style of Lua 5.1-era KEMI scripts: module(), unpack, table.getn,
-- loadstring, setfenv/getfenv, math.pow, string.gfind, a companion module on package.path.
-- Run side by side at Kamailio 5.6.3 (app_lua on Lua 5.1) and sipd by tests/kamailio/lua51.py;
-- every answer is a reply whose reason and X-Lua header carry what the script computed.

local digits = require("lua51digits")

-- module() defining a table of functions in a chunk of its own.
local defs = loadstring([[
module("sums", package.seeall)
function total(...)
    local args = {...}
    local s = 0
    for i = 1, table.getn(args) do
        s = s + args[i]
    end
    return s
end
]])
defs()

-- setfenv/getfenv: a function run in a table of its own.
local function scaled(x)
    return factor * x
end
setfenv(scaled, { factor = 3 })

local FEATURES = {
    "unpack", "loadstring", "module", "setfenv", "getfenv", "gcinfo", "newproxy",
    "table.getn", "table.setn", "table.maxn", "math.pow", "math.mod", "math.ldexp",
    "string.gfind", "math.log10", "string.gsub", "package.loaders", "package.seeall",
}

local function feature_types()
    local out = {}
    for _, name in ipairs(FEATURES) do
        local v = _G
        for part in string.gfind(name, "[^.]+") do
            v = type(v) == "table" and v[part] or nil
        end
        out[#out + 1] = name .. "=" .. type(v)
    end
    return table.concat(out, ",")
end

local function reply(code, reason, detail)
    KSR.hdr.append_to_reply("X-Lua: " .. detail .. "\r\n")
    KSR.sl.sl_send_reply(code, reason)
    KSR.x.exit()
end

function ksr_request_route()
    local user = KSR.pv.get("$rU") or ""
    if user == "features" then
        reply(200, "Features", feature_types())
    elseif user == "version" then
        reply(200, "Version", _VERSION .. " getn=" .. table.getn({ 1, 2, 3 }))
    elseif user == "compat" then
        local ok, err = pcall(table.setn, {}, 1)
        reply(200, "Compat", string.format("mod=%s setn=%s:%s", tostring(math.mod(7, 3)),
            tostring(ok), tostring(err)))
    end
    -- Any other user: digits summed via string.gfind + unpack + module function.
    local ds = digits.of(user)
    local total = sums.total(unpack(ds))
    local parts = {}
    for i = 1, table.getn(ds) do
        parts[i] = tostring(ds[i])
    end
    local detail = string.format("n=%d total=%d pow=%d scaled=%d env=%s maxn=%d",
        table.getn(ds), total, math.pow(2, table.getn(ds)), scaled(total),
        tostring(getfenv(scaled).factor), table.maxn(ds))
    if total == 0 then
        reply(404, "No Digits", detail)
    end
    reply(200, "Sum " .. table.concat(parts, "+"), detail)
end
