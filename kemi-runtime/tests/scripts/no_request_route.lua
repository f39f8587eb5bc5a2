-- only a reply route
function ksr_reply_route()
end
