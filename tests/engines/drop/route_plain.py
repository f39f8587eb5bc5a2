# Python has no KSR.x.drop(): KSR.set_drop() marks the message, `return` ends the route.
import KSR


def ksr_request_route():
    KSR.info("dropping")
    KSR.set_drop()
    return -255
