# An OPTIONS keepalive is answered and the route ends with sys.exit().
import sys
import KSR


def mod_init():
    return Routing()


class Routing:
    def ksr_request_route(self, msg):
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "Keepalive")
            sys.exit()
        KSR.sl.sl_send_reply(500, "not reached")
        return 1
