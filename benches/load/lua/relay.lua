-- Stateless relay: every request goes to the sipp UAS at BENCH_DST, unchanged but for the
-- proxy's Via and Max-Forwards; replies come back along the Via (core stateless reply
-- forwarding in Kamailio, the reply pipeline in sipd). run.sh fills in @BENCH_DST@.
local DST = "@BENCH_DST@"

function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return 1
	end
	KSR.setdsturi(DST)
	KSR.forward()
	return 1
end
