-- Side-by-side probe of KSR.dispatcher (tests/kamailio/dispatcher.py): each OPTIONS names a case
-- in its R-URI user; the reply's X-DS header carries what the dispatcher functions returned and
-- set ($du, $ru, the _dsdst_/_dsctx_ XAVPs). Unchanged between Kamailio and sipd.

local function v(name)
    return tostring(KSR.pv.get(name))
end

local function xavps(n)
    local out = {}
    for i = 0, n - 1 do
        out[#out + 1] = v("$xavp(_dsdst_[" .. i .. "]=>uri)")
    end
    return table.concat(out, ",")
end

local function answer(text)
    KSR.hdr.append_to_reply("X-DS: " .. text .. "\r\n")
    KSR.sl.sl_send_reply(200, "OK")
end

function ksr_request_route()
    local case = KSR.pv.get("$rU") or ""
    if case == "rr" then
        local rc = KSR.dispatcher.ds_select_dst(1, 4)
        answer(rc .. "|" .. v("$du") .. "|" .. v("$xavp(_dsctx_=>cnt)") .. "|" .. xavps(3)
            .. "|" .. v("$xavp(_dsdst_[1]=>attrs)") .. "|" .. v("$xavp(_dsdst_=>grp)"))
    elseif case == "serial" then
        local rc = KSR.dispatcher.ds_select_dst(2, 8)
        answer(rc .. "|" .. v("$du") .. "|" .. xavps(3))
    elseif case == "limit" then
        local rc = KSR.dispatcher.ds_select_dst_limit(1, 8, 2)
        answer(rc .. "|" .. v("$du") .. "|" .. v("$xavp(_dsctx_=>cnt)") .. "|" .. xavps(3))
    elseif case == "domain" then
        local rc = KSR.dispatcher.ds_select_domain(2, 8)
        answer(rc .. "|" .. v("$ru") .. "|" .. v("$du"))
    elseif case == "xavp" then
        local rc = KSR.dispatcher.ds_select(1, 8)
        local set = KSR.dispatcher.ds_set_dst()
        answer(rc .. "|" .. set .. "|" .. v("$du") .. "|" .. xavps(3))
    elseif case == "next" then
        local r = { KSR.dispatcher.ds_select_dst(1, 8), v("$du") }
        for _ = 1, 3 do
            r[#r + 1] = KSR.dispatcher.ds_next_dst()
            r[#r + 1] = v("$du")
        end
        answer(table.concat(r, "|"))
    elseif case == "nextdomain" then
        local r = { KSR.dispatcher.ds_select_domain(2, 8), v("$ru") }
        r[#r + 1] = KSR.dispatcher.ds_next_domain()
        r[#r + 1] = v("$ru")
        answer(table.concat(r, "|"))
    elseif case == "routes" then
        local rc = KSR.dispatcher.ds_select_routes("2=8;1=8", "d")
        answer(rc .. "|" .. v("$du") .. "|" .. v("$xavp(_dsctx_=>cnt)") .. "|" .. xavps(6))
    elseif case == "exists" then
        answer(KSR.dispatcher.ds_list_exists(1) .. "|" .. KSR.dispatcher.ds_list_exists(99)
            .. "|" .. KSR.dispatcher.ds_is_active(1) .. "|" .. KSR.dispatcher.ds_is_active(99)
            .. "|" .. KSR.dispatcher.ds_is_active_uri(2, "sip:127.0.0.2:5062")
            .. "|" .. KSR.dispatcher.ds_is_active_uri(2, "sip:127.0.0.9:5060"))
    elseif case == "mark" then
        -- The first of set 3 marked inactive+probing; it stays so for the next cases.
        local r = { KSR.dispatcher.ds_select_dst(3, 8), v("$du") }
        r[#r + 1] = KSR.dispatcher.ds_mark_dst_state("ip")
        r[#r + 1] = KSR.dispatcher.ds_is_active_uri(3, v("$du"))
        r[#r + 1] = KSR.dispatcher.ds_is_active(3)
        r[#r + 1] = KSR.dispatcher.ds_next_dst()
        r[#r + 1] = v("$du")
        answer(table.concat(r, "|"))
    elseif case == "skip" then
        -- Selections skip the inactive one; candidates leave it out.
        local r = { KSR.dispatcher.ds_select_dst(3, 4), v("$du"), v("$xavp(_dsctx_=>cnt)") }
        answer(table.concat(r, "|"))
    elseif case == "markall" then
        local r = { KSR.dispatcher.ds_select_dst(3, 8), v("$du") }
        r[#r + 1] = KSR.dispatcher.ds_mark_dst()
        r[#r + 1] = KSR.dispatcher.ds_is_active(3)
        r[#r + 1] = KSR.dispatcher.ds_select_dst(3, 4)
        answer(table.concat(r, "|"))
    elseif case == "from" then
        answer(KSR.dispatcher.ds_is_from_list(1) .. "|" .. KSR.dispatcher.ds_is_from_lists()
            .. "|" .. KSR.dispatcher.ds_is_from_list_mode(1, 1)
            .. "|" .. KSR.dispatcher.ds_is_from_list_mode(2, 1)
            .. "|" .. KSR.dispatcher.ds_is_from_list_mode(1, 3)
            .. "|" .. KSR.dispatcher.ds_is_from_list_mode(-1, 2)
            .. "|" .. KSR.dispatcher.ds_is_from_list_uri(2, 0, "sip:127.0.0.2:5062")
            .. "|" .. KSR.dispatcher.ds_is_from_list_uri(2, 0, "sip:127.0.0.2:5099")
            .. "|" .. KSR.dispatcher.ds_is_from_list_uri(2, 0, "sip:127.0.0.2:5061;transport=tcp")
            .. "|" .. KSR.dispatcher.ds_is_from_list_uri(2, 0, "sip:127.0.0.2:5061"))
    else
        KSR.sl.sl_send_reply(404, "No such case")
    end
end
