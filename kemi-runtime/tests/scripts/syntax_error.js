function ksr_request_route() {
    var x = 1;
    if (x) { + }
}
