// exits while loading
KSR.x.exit();
function ksr_request_route() {}
