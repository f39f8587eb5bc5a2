-- PV reads (message fields, $var, null headers) and writes ($ru, $du, $var), and a flag.
function ksr_request_route()
    KSR.pv.sets("$var(who)", "bob")
    KSR.pv.seti("$var(n)", 41)
    KSR.info("who=" .. KSR.pv.get("$var(who)") .. " n=" .. (KSR.pv.get("$var(n)") + 1))
    KSR.info("fU=" .. KSR.pv.get("$fU") .. " rm=" .. KSR.pv.get("$rm"))
    if KSR.pv.get("$hdr(X-None)") == nil then
        KSR.info("missing header is null, gete=[" .. KSR.pv.gete("$hdr(X-None)") .. "]")
    end
    KSR.pv.sets("$ru", "sip:carol@127.0.0.2")
    KSR.pv.sets("$du", "sip:127.0.0.3:5070")
    KSR.setflag(2)
end
