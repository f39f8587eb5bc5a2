# A runtime exception ends this message's route only; what was done before it stays.
import KSR


def ksr_request_route():
    KSR.sl.sl_send_reply(100, "Trying")
    if KSR.pv.get("$rU") == "fail":
        t = None
        KSR.info(t.field)
    KSR.sl.sl_send_reply(404, "Not Here")
    return 1
