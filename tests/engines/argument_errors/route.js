// An export with parameters called with none gives false and does nothing.
function ksr_request_route() {
    if (KSR.sl.sl_send_reply() === false) {
        KSR.info("no args gives false");
    }
    if (KSR.pv.sets() === false) {
        KSR.info("pv too");
    }
}
