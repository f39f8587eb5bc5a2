-- Used by the call-count test: many KSR calls in one run.
function ksr_request_route()
    local sum = 0
    for i = 1, 1000 do
        sum = sum + KSR.t.echo_int(i)
    end
    KSR.info("sum " .. sum)
end
