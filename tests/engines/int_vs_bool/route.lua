-- INT results stay numbers (-1 is truthy), BOOL results stay booleans.
function ksr_request_route()
    if KSR.hdr.is_present("X-None") then
        KSR.info("int -1 is truthy")
    end
    if KSR.hdr.is_present("X-None") < 0 then
        KSR.info("and negative")
    end
    if not KSR.is_INVITE() then
        KSR.info("bool false is falsy")
    end
    if KSR.is_OPTIONS() == true then
        KSR.info("bool true is true")
    end
end
