// no ksr_request_route here
function ksr_reply_route() {}
