# exit() two calls deep ends the whole route (Python has no KSR.x.exit()).
import KSR


def inner():
    KSR.info("inner")
    exit()
    KSR.info("after exit")


def outer():
    inner()
    KSR.info("after inner")


def ksr_request_route():
    outer()
    KSR.sl.sl_send_reply(500, "not reached")
    return 1
