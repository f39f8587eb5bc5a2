-- KSR call semantics as seen from Lua (kemi-reference.md §2.2, §3.1, §5).
-- Each test_* callback raises an error on the first mismatch; the Rust test runs them by name.

local function show(v)
    return string.format("%s (%s)", tostring(v), type(v))
end

local function eq(got, want, what)
    if got ~= want or type(got) ~= type(want) then
        error(string.format("%s: got %s, want %s", what, show(got), show(want)), 2)
    end
end

-- No message is current while the file loads: every KSR call gives false.
loaded_call = KSR.t.echo_int(5)
loaded_none = KSR.info("at load")

function ksr_request_route()
    KSR.info("request")
end

function test_load_time_call()
    eq(loaded_call, false, "int export at load time")
    eq(loaded_none, false, "none export at load time")
    eq(KSR.t.echo_int(5), 5, "same call in a callback")
end

function test_int_vs_bool()
    eq(KSR.t.neg(), -1, "int result")
    if not KSR.t.neg() then
        error("-1 must be truthy")
    end
    eq(KSR.t.is_a(), true, "bool true")
    eq(KSR.t.is_not(), false, "bool false")
    local ok = pcall(function() return KSR.t.is_a() > 0 end)
    eq(ok, false, "comparing a bool result with a number raises")
    eq(KSR.t.neg() < 0, true, "comparing an int result works")
end

function test_none_quirk()
    eq(KSR.set_drop(), false, "NONE on the 0-param path")
    eq(KSR.info("x"), 0, "NONE on the 1-param path")
end

function test_xval()
    eq(KSR.t.xnull(), nil, "null")
    eq(select("#", KSR.t.xnull()), 1, "null is one value")
    eq(select("#", KSR.t.xnone()), 0, "none is no value")
    eq(KSR.t.xlong(), 5000000000, "long becomes a number")
    eq("n=" .. KSR.t.xint(), "n=7", "an int concatenates without a fraction")
    eq("n=" .. KSR.t.xlong(), "n=5000000000", "a long concatenates without a fraction")
    eq(tostring(KSR.t.echo_int(12)), "12", "an int result formats as 5.1 numbers do")
    eq(KSR.t.xint(), 7, "xval int")
    eq(KSR.t.xbool(), true, "xval bool")
    local a = KSR.t.xarr()
    eq(#a, 4, "array length")
    eq(a[1], 1, "array[1]")
    eq(a[2], "two", "array[2]")
    eq(a[3].k, "v", "array[3] is a dict")
    eq(a[4][2], 20, "nested array")
    local d = KSR.t.xdict()
    eq(d.a, 1, "dict.a")
    eq(d.b, "x", "dict.b")
    eq(d.c.d, true, "nested dict")
    eq(d.n, nil, "null item")
    eq(KSR.t.echo_str("a\0b"), "a\0b", "strings are length-exact")
end

function test_args()
    eq(KSR.t.echo_int(12), 12, "int")
    eq(KSR.t.echo_int("12"), 12, "numeric string to int")
    eq(KSR.t.echo_int("x"), 0, "non-numeric string to int")
    eq(KSR.t.echo_int(2.5), 2, "float with a fraction to int truncates (lua_tointeger on 5.1)")
    eq(KSR.t.echo_int(-2.5), -2, "toward zero")
    eq(KSR.t.echo_int(3.0), 3, "integral float to int")
    eq(KSR.t.echo_int(nil), 0, "nil to int")
    eq(KSR.t.echo_int({}), 0, "table to int")
    eq(KSR.t.echo_int(true), 0, "bool to int")
    eq(KSR.t.echo_str(42), "42", "integer to str")
    eq(KSR.t.echo_str(1.5), "1.5", "float to str")
    eq(KSR.t.echo_str(nil), "", "nil to str")
    eq(KSR.t.echo_str(true), "", "bool to str")
    eq(KSR.t.echo_str({}), "", "table to str")
    eq(KSR.t.strlen("\xff\xfe"), 6, "non-UTF-8 converted lossily")
    eq(KSR.t.echo_int(), false, "no args to a 1-param export")
    eq(KSR.t.mix("a"), false, "fewer args than declared")
    eq(KSR.t.mix("a", 2), "a/2", "str, int")
    eq(KSR.t.mix("a", 2, "extra"), "a/2", "extra args are ignored")
    eq(KSR.t.neg(1), false, "args to a 0-param export")
    eq(KSR.t.neg(nil), false, "a nil arg to a 0-param export")
    eq(KSR.t.concat6("a", "b", "c", "d", "e", "f"), "abcdef", "six args")
    eq(KSR.t.concat6("a", "b", "c", "d", "e", "f", "g"), false, "more than six args")
    eq(KSR.t.echo_long("n", 5000000000), 5000000000, "long param")
    eq(KSR.t.echo_long("n", 2.9), 2, "long from a float truncates")
end

function test_exit_nested()
    local function inner()
        KSR.info("before exit")
        KSR.x.exit()
        KSR.info("after exit")
    end
    local function outer()
        inner()
        KSR.info("after inner")
    end
    outer()
    KSR.info("after outer")
end

function test_exit_pcall()
    local ok, err = pcall(KSR.x.exit)
    KSR.info("caught " .. tostring(ok) .. " " .. err)
end

function test_drop()
    KSR.x.drop()
    KSR.info("after drop")
end

function test_modf()
    eq(KSR.x.modf("echo_int", "42"), 42, "int export by name")
    eq(KSR.x.modf("echo_int", 43), 43, "number arg")
    eq(KSR.x.modf("is_a"), 1, "bool true")
    eq(KSR.x.modf("is_not"), -1, "bool false")
    eq(KSR.x.modf("mix", "s", "3"), 1, "xval result")
    eq(KSR.x.modf("info", "via modf"), 1, "core export wins over t.info")
    eq(KSR.x.modf("nope"), -1, "unknown function")
    eq(KSR.x.modf("echo_int", "x"), -1, "unparsable int")
    eq(KSR.x.modf("echo_int"), -1, "missing arg")
    eq(KSR.x.modf(), -1, "no name")
    eq(KSR.t.info(), -7, "t.info is reachable as such")
    eq(KSR.x.probe(), nil, "probe")
end

function test_sflags()
    eq(KSR.issflagset(0), false, "sflags start at 0")
    eq(KSR.setsflag(3), true, "setsflag")
    eq(KSR.issflagset(3), true, "flag set")
end

function test_runtime_error()
    local t = nil
    return t.field
end

function test_panic()
    KSR.t.boom()
end

function test_event(evname)
    KSR.info("event " .. evname)
end

function test_os_exit()
    os.exit(1)
end

function test_globals(module_state)
    eq(KSRVERSION, "2.0", "KSRVERSION")
    eq(type(KSR.x), "table", "KSR.x")
    eq(type(KSR.t), "table", "KSR.t")
    eq(type(KSR.info), "function", "core export at KSR top level")
    if module_state == "absent" then
        eq(KSR.opt, nil, "disabled module")
    else
        eq(type(KSR.opt), "table", "enabled module")
        eq(KSR.opt.f(), 1, "enabled module export")
    end
end
