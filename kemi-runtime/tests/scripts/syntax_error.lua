function ksr_request_route()
    local x = 1
    if x then +
end
