# sys.exit() two calls deep ends the whole route (Python has no KSR.x.exit()).
import sys
import KSR


def inner():
    KSR.info("inner")
    sys.exit()
    KSR.info("after exit")


def outer():
    inner()
    KSR.info("after inner")


def mod_init():
    return Routing()


class Routing:
    def ksr_request_route(self, msg):
        outer()
        KSR.sl.sl_send_reply(500, "not reached")
        return 1
