// an error at top level
var t = null;
KSR.info(t.x);
function ksr_request_route() {}
