# INT results stay ints (-1 is truthy), BOOL results stay bools.
import KSR


def ksr_request_route():
    if KSR.hdr.is_present("X-None"):
        KSR.info("int -1 is truthy")
    if KSR.hdr.is_present("X-None") < 0:
        KSR.info("and negative")
    if not KSR.is_INVITE():
        KSR.info("bool false is falsy")
    if KSR.is_OPTIONS() is True:
        KSR.info("bool true is true")
    return 1
