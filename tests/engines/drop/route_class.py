# Python has no KSR.x.drop(): KSR.set_drop() marks the message, `return` ends the route.
import KSR


def mod_init():
    return Routing()


class Routing:
    def ksr_request_route(self, msg):
        KSR.info("dropping")
        KSR.set_drop()
        return -255
