// KSR.x.drop() marks the message dropped and ends the route.
function ksr_request_route() {
    KSR.info("dropping");
    KSR.x.drop();
    KSR.info("after drop");
}
