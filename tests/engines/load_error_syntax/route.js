// A syntax error on line 3: the script does not load.
function ksr_request_route() {
    var x = = 1;
}
