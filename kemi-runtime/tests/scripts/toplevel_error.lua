-- an error at top level
local t = nil
print(t.x)
function ksr_request_route() end
