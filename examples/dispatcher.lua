-- Load balancing and failover with KSR.dispatcher (examples/dispatcher.toml).
-- New calls go round robin (algorithm 4) over set 1; in-dialog requests follow the route set.
-- When a destination times out or answers 5xx, it is marked inactive and the call moves on to
-- the next candidate ds_select_dst() kept in $xavp(_dsdst_).

local SET = 1
local ALG = 4

function ksr_request_route()
    if KSR.maxfwd.process_maxfwd(10) < 0 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        return 1
    end
    if KSR.siputils.has_totag() > 0 then
        if KSR.rr.loose_route() > 0 or KSR.is_ACK() then
            KSR.tm.t_relay()
        else
            KSR.sl.sl_send_reply(404, "Not here")
        end
        return 1
    end
    if KSR.is_CANCEL() then
        if KSR.tm.t_check_trans() > 0 then
            KSR.tm.t_relay()
        end
        return 1
    end
    if KSR.tm.t_check_trans() == 0 then
        return 1
    end
    if KSR.is_INVITE() then
        KSR.rr.record_route()
    end
    if KSR.dispatcher.ds_select_dst(SET, ALG) < 0 then
        KSR.sl.sl_send_reply(503, "Service Unavailable")
        return 1
    end
    KSR.tm.t_on_failure("ksr_failure_dispatch")
    KSR.tm.t_relay()
end

function ksr_failure_dispatch()
    if KSR.tm.t_is_canceled() > 0 then
        return 1
    end
    if KSR.tm.t_branch_timeout() > 0 or KSR.tm.t_check_status("5[0-9][0-9]") > 0 then
        KSR.dispatcher.ds_mark_dst()
        if KSR.dispatcher.ds_next_dst() > 0 then
            KSR.tm.t_on_failure("ksr_failure_dispatch")
            KSR.tm.t_relay()
        end
    end
end
