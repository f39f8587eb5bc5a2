# A registrar proxy in the style of Kamailio's kamailio-basic-kemi-python.py (see route.lua):
# the class style of app_python3, with -255 propagating "exit" as the basic example does.
import KSR as KSR

FLT_NATS = 5
FLB_NATB = 6


def mod_init():
    return kamailio()


class kamailio:
    def __init__(self):
        pass

    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if self.route_reqinit(msg) == -255:
            return 1
        self.route_natdetect(msg)
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                self.route_relay(msg)
            return 1
        if not KSR.is_ACK():
            if KSR.tmx.t_precheck_trans() > 0:
                KSR.tm.t_check_trans()
                return 1
            if KSR.tm.t_check_trans() == 0:
                return 1
        if self.route_withindlg(msg) == -255:
            return 1
        if self.route_auth(msg) == -255:
            return 1
        KSR.hdr.remove("Route")
        if KSR.is_method_in("IS"):
            KSR.rr.record_route()
        if self.route_sipout(msg) == -255:
            return 1
        if self.route_registrar(msg) == -255:
            return 1
        if KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(484, "Address Incomplete")
            return 1
        self.route_location(msg)
        return 1

    def route_relay(self, msg):
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return -255

    def route_reqinit(self, msg):
        KSR.set_reply_no_connect()
        KSR.force_rport()
        if not KSR.is_myself_srcip():
            srcip = KSR.kx.get_srcip()
            if KSR.htable.sht_match_name("ipban", "eq", srcip) > 0:
                return -255
            if KSR.pike.pike_check_req() < 0:
                KSR.err("ALERT: pike blocking " + KSR.kx.get_method() + " from " + srcip + "\n")
                KSR.htable.sht_seti("ipban", srcip, 1)
                return -255
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return -255
        if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(200, "Keepalive")
            return -255
        if KSR.sanity.sanity_check(17895, 7) < 0:
            return -255
        return 1

    def route_withindlg(self, msg):
        if KSR.siputils.has_totag() < 0:
            return 1
        if KSR.rr.loose_route() > 0:
            if not KSR.isdsturiset():
                KSR.nathelper.handle_ruri_alias()
            return self.route_relay(msg)
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                return self.route_relay(msg)
            return -255
        KSR.sl.sl_send_reply(404, "Not here")
        return -255

    def route_registrar(self, msg):
        if not KSR.is_REGISTER():
            return 1
        if KSR.isflagset(FLT_NATS):
            KSR.setbflag(FLB_NATB)
        if KSR.registrar.save("location", 0) < 0:
            KSR.sl.sl_reply_error()
        return -255

    def route_location(self, msg):
        rc = KSR.registrar.lookup("location")
        if rc < 0:
            KSR.tm.t_newtran()
            if rc == -1 or rc == -3:
                KSR.sl.send_reply(404, "Not Found")
                return -255
            elif rc == -2:
                KSR.sl.send_reply(405, "Method Not Allowed")
                return -255
        return self.route_relay(msg)

    def route_auth(self, msg):
        if not hasattr(KSR, "auth"):
            return 1
        if hasattr(KSR, "permissions") and not KSR.is_REGISTER():
            if KSR.permissions.allow_source_address(1) > 0:
                return 1
        if KSR.is_REGISTER() or KSR.is_myself_furi():
            if KSR.auth_db.auth_check(KSR.kx.gete_fhost(), "subscriber", 1) < 0:
                KSR.auth.auth_challenge(KSR.kx.gete_fhost(), 0)
                return -255
            if not KSR.is_method_in("RP"):
                KSR.auth.consume_credentials()
        if (not KSR.is_myself_furi()) and (not KSR.is_myself_ruri()):
            KSR.sl.sl_send_reply(403, "Not relaying")
            return -255
        return 1

    def route_natdetect(self, msg):
        if not hasattr(KSR, "nathelper"):
            return 1
        if KSR.nathelper.nat_uac_test(19) > 0:
            if KSR.is_REGISTER():
                KSR.nathelper.fix_nated_register()
            elif KSR.siputils.is_first_hop() > 0:
                KSR.nathelper.set_contact_alias()
            KSR.setflag(FLT_NATS)
        return 1

    def route_sipout(self, msg):
        if KSR.is_myself_ruri():
            return 1
        KSR.hdr.append("P-Hint: outbound\r\n")
        return self.route_relay(msg)

    def ksr_reply_route(self, msg):
        if KSR.sanity.sanity_check(17604, 6) < 0:
            KSR.x.drop()
            return -255
        return 1
