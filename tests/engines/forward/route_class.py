# A stateless forward to an explicit destination.
import KSR


def mod_init():
    return Routing()


class Routing:
    def ksr_request_route(self, msg):
        KSR.setdsturi("sip:127.0.0.1:5070")
        if KSR.forward() < 0:
            KSR.sl.sl_send_reply(500, "Forward Failed")
        return 1
