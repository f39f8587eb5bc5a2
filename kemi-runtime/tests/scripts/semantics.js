// KSR call semantics as seen from JavaScript (kemi-reference.md §2.2 JS column, §3.2, §4, §5).
// Each test_* callback throws an Error on the first mismatch; the Rust test runs them by name.

function show(v) {
    return String(v) + " (" + typeof v + ")";
}

function eq(got, want, what) {
    if (!Object.is(got, want)) {
        throw new Error(what + ": got " + show(got) + ", want " + show(want));
    }
}

// No message is current while the file loads: every KSR call gives false.
var loaded_call = KSR.t.echo_int(5);
var loaded_none = KSR.info("at load");
var loaded_drop = KSR.x.drop();
var loaded_modf = KSR.x.modf("echo_int", "1");

function ksr_request_route() {
    KSR.info("request");
}

function test_load_time_call() {
    eq(loaded_call, false, "int export at load time");
    eq(loaded_none, false, "none export at load time");
    eq(loaded_drop, false, "drop at load time");
    eq(loaded_modf, false, "modf at load time");
    eq(KSR.t.echo_int(5), 5, "same call in a callback");
}

function test_int_vs_bool() {
    eq(KSR.t.neg(), -1, "int result");
    if (!KSR.t.neg()) {
        throw new Error("-1 must be truthy");
    }
    eq(KSR.t.is_a(), true, "bool true");
    eq(KSR.t.is_not(), false, "bool false");
    eq(KSR.t.neg() < 0, true, "comparing an int result works");
}

function test_none() {
    eq(KSR.set_drop(), false, "NONE on the 0-param path");
    eq(KSR.info("x"), false, "NONE on the 1-param path is false too");
}

function test_xval() {
    eq(KSR.t.xnull(), null, "null");
    eq(KSR.t.xnone(), undefined, "none is undefined");
    eq(KSR.t.xlong(), 5000000000, "long is a number");
    eq(KSR.t.xint(), 7, "xval int");
    eq(KSR.t.xbool(), true, "xval bool");
    eq(KSR.t.xarr(), null, "arrays are unsupported");
    eq(KSR.t.xdict(), null, "dicts are unsupported");
    eq(KSR.t.echo_str("a\0b"), "a\0b", "strings are length-exact");
    eq(KSR.t.echo_str("h\u00e9 \u{1F600}"), "h\u00e9 \u{1F600}", "non-ASCII round trip");
}

function test_args() {
    eq(KSR.t.echo_int(12), 12, "int");
    eq(KSR.t.echo_int("12"), 12, "numeric string to int");
    eq(KSR.t.echo_int(" 0x10 "), 16, "ToNumber of a hex string");
    eq(KSR.t.echo_int("x"), 0, "non-numeric string to int");
    eq(KSR.t.echo_int(2.9), 2, "float truncates");
    eq(KSR.t.echo_int(-2.9), -2, "toward zero");
    eq(KSR.t.echo_int(2 ** 40), 2147483647, "clamped high");
    eq(KSR.t.echo_int(-(2 ** 40)), -2147483648, "clamped low");
    eq(KSR.t.echo_int(Infinity), 2147483647, "Infinity clamped");
    eq(KSR.t.echo_int(NaN), 0, "NaN");
    eq(KSR.t.echo_int(true), 1, "true to int");
    eq(KSR.t.echo_int(false), 0, "false to int");
    eq(KSR.t.echo_int(null), 0, "null to int");
    eq(KSR.t.echo_int(undefined), 0, "undefined to int");
    eq(KSR.t.echo_int({}), 0, "object to int");
    eq(KSR.t.echo_int([7]), 7, "array of one to int");
    eq(KSR.t.echo_int({ valueOf: function () { return 9; } }), 9, "valueOf");
    eq(KSR.t.echo_str(42), "42", "integer to str");
    eq(KSR.t.echo_str(1.5), "1.5", "float to str");
    eq(KSR.t.echo_str(null), "null", "null to str");
    eq(KSR.t.echo_str(undefined), "undefined", "undefined to str");
    eq(KSR.t.echo_str(true), "true", "bool to str");
    eq(KSR.t.echo_str({}), "[object Object]", "object to str");
    eq(KSR.t.echo_str([1, 2]), "1,2", "array to str");
    eq(KSR.t.echo_str({ toString: function () { return "ts"; } }), "ts", "toString");
    eq(KSR.t.strlen("\u00e9"), 2, "UTF-8 length");
    eq(KSR.t.strlen("\ud800"), 9, "a lone surrogate is converted lossily");
    eq(KSR.t.echo_int(), false, "no args to a 1-param export");
    eq(KSR.t.mix("a"), "a/0", "a missing int is undefined coerced");
    eq(KSR.t.concat6("a"), "aundefinedundefinedundefinedundefinedundefined", "missing strs");
    eq(KSR.t.mix("a", 2), "a/2", "str, int");
    eq(KSR.t.mix("a", 2, "extra"), "a/2", "extra args are ignored");
    eq(KSR.t.neg(1), -1, "args to a 0-param export are ignored");
    eq(KSR.t.neg(undefined), -1, "an undefined arg to a 0-param export");
    eq(KSR.t.concat6("a", "b", "c", "d", "e", "f"), "abcdef", "six args");
    eq(KSR.t.concat6("a", "b", "c", "d", "e", "f", "g"), false, "more than six args");
    eq(KSR.t.echo_long("n", 5000000000), 5000000000, "long param");
    eq(KSR.t.echo_long("n", 2.9), 2, "long from a float truncates");
    eq(KSR.t.echo_long("n", "-7"), -7, "long from a string");
    var f = KSR.t.echo_int;
    eq(f(3), 3, "a detached function works");
    eq(KSR.t.echo_int.call(null, 4), 4, "call with another this");
}

