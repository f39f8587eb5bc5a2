# An export with parameters called with none gives False and does nothing.
import KSR


def ksr_request_route():
    if KSR.sl.sl_send_reply() is False:
        KSR.info("no args gives false")
    if KSR.pv.sets() is False:
        KSR.info("pv too")
    return 1
