import KSR


def mod_init():
    KSR.info("forgot to return the handler")
