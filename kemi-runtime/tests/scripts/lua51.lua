-- Lua 5.1-era globals as scripts written for Kamailio's app_lua (Lua 5.1) use them.
-- Each test_* callback raises an error on the first mismatch.

local function eq(got, want, what)
    if got ~= want then
        error(string.format("%s: got %s, want %s", what, tostring(got), tostring(want)), 2)
    end
end

-- A 5.1 module, declared the 5.1 way: `module` sets the environment of the function calling it.
local function define_module()
    module("sipd_compat", package.seeall)
    function twice(n)
        return 2 * n
    end
end
define_module()

function ksr_request_route()
    KSR.info("request")
end

function test_lua51_globals()
    local a, b, c = unpack({ "x", "y", "z" })
    eq(a .. b .. c, "xyz", "unpack")
    eq(select("#", unpack({ 1, 2, 3 }, 2)), 2, "unpack from an index")
    eq(table.getn({ 1, 2, 3, 4 }), 4, "table.getn")
    local f = loadstring("return 6 * 7")
    eq(f(), 42, "loadstring")
    eq(math.pow(2, 10), 1024, "math.pow")
    eq(tostring(math.pow(2, 10)), "1024", "a whole number formats without a fraction")
    local words = {}
    for w in string.gfind("one two three", "%a+") do
        words[#words + 1] = w
    end
    eq(table.concat(words, ","), "one,two,three", "string.gfind")
    eq(sipd_compat.twice(21), 42, "module")
    eq(package.loaded.sipd_compat, sipd_compat, "module registers in package.loaded")
    eq(twice, nil, "module functions stay out of _G")
    local env = { y = 5 }
    local g = loadstring("return y")
    setfenv(g, env)
    eq(g(), 5, "setfenv")
    eq(getfenv(g), env, "getfenv")
    eq(7 / 2, 3.5, "/ divides")
    eq(math.floor(7 / 2), 3, "math.floor")
end

function test_no_ffi()
    eq(ffi, nil, "ffi global")
    local ok, err = pcall(require, "ffi")
    eq(ok, false, "require ffi")
    eq(type(err), "string", "require ffi error")
end
