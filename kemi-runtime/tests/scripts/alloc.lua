-- Used by the allocation test: 1000 int-argument and 1000 str-argument KSR calls per run.
function ksr_request_route()
    local n = 0
    for i = 1, 1000 do
        n = n + KSR.a.int_fn(i) + KSR.a.str_fn("sip:alice@example.com")
    end
    if n ~= 1000 * 21 + 500500 then
        error("unexpected sum " .. n)
    end
end

function lossy()
    for i = 1, 1000 do
        KSR.a.str_fn("\xff")
    end
end
