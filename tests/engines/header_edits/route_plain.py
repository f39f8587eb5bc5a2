# Header edits are applied to the outgoing message, not visible to reads in the same route.
import sys
import KSR


def ksr_request_route():
    KSR.hdr.append("X-Routed: yes\r\n")
    KSR.hdr.remove("User-Agent")
    if KSR.maxfwd.process_maxfwd(10) < 0:
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        sys.exit()
    KSR.info("ua still reads " + KSR.pv.gete("$ua"))
    return 1
