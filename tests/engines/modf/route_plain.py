# KSR.x.modf runs an export by function name with string arguments.
import KSR


def ksr_request_route():
    rc = KSR.x.modf("sl_send_reply", "403", "Forbidden")
    KSR.info("rc=" + str(rc))
    KSR.info("unknown=" + str(KSR.x.modf("no_such_function")))
    return 1
