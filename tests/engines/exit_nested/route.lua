-- KSR.x.exit() two calls deep ends the whole route.
local function inner()
    KSR.info("inner")
    KSR.x.exit()
    KSR.info("after exit")
end

local function outer()
    inner()
    KSR.info("after inner")
end

function ksr_request_route()
    outer()
    KSR.sl.sl_send_reply(500, "not reached")
end
