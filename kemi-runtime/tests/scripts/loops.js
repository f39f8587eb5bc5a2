// Used by the call-count test: many KSR calls in one run.
function ksr_request_route() {
    var sum = 0;
    for (var i = 1; i <= 1000; i++) {
        sum += KSR.t.echo_int(i);
    }
    KSR.info("sum " + sum);
}
