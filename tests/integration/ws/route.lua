-- A registrar proxy in the style of Kamailio's kamailio-basic-kemi-lua.lua (the copy in
-- ../registrar/route.lua) with the WebSocket part of Kamailio's kamailio.cfg (WITH_WEBSOCKETS):
-- anti-flood with pike and an htable ban list, digest auth of REGISTER and of calls from local
-- users, trusted addresses by permissions, NAT detection that counts a WebSocket client as
-- behind NAT (nat_uac_test 64: fix_nated_register, Contact aliases), registrar save/lookup,
-- record-routing, tm relay; replies from a WebSocket client get a Contact alias so in-dialog
-- requests find their way back (handle_ruri_alias). The xhttp event route of Kamailio's config is
-- not needed: sipd answers the upgrade itself (KSR.websocket.handle_handshake is a no-op).
FLT_NATS = 5
FLB_NATB = 6

function ksr_request_route()
    route_reqinit()
    route_natdetect()
    if KSR.is_CANCEL() then
        if KSR.tm.t_check_trans() > 0 then
            route_relay()
        end
        return 1
    end
    if not KSR.is_ACK() then
        if KSR.tmx.t_precheck_trans() > 0 then
            KSR.tm.t_check_trans()
            return 1
        end
        if KSR.tm.t_check_trans() == 0 then return 1 end
    end
    route_withindlg()
    route_auth()
    KSR.hdr.remove("Route")
    if KSR.is_method_in("IS") then
        KSR.rr.record_route()
    end
    route_sipout()
    route_registrar()
    if KSR.corex.has_ruri_user() < 0 then
        KSR.sl.sl_send_reply(484, "Address Incomplete")
        return 1
    end
    route_location()
    return 1
end

function route_relay()
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_reply_error()
    end
    KSR.x.exit()
end

function route_reqinit()
    KSR.set_reply_no_connect()
    KSR.force_rport()
    if not KSR.is_myself_srcip() then
        local srcip = KSR.kx.get_srcip()
        if KSR.htable.sht_match_name("ipban", "eq", srcip) > 0 then
            KSR.x.exit()
        end
        if KSR.pike.pike_check_req() < 0 then
            KSR.err("ALERT: pike blocking " .. KSR.kx.get_method() .. " from " .. srcip .. "\n")
            KSR.htable.sht_seti("ipban", srcip, 1)
            KSR.x.exit()
        end
    end
    if KSR.maxfwd.process_maxfwd(10) < 0 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        KSR.x.exit()
    end
    if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.corex.has_ruri_user() < 0 then
        KSR.sl.sl_send_reply(200, "Keepalive")
        KSR.x.exit()
    end
    if KSR.sanity.sanity_check(17895, 7) < 0 then
        KSR.x.exit()
    end
end

function route_withindlg()
    if KSR.siputils.has_totag() < 0 then return 1 end
    if KSR.rr.loose_route() > 0 then
        if not KSR.isdsturiset() then
            KSR.nathelper.handle_ruri_alias()
        end
        route_relay()
    end
    if KSR.is_ACK() then
        if KSR.tm.t_check_trans() > 0 then
            route_relay()
        end
        KSR.x.exit()
    end
    KSR.sl.sl_send_reply(404, "Not here")
    KSR.x.exit()
end

function route_registrar()
    if not KSR.is_REGISTER() then return 1 end
    if KSR.isflagset(FLT_NATS) then
        KSR.setbflag(FLB_NATB)
    end
    if KSR.registrar.save("location", 0) < 0 then
        KSR.sl.sl_reply_error()
    end
    KSR.x.exit()
end

function route_location()
    local rc = KSR.registrar.lookup("location")
    if rc < 0 then
        KSR.tm.t_newtran()
        if rc == -1 or rc == -3 then
            KSR.sl.send_reply(404, "Not Found")
            KSR.x.exit()
        elseif rc == -2 then
            KSR.sl.send_reply(405, "Method Not Allowed")
            KSR.x.exit()
        end
    end
    route_relay()
end

function route_auth()
    if not KSR.auth then return 1 end
    if KSR.permissions and not KSR.is_REGISTER() then
        if KSR.permissions.allow_source_address(1) > 0 then
            return 1
        end
    end
    if KSR.is_REGISTER() or KSR.is_myself_furi() then
        if KSR.auth_db.auth_check(KSR.kx.gete_fhost(), "subscriber", 1) < 0 then
            KSR.auth.auth_challenge(KSR.kx.gete_fhost(), 0)
            KSR.x.exit()
        end
        if not KSR.is_method_in("RP") then
            KSR.auth.consume_credentials()
        end
    end
    if (not KSR.is_myself_furi()) and (not KSR.is_myself_ruri()) then
        KSR.sl.sl_send_reply(403, "Not relaying")
        KSR.x.exit()
    end
    return 1
end

function route_natdetect()
    if not KSR.nathelper then return 1 end
    if KSR.nathelper.nat_uac_test(19) > 0 or KSR.nathelper.nat_uac_test(64) > 0 then
        if KSR.is_REGISTER() then
            KSR.nathelper.fix_nated_register()
        elseif KSR.siputils.is_first_hop() > 0 then
            KSR.nathelper.set_contact_alias()
        end
        KSR.setflag(FLT_NATS)
    end
    return 1
end

function route_sipout()
    if KSR.is_myself_ruri() then return 1 end
    KSR.hdr.append("P-Hint: outbound\r\n")
    route_relay()
end

function ksr_reply_route()
    if KSR.sanity.sanity_check(17604, 6) < 0 then
        KSR.x.drop()
    end
    if KSR.nathelper.nat_uac_test(64) > 0 then
        KSR.nathelper.set_contact_alias()
    end
    return 1
end
