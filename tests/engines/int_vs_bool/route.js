// INT results stay numbers (-1 is truthy), BOOL results stay booleans.
function ksr_request_route() {
    if (KSR.hdr.is_present("X-None")) {
        KSR.info("int -1 is truthy");
    }
    if (KSR.hdr.is_present("X-None") < 0) {
        KSR.info("and negative");
    }
    if (!KSR.is_INVITE()) {
        KSR.info("bool false is falsy");
    }
    if (KSR.is_OPTIONS() === true) {
        KSR.info("bool true is true");
    }
}
