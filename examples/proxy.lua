-- examples/proxy.lua: a stateless SIP proxy routed through the KSR (KEMI) API.
--
-- Requests addressed to the proxy itself are answered (OPTIONS) or refused (REGISTER: there is
-- no registrar); everything else is forwarded statelessly: to the R-URI's host, or to
-- UPSTREAM when the R-URI names this proxy. Replies come back through ksr_reply_route.
-- Every function used here is listed by `sipd api list --format text`.

-- Where requests for our own domain go (a registrar, a PBX...). Edit to taste.
local UPSTREAM = "sip:127.0.0.1:5080"

-- Methods this proxy answers itself or forwards.
local ALLOW = "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, UPDATE, PRACK, REFER, NOTIFY, SUBSCRIBE\r\n"

function ksr_request_route()
    -- RFC 3261 16.3 step 3 / 16.6 step 3: loop protection.
    local mf = KSR.maxfwd.process_maxfwd(10)
    if mf == -1 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return
    elseif mf == -2 then
        KSR.sl.sl_send_reply(400, "Bad Max-Forwards")
        return
    end

    local method = KSR.pv.get("$rm")
    if KSR.is_myself_ruri() then
        if KSR.is_OPTIONS() then
            -- Keepalive pings to the proxy itself.
            KSR.hdr.append_to_reply(ALLOW)
            KSR.sl.sl_send_reply(200, "OK")
            return
        end
        if KSR.is_REGISTER() then
            KSR.sl.sl_send_reply(403, "No Registrar Here")
            return
        end
        -- Anything else for our domain goes upstream; the R-URI is kept.
        KSR.setdsturi(UPSTREAM)
    end

    -- Let the next hop know who forwarded it, and record the original source.
    KSR.hdr.append("X-Forwarded-By: sipd\r\n")
    KSR.hdr.append("X-Received-From: " .. KSR.pv.get("$si") .. ":" .. KSR.pv.get("$sp") .. "\r\n")

    KSR.info("forwarding " .. method .. " " .. KSR.pv.get("$ru") .. " from " .. KSR.pv.get("$si") .. "\n")
    if KSR.forward() < 0 then
        if not KSR.is_ACK() then
            KSR.sl.sl_send_reply(500, "Cannot Forward")
        end
    end
end

function ksr_reply_route()
    KSR.dbg("reply " .. KSR.pv.get("$rs") .. " for call " .. KSR.pv.get("$ci") .. "\n")
end

function ksr_onsend_route()
    -- Never send a request back to the host it came from on the same port (a trivial loop).
    if KSR.pv.get("$du") == nil and KSR.is_myself_ruri() then
        KSR.warn("not forwarding to myself: " .. KSR.pv.get("$ru") .. "\n")
        KSR.x.drop()
    end
end
