// An OPTIONS keepalive is answered and the route ends with exit.
function ksr_request_route() {
    if (KSR.is_OPTIONS()) {
        KSR.sl.sl_send_reply(200, "Keepalive");
        KSR.x.exit();
    }
    KSR.sl.sl_send_reply(500, "not reached");
}
