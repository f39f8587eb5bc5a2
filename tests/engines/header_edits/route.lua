-- Header edits are applied to the outgoing message, not visible to reads in the same route.
function ksr_request_route()
    KSR.hdr.append("X-Routed: yes\r\n")
    KSR.hdr.remove("User-Agent")
    if KSR.maxfwd.process_maxfwd(10) < 0 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        KSR.x.exit()
    end
    KSR.info("ua still reads " .. KSR.pv.gete("$ua"))
end
