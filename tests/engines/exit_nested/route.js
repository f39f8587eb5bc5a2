// KSR.x.exit() two calls deep ends the whole route.
function inner() {
    KSR.info("inner");
    KSR.x.exit();
    KSR.info("after exit");
}

function outer() {
    inner();
    KSR.info("after inner");
}

function ksr_request_route() {
    outer();
    KSR.sl.sl_send_reply(500, "not reached");
}
