// No ksr_request_route: the script does not load.
function ksr_reply_route() {
}
