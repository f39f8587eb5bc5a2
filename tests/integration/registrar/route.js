// A registrar proxy in the style of Kamailio's kamailio-basic-kemi-jsdt.js (see route.lua).
var FLT_NATS = 5;
var FLB_NATB = 6;

function ksr_request_route() {
    route_reqinit();
    route_natdetect();
    if (KSR.is_CANCEL()) {
        if (KSR.tm.t_check_trans() > 0) {
            route_relay();
        }
        return;
    }
    if (!KSR.is_ACK()) {
        if (KSR.tmx.t_precheck_trans() > 0) {
            KSR.tm.t_check_trans();
            return;
        }
        if (KSR.tm.t_check_trans() == 0) { return; }
    }
    route_withindlg();
    route_auth();
    KSR.hdr.remove("Route");
    if (KSR.is_method_in("IS")) {
        KSR.rr.record_route();
    }
    route_sipout();
    route_registrar();
    if (KSR.corex.has_ruri_user() < 0) {
        KSR.sl.sl_send_reply(484, "Address Incomplete");
        return;
    }
    route_location();
}

function route_relay() {
    if (KSR.tm.t_relay() < 0) {
        KSR.sl.sl_reply_error();
    }
    KSR.x.exit();
}

function route_reqinit() {
    KSR.set_reply_no_connect();
    KSR.force_rport();
    if (!KSR.is_myself_srcip()) {
        var srcip = KSR.kx.get_srcip();
        if (KSR.htable.sht_match_name("ipban", "eq", srcip) > 0) {
            KSR.x.exit();
        }
        if (KSR.pike.pike_check_req() < 0) {
            KSR.err("ALERT: pike blocking " + KSR.kx.get_method() + " from " + srcip + "\n");
            KSR.htable.sht_seti("ipban", srcip, 1);
            KSR.x.exit();
        }
    }
    if (KSR.maxfwd.process_maxfwd(10) < 0) {
        KSR.sl.sl_send_reply(483, "Too Many Hops");
        KSR.x.exit();
    }
    if (KSR.is_OPTIONS() && KSR.is_myself_ruri() && KSR.corex.has_ruri_user() < 0) {
        KSR.sl.sl_send_reply(200, "Keepalive");
        KSR.x.exit();
    }
    if (KSR.sanity.sanity_check(17895, 7) < 0) {
        KSR.x.exit();
    }
}

function route_withindlg() {
    if (KSR.siputils.has_totag() < 0) { return; }
    if (KSR.rr.loose_route() > 0) {
        if (!KSR.isdsturiset()) {
            KSR.nathelper.handle_ruri_alias();
        }
        route_relay();
    }
    if (KSR.is_ACK()) {
        if (KSR.tm.t_check_trans() > 0) {
            route_relay();
        }
        KSR.x.exit();
    }
    KSR.sl.sl_send_reply(404, "Not here");
    KSR.x.exit();
}

function route_registrar() {
    if (!KSR.is_REGISTER()) { return; }
    if (KSR.isflagset(FLT_NATS)) {
        KSR.setbflag(FLB_NATB);
    }
    if (KSR.registrar.save("location", 0) < 0) {
        KSR.sl.sl_reply_error();
    }
    KSR.x.exit();
}

function route_location() {
    var rc = KSR.registrar.lookup("location");
    if (rc < 0) {
        KSR.tm.t_newtran();
        if (rc == -1 || rc == -3) {
            KSR.sl.send_reply(404, "Not Found");
            KSR.x.exit();
        } else if (rc == -2) {
            KSR.sl.send_reply(405, "Method Not Allowed");
            KSR.x.exit();
        }
    }
    route_relay();
}

function route_auth() {
    if (typeof KSR.auth === "undefined") { return; }
    if (typeof KSR.permissions !== "undefined" && !KSR.is_REGISTER()) {
        if (KSR.permissions.allow_source_address(1) > 0) {
            return;
        }
    }
    if (KSR.is_REGISTER() || KSR.is_myself_furi()) {
        if (KSR.auth_db.auth_check(KSR.kx.gete_fhost(), "subscriber", 1) < 0) {
            KSR.auth.auth_challenge(KSR.kx.gete_fhost(), 0);
            KSR.x.exit();
        }
        if (!KSR.is_method_in("RP")) {
            KSR.auth.consume_credentials();
        }
    }
    if (!KSR.is_myself_furi() && !KSR.is_myself_ruri()) {
        KSR.sl.sl_send_reply(403, "Not relaying");
        KSR.x.exit();
    }
}

function route_natdetect() {
    if (typeof KSR.nathelper === "undefined") { return; }
    if (KSR.nathelper.nat_uac_test(19) > 0) {
        if (KSR.is_REGISTER()) {
            KSR.nathelper.fix_nated_register();
        } else if (KSR.siputils.is_first_hop() > 0) {
            KSR.nathelper.set_contact_alias();
        }
        KSR.setflag(FLT_NATS);
    }
}

function route_sipout() {
    if (KSR.is_myself_ruri()) { return; }
    KSR.hdr.append("P-Hint: outbound\r\n");
    route_relay();
}

function ksr_reply_route() {
    if (KSR.sanity.sanity_check(17604, 6) < 0) {
        KSR.x.drop();
    }
}
