# Many KSR calls per run, for the two-thread test.
import KSR


def ksr_request_route():
    total = 0
    for i in range(1, 1001):
        total += KSR.t.echo_int(i)
    KSR.pv.sets("$var(total)", str(total))
