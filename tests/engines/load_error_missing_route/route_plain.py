# No ksr_request_route: the script does not load.
import KSR


def ksr_reply_route():
    return 1
