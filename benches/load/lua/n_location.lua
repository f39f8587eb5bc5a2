-- Workload N (benches/load/nodes.sh): a stateful proxy that finds the callee in the shared
-- location table (Redis) and relays the call to it, record-routed; REGISTER is saved.
function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return 1
	end
	if KSR.siputils.has_totag() > 0 then
		-- sipp's UAC sends its ACK and BYE to the proxy's address (no Route): find the callee
		if KSR.rr.loose_route() < 0 and KSR.registrar.lookup("location") < 0 then
			return 1
		end
		KSR.tm.t_relay()
		return 1
	end
	if KSR.is_REGISTER() then
		KSR.registrar.save("location", 0)
		return 1
	end
	if KSR.is_INVITE() then
		KSR.rr.record_route()
	end
	if KSR.registrar.lookup("location") < 0 then
		KSR.sl.sl_send_reply(404, "Not Found")
		return 1
	end
	if KSR.tm.t_relay() < 0 then
		KSR.sl.sl_reply_error()
	end
	return 1
end
