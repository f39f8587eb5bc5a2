-- examples/registrar.lua: a registrar proxy for one domain, routed through the KSR (KEMI) API.
--
-- What it does, in the order a request meets it:
--   1. anti-flood: an address that sends too much (pike) is banned for 5 minutes (htable "ipban");
--   2. sanity: Max-Forwards, malformed requests, OPTIONS keepalives to the proxy itself;
--   3. NAT: a UA whose Via/Contact do not match where its packets come from is remembered by its
--      source address (REGISTER: the binding's `received`; calls: an alias param in the Contact);
--   4. transactions: retransmissions absorbed, CANCEL matched to its INVITE;
--   5. in-dialog requests follow their Route set (record-routed by step 7);
--   6. authentication: trusted gateways (permissions, address group 1) pass; REGISTER must carry
--      a subscriber's credentials for the AOR it registers; calls from our domain must be
--      authenticated (407); calls from elsewhere may only reach our own users (no open relay);
--   7. INVITE/SUBSCRIBE are record-routed, so the dialog's next requests come through us;
--   8. REGISTER is saved in the location table (the registrar replies itself);
--   9. other requests for our users go to their registered contacts (parallel forking on equal q).
--
-- Subscribers and trusted addresses: `sipd user add alice@example.com secret --config
-- examples/registrar.toml` and `sipd address add 1 192.0.2.10/32 --config examples/registrar.toml`.
-- The domain is whatever the proxy is known as (the listen addresses and `aliases` of the TOML).

-- Flags, like the #!define FLT_/FLB_ values of a Kamailio cfg.
local FLT_NATS = 5 -- transaction flag: the sender is behind a NAT
local FLB_NATB = 6 -- branch flag: the callee is behind a NAT (saved with the binding, usrloc nat_bflag)

-- Banned addresses live here (declared by [modparam.htable] in registrar.toml).
local BAN_TABLE = "ipban"
-- Address group of the trusted peers (gateways, PBXs) in the `address` table.
local TRUSTED_GROUP = 1

-- Each step returns true when it has dealt with the request (replied, relayed or dropped it).

-- Step 1: anti-flood. Our own addresses are never limited.
local function flood_guard()
    if KSR.is_myself_srcip() then
        return false
    end
    local src = KSR.kx.get_srcip()
    if KSR.htable.sht_get(BAN_TABLE, src) ~= nil then
        -- still banned: drop silently, an attacker learns nothing
        return true
    end
    if KSR.pike.pike_check_req() < 0 then
        KSR.warn("flood from " .. src .. ": banned for 5 minutes\n")
        KSR.htable.sht_seti(BAN_TABLE, src, 1)
        return true
    end
    return false
end

-- Step 2: basic checks.
local function sanity_guard()
    if KSR.maxfwd.process_maxfwd(10) < 0 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return true
    end
    if KSR.sanity.sanity_check(17895, 7) < 0 then
        KSR.warn("malformed request from " .. KSR.kx.get_srcip() .. "\n")
        return true
    end
    -- a keepalive addressed to the proxy itself (no user part)
    if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.corex.has_ruri_user() < 0 then
        KSR.sl.sl_send_reply(200, "Keepalive")
        return true
    end
    return false
end

-- Step 3: NAT detection (19 = private Contact address, Via host or port differ from the source).
local function nat_detect()
    if KSR.nathelper.nat_uac_test(19) <= 0 then
        return
    end
    KSR.setflag(FLT_NATS)
    if KSR.is_REGISTER() then
        -- the binding keeps the real source as `received`; lookup sends there
        KSR.nathelper.fix_nated_register()
    elseif KSR.siputils.is_first_hop() > 0 then
        -- dialog requests: the source goes into the Contact as ;alias=, undone by handle_ruri_alias
        KSR.nathelper.add_contact_alias()
    end
end

-- Media through rtpengine when one runs (registrar.toml's [modparam.rtpengine]; README "Media
-- relay"): offer on INVITE/UPDATE with SDP, answer on the replies, delete on BYE/CANCEL and on a
-- failed INVITE. When no daemon answers the call goes on with its media unrelayed.
local function media()
    if KSR.rtpengine then
        KSR.rtpengine.rtpengine_manage("replace-origin replace-session-connection ICE=remove")
    end
end

-- Hand a request to tm: statefully forwarded to its R-URI / destination URI.
local function relay()
    media()
    if KSR.is_method_in("ISU") then
        KSR.tm.t_on_reply("ksr_onreply_nat")
    end
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_reply_error()
    end
    return true
end

-- Step 4: retransmissions and CANCEL.
local function transactions()
    if KSR.is_CANCEL() then
        -- relayed only when it matches an INVITE transaction; otherwise tm has answered it
        if KSR.tm.t_check_trans() > 0 then
            relay()
        end
        return true
    end
    if not KSR.is_ACK() then
        if KSR.tmx.t_precheck_trans() > 0 then
            -- a retransmission of a request still being processed: tm resends the last reply
            KSR.tm.t_check_trans()
            return true
        end
        if KSR.tm.t_check_trans() == 0 then
            return true
        end
    end
    return false
end

-- Step 5: requests inside a dialog (they have a To tag).
local function in_dialog()
    if KSR.siputils.has_totag() < 0 then
        return false
    end
    if KSR.rr.loose_route() > 0 then
        -- the next hop is ours to resolve when a NATed UA's Contact carried an alias
        if not KSR.isdsturiset() then
            KSR.nathelper.handle_ruri_alias()
        end
        return relay()
    end
    if KSR.is_ACK() then
        -- an ACK for a negative reply we relayed goes on statefully; a stray ACK is dropped
        if KSR.tm.t_check_trans() > 0 then
            relay()
        end
        return true
    end
    KSR.sl.sl_send_reply(404, "Not here")
    return true
end

-- Step 6: who may use this proxy.
local function authorize()
    -- trusted peers (IP authentication) send calls without credentials; they never register
    if not KSR.is_REGISTER() and KSR.permissions.allow_source_address(TRUSTED_GROUP) > 0 then
        return false
    end
    local realm = KSR.kx.gete_fhost()
    if KSR.is_REGISTER() then
        -- the credentials must be a subscriber's, and (last arg 1) the same user as the To AOR
        if KSR.auth_db.auth_check(realm, "subscriber", 1) < 0 then
            KSR.auth.auth_challenge(realm, 0) -- 401 with WWW-Authenticate
            return true
        end
        return false
    end
    if KSR.is_myself_furi() then
        -- a call from one of our users: prove it (From user = credentials' user)
        if KSR.auth_db.auth_check(realm, "subscriber", 1) < 0 then
            KSR.auth.auth_challenge(realm, 0) -- 407 with Proxy-Authenticate
            return true
        end
        -- the credentials are ours: do not pass them on
        KSR.auth.consume_credentials()
        return false
    end
    -- not one of ours and not trusted: it may only call our users
    if not KSR.is_myself_ruri() then
        KSR.sl.sl_send_reply(403, "Not relaying")
        return true
    end
    return false
end

-- Step 8: registrations.
local function registrar()
    if KSR.isflagset(FLT_NATS) then
        -- remember with the binding that this contact is behind a NAT
        KSR.setbflag(FLB_NATB)
    end
    -- save() answers the REGISTER itself (200 with every binding, or the error); 0 = default flags
    if KSR.registrar.save("location", 0) < 0 then
        KSR.sl.sl_reply_error()
    end
    return true
end

-- Step 9: calls and other requests to our users.
local function to_local_user()
    if KSR.corex.has_ruri_user() < 0 then
        KSR.sl.sl_send_reply(484, "Address Incomplete")
        return true
    end
    local rc = KSR.registrar.lookup("location")
    if rc == -2 then
        -- registered, but none of the contacts accepts this method (method_filtering)
        KSR.sl.sl_send_reply(405, "Method Not Allowed")
        return true
    elseif rc == -3 then
        -- not in memory, and the shared store ([db] url = "redis://...") cannot answer now
        KSR.hdr.append_to_reply("Retry-After: 5\r\n")
        KSR.sl.sl_send_reply(503, "Service Unavailable")
        return true
    elseif rc < 0 then
        -- unknown user, or no binding left
        KSR.sl.sl_send_reply(404, "Not Found")
        return true
    end
    return relay()
end

function ksr_request_route()
    -- replies to this request go back where it came from, and never open a new TCP connection
    KSR.force_rport()
    KSR.set_reply_no_connect()

    if flood_guard() or sanity_guard() then
        return 1
    end
    nat_detect()
    if transactions() or in_dialog() then
        return 1
    end

    -- from here on: initial requests only
    if authorize() then
        return 1
    end
    -- Route headers on an initial request are not ours to follow
    KSR.hdr.remove("Route")
    -- Step 7: stay on the path of the dialogs we help to create
    if KSR.is_method_in("IS") then
        KSR.rr.record_route()
    end

    if not KSR.is_myself_ruri() then
        -- an authenticated user of ours calling another domain (authorize() let it through)
        relay()
        return 1
    end
    if KSR.is_REGISTER() then
        registrar()
        return 1
    end
    to_local_user()
    return 1
end

-- Replies of relayed INVITE/SUBSCRIBE/UPDATE: their SDP through the media relay, and a NATed
-- callee's Contact gets the alias too.
function ksr_onreply_nat()
    media()
    if KSR.isbflagset(FLB_NATB) and KSR.kx.get_status() < 300 then
        KSR.nathelper.add_contact_alias()
    end
    return 1
end
