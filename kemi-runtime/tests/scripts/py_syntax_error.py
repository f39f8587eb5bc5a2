import KSR


def ksr_request_route():
    KSR.info("ok")


def broken(:
    pass
