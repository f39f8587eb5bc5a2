-- Companion of lua51-era.lua, as a Lua 5.1 module: module() with package.seeall.
module("lua51digits", package.seeall)

function of(s)
    local out = {}
    for d in string.gfind(s, "%d") do
        table.insert(out, tonumber(d))
    end
    return out
end
