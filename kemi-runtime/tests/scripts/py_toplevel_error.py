import KSR

X = 1


def helper():
    return {}["missing"]


helper()


def ksr_request_route():
    KSR.info("never")
