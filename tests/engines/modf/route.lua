-- KSR.x.modf runs an export by function name with string arguments.
function ksr_request_route()
    local rc = KSR.x.modf("sl_send_reply", "403", "Forbidden")
    KSR.info("rc=" .. rc)
    KSR.info("unknown=" .. KSR.x.modf("no_such_function"))
end
