import KSR


def ksr_reply_route():
    KSR.info("reply only")
