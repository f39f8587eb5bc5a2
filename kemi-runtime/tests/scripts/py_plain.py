# The same KSR, plain style (app_python3s): callbacks are module-level functions without the
# msg argument; event callbacks get the event name only.
import sys
import KSR

LOADED_LEN = KSR.t.strlen("ab")


def eq(got, want, what):
    if got != want or type(got) is not type(want):
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def ksr_request_route():
    KSR.info("plain request")
    KSR.hdr.append("X-Python: plain\r\n")
    KSR.sl.send_reply(404, "Not Here")


def ksr_onsend_route():
    KSR.info("onsend")


def ksr_event(evname):
    KSR.info("event %s" % evname)


def test_basics():
    eq(LOADED_LEN, 2, "KSR call at load time")
    eq(KSR.t.neg(), -1, "int result")
    eq(KSR.t.is_a(), True, "bool result")
    eq(KSR.t.strlen(5), False, "strict str")
    eq(KSR.pv.sets("$var(p)", "v"), True, "pv set")
    eq(KSR.pv.get("$var(p)"), "v", "pv get")
    eq(hasattr(KSR.x, "exit"), False, "no KSR.x.exit")
    eq(hasattr(KSR.x, "drop"), False, "no KSR.x.drop")


def test_optional(present):
    eq(hasattr(KSR, "opt"), present == "present", "KSR.opt follows the enabled set")


def test_exit():
    KSR.info("plain before exit")
    sys.exit(3)


def test_raise():
    raise ValueError("bad value")


def test_thread():
    # A thread the script starts has no current message: KSR calls there give False.
    import threading
    out = []
    t = threading.Thread(target=lambda: out.append(KSR.t.neg()))
    t.start()
    t.join()
    eq(out, [False], "KSR call on a script thread")
    eq(KSR.t.neg(), -1, "the callback's own thread still works")
