-- A runtime error ends this message's route only; what was done before it stays.
function ksr_request_route()
    KSR.sl.sl_send_reply(100, "Trying")
    if KSR.pv.get("$rU") == "fail" then
        local t = nil
        KSR.info(t.field)
    end
    KSR.sl.sl_send_reply(404, "Not Here")
end
