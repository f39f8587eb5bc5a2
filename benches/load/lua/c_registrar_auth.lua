-- Workload C with digest auth (benches/load/c.sh, "c_auth"): the baseline's c_registrar.lua with
-- auth_check before save, as a registrar with authentication does it.
--   REGISTER without (valid) credentials -> auth_challenge: 401 with a fresh nonce
--   REGISTER with credentials            -> auth_check against the subscriber table, save("location")
-- One registration is two REGISTERs (the challenged one and the authenticated one).
function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return 1
	end
	if KSR.is_REGISTER() then
		local realm = KSR.kx.gete_fhost()
		if KSR.auth_db.auth_check(realm, "subscriber", 1) < 0 then
			KSR.auth.auth_challenge(realm, 0)
			return 1
		end
		if KSR.registrar.save("location", 0) < 0 then
			KSR.sl.sl_reply_error()
		end
		return 1
	end
	KSR.sl.sl_send_reply(405, "Method Not Allowed")
	return 1
end
