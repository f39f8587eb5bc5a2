# PV reads (message fields, $var, null headers) and writes ($ru, $du, $var), and a flag.
import KSR


def mod_init():
    return Routing()


class Routing:
    def ksr_request_route(self, msg):
        KSR.pv.sets("$var(who)", "bob")
        KSR.pv.seti("$var(n)", 41)
        KSR.info("who=" + KSR.pv.get("$var(who)") + " n=" + str(KSR.pv.get("$var(n)") + 1))
        KSR.info("fU=" + KSR.pv.get("$fU") + " rm=" + KSR.pv.get("$rm"))
        if KSR.pv.get("$hdr(X-None)") is None:
            KSR.info("missing header is null, gete=[" + KSR.pv.gete("$hdr(X-None)") + "]")
        KSR.pv.sets("$ru", "sip:carol@127.0.0.2")
        KSR.pv.sets("$du", "sip:127.0.0.3:5070")
        KSR.setflag(2)
        return 1
