-- An export with parameters called with none gives false and does nothing.
function ksr_request_route()
    if KSR.sl.sl_send_reply() == false then
        KSR.info("no args gives false")
    end
    if KSR.pv.sets() == false then
        KSR.info("pv too")
    end
end