function test_throwing_coercion() {
    var threw = false;
    try {
        KSR.t.echo_str(Symbol("s"));
    } catch (e) {
        threw = e instanceof TypeError;
    }
    eq(threw, true, "a Symbol argument throws a TypeError");
    try {
        KSR.t.echo_str({ toString: function () { throw new Error("from toString"); } });
        threw = false;
    } catch (e) {
        threw = e.message;
    }
    eq(threw, "from toString", "a throwing toString propagates");
    eq(KSR.t.echo_int(1), 1, "calls work afterwards");
}

function test_exit_nested() {
    function inner() {
        KSR.info("before exit");
        KSR.x.exit();
        KSR.info("after exit");
    }
    function outer() {
        inner();
        KSR.info("after inner");
    }
    outer();
    KSR.info("after outer");
}

function test_exit_caught() {
    try {
        KSR.x.exit();
    } catch (e) {
        KSR.info("caught " + typeof e + " " + e);
    }
}

function test_exit_thrown_by_hand() {
    throw "~~ksr~exit~~";
}

function test_drop() {
    KSR.x.drop();
    KSR.info("after drop");
}

function test_modf() {
    eq(KSR.x.modf("echo_int", "42"), 42, "int export by name");
    eq(KSR.x.modf("echo_int", 43), 43, "number arg");
    eq(KSR.x.modf("is_a"), 1, "bool true");
    eq(KSR.x.modf("is_not"), -1, "bool false");
    eq(KSR.x.modf("mix", "s", "3"), 1, "xval result");
    eq(KSR.x.modf("info", "via modf"), 1, "core export wins over t.info");
    eq(KSR.x.modf("nope"), -1, "unknown function");
    eq(KSR.x.modf("echo_int", "x"), -1, "unparsable int");
    eq(KSR.x.modf("echo_int"), -1, "missing arg");
    eq(KSR.x.modf(), -1, "no name");
    eq(KSR.x.modf(5), -1, "a name that is not a string");
    eq(KSR.t.info(), -7, "t.info is reachable as such");
    eq(KSR.x.probe, undefined, "no probe in JS");
}

function test_sflags() {
    eq(KSR.issflagset(0), false, "sflags start at 0");
    eq(KSR.setsflag(3), true, "setsflag");
    eq(KSR.issflagset(3), true, "flag set");
}

function test_runtime_error() {
    var t = null;
    KSR.info(t.field);
}

// QuickJS records positions for expression statements, calls, operators and `throw` only: an
// error in a `return` or `var` expression is reported at an earlier recorded position.
function test_runtime_error_in_return() {
    var t = null;
    return t.field;
}

function test_throw_error() {
    throw new RangeError("out of range");
}

function test_throw_value() {
    throw 42;
}

function test_recursion() {
    function down(n) {
        return down(n + 1) + 1;
    }
    return down(0);
}

function test_panic() {
    KSR.t.boom();
}

function test_event(evname) {
    KSR.info("event " + evname);
}

function test_globals(module_state) {
    eq(typeof KSR, "object", "KSR");
    eq(typeof KSR.x, "object", "KSR.x");
    eq(KSR.x, KSR_x, "KSR.x aliases KSR_x");
    eq(typeof KSR.x.exit, "function", "KSR.x.exit");
    eq(typeof KSR.t, "object", "KSR.t");
    eq(KSR.t, KSR_t, "KSR.t aliases KSR_t");
    eq(typeof KSR.info, "function", "core export at KSR top level");
    eq(typeof KSR_info, "undefined", "core exports have no global");
    eq(KSR.t.echo_int.name, "echo_int", "function names");
    if (module_state === "absent") {
        eq(KSR.opt, undefined, "disabled module");
        eq(typeof KSR_opt, "undefined", "disabled module global");
    } else {
        eq(typeof KSR.opt, "object", "enabled module");
        eq(KSR_opt.f(), 1, "enabled module export through its global");
    }
}

// A non-function global with a callback's name.
var not_a_function = 1;
