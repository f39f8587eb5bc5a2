# KSR call semantics as seen from Python, class style (app_python3): mod_init() returns the
# handler object and Kamailio calls its methods. Each test_* method raises AssertionError on the
# first mismatch; the Rust test (tests/py_engine.rs) runs them by name.
import sys
import KSR


def eq(got, want, what):
    if got != want or type(got) is not type(want):
        raise AssertionError("%s: got %r (%s), want %r (%s)"
                             % (what, got, type(got).__name__, want, type(want).__name__))


# A faked message is current while the file loads: KSR calls work (kemi-reference.md §3.3).
LOADED_LEN = KSR.t.strlen("abcd")
LOADED_INFO = KSR.info("at load")
MOD_INITS = 0


def mod_init():
    global MOD_INITS
    MOD_INITS += 1
    KSR.info("mod_init %d" % KSR.t.strlen("xyz"))
    return Handler()


class Handler:
    def __init__(self):
        self.rank = None
        self.runs = 0

    def child_init(self, rank):
        self.rank = rank
        return 0

    def ksr_request_route(self, msg):
        self.runs += 1
        KSR.info("request %s %s" % (msg.Method, msg.RURI))
        if KSR.pv.get("$var(seen)") is None:
            KSR.pv.sets("$var(seen)", "yes")
        KSR.hdr.append("X-Python: class\r\n")
        KSR.sl.send_reply(200, "OK from Python")
        return 1

    def ksr_reply_route(self, msg):
        KSR.info("reply %s" % msg.Status)
        return 1

    def ksr_failure_one(self, msg):
        KSR.info("failure %s" % msg.Method)

    def ksr_event(self, msg, evname):
        KSR.info("event %s" % evname)

    def test_load_time(self, msg):
        eq(LOADED_LEN, 4, "KSR call at load time")
        eq(LOADED_INFO, 0, "NONE call at load time")
        eq(MOD_INITS, 1, "mod_init calls")
        eq(self.rank, 1, "child_init rank")

    def test_module_shape(self, msg):
        eq(KSR.__name__, "KSR", "module name")
        eq(sorted(n for n in dir(KSR.x) if not n.startswith("_")), ["modf"], "KSR.x members")
        eq(hasattr(KSR, "t"), True, "enabled module present")
        eq(hasattr(KSR, "info"), True, "core export on KSR")
        eq(callable(KSR.t.neg), True, "exports are callable")
        import KSR.pv as pv_child
        eq(pv_child is KSR.pv, True, "import KSR.pv")

    def test_int_vs_bool(self, msg):
        eq(KSR.t.neg(), -1, "int result")
        if not KSR.t.neg():
            raise AssertionError("-1 must be truthy")
        eq(KSR.t.is_a(), True, "bool true")
        eq(KSR.t.is_not(), False, "bool false")
        eq(KSR.t.is_a() is True, True, "bool is the True singleton")

    def test_none_results(self, msg):
        eq(KSR.set_drop(), 0, "NONE on the 0-param path is int 0")
        eq(KSR.info("x"), 0, "NONE on the 1-param path is int 0")

    def test_xval(self, msg):
        eq(KSR.t.xnull(), None, "null")
        eq(KSR.t.xnone(), None, "none")
        eq(KSR.t.xlong(), 5000000000, "long stays an int")
        eq(KSR.t.xint(), 7, "xval int")
        eq(KSR.t.xbool(), True, "xval bool")
        eq(KSR.t.echo_str("héllo"), "héllo", "xval str, UTF-8")
        eq(KSR.t.xarr(), None, "arrays are unsupported")
        eq(KSR.t.xdict(), None, "dicts are unsupported")

    def test_args(self, msg):
        eq(KSR.t.strlen("abc"), 3, "str param")
        eq(KSR.t.strlen(5), False, "int to a str param")
        eq(KSR.t.strlen(b"abc"), False, "bytes to a str param")
        eq(KSR.t.strlen(None), False, "None to a str param")
        eq(KSR.t.echo_int(7), 7, "int param")
        eq(KSR.t.echo_int(True), 1, "bool to an int param")
        eq(KSR.t.echo_int(1.5), False, "float to an int param")
        eq(KSR.t.echo_int("3"), False, "str to an int param")
        eq(KSR.t.echo_int(2 ** 40), False, "int out of range")
        eq(KSR.t.echo_long("n", 2 ** 40), 2 ** 40, "long param")
        eq(KSR.t.echo_long("n", 2.0), False, "float to a long param")
        eq(KSR.t.mix("a"), False, "missing argument")
        eq(KSR.t.mix(), False, "no arguments")
        eq(KSR.t.mix("a", 2, "extra", 4), "a/2", "extra arguments are ignored")
        eq(KSR.t.neg(1, "x"), -1, "a 0-param export ignores arguments")
        eq(KSR.t.concat6("a", "b", "c", "d", "e", "f"), "abcdef", "six params")

    def test_modf(self, msg):
        eq(KSR.x.modf("echo_int", "5"), 5, "modf int result")
        eq(KSR.x.modf("is_a"), 1, "modf bool true")
        eq(KSR.x.modf("is_not"), -1, "modf bool false")
        eq(KSR.x.modf("info", "via modf"), 1, "core info wins over t.info")
        eq(KSR.x.modf("nope"), -1, "unknown function")
        eq(KSR.x.modf("echo_int", "x"), -1, "unparsable number")
        eq(KSR.x.modf("echo_int", 5), -1, "modf takes strings only")
        eq(KSR.x.modf("echo_int"), -1, "too few arguments")
        eq(KSR.x.modf(), -1, "no function name")

    def test_msg(self, msg):
        eq(msg.Type, "SIP_REQUEST", "Type")
        eq(msg.Method, "OPTIONS", "Method")
        eq(msg.RURI, "sip:alice@127.0.0.1", "RURI")
        eq(msg.Status, None, "Status of a request")
        eq(msg.getHeader("call-id"), "c1", "getHeader, any case")
        eq(msg.getHeader("i"), "c1", "getHeader, compact form")
        eq(msg.getHeader("X-None"), None, "absent header")
        eq(msg.src_address, ("127.0.0.1", 5060), "src_address")
        KSR.setruri("sip:bob@example.com")
        eq(msg.RURI, "sip:bob@example.com", "RURI in effect after a rewrite")

    def test_sflags(self, msg):
        eq(KSR.issflagset(3), False, "sflags start at 0")
        KSR.setsflag(3)
        eq(KSR.issflagset(3), True, "sflag set")

    def test_exit(self, msg):
        KSR.info("before exit")
        self.deeper()
        KSR.info("not reached")

    def deeper(self):
        sys.exit()

    def test_builtin_exit(self, msg):
        KSR.info("before exit()")
        exit()

    def test_drop(self, msg):
        KSR.set_drop()
        return -255

    def test_raise(self, msg):
        KSR.info("before raise")
        return 1 // 0

    def test_panic(self, msg):
        try:
            KSR.t.boom()
        except RuntimeError as e:
            KSR.info("caught %s" % e)
