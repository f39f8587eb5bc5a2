// A WebRTC-side SIP user agent for sipd's ws:/wss: tests: SIP.js (the real SIP stack: transport,
// registration with digest auth, INVITE client and server transactions, dialogs) over the `ws`
// package as the global WebSocket. Media is out of scope: the session description handler
// returns a static SDP and accepts any answer.
//
// node webrtc_ua.mjs --server ws://127.0.0.1:PORT --user alice --domain sipd.test --password PW
//                    [--answer N] [--call sip:bob@127.0.0.1:PORT] [--timeout SECONDS]
//
// Registers; prints REGISTERED; answers N incoming calls (each until the caller hangs up:
// INCOMING_TERMINATED); then places the call, if any (OUTGOING_ESTABLISHED, hangs up after
// 300 ms, OUTGOING_TERMINATED); unregisters; prints DONE and exits 0. Any failure or the
// timeout exits 1 with a FAIL line. For wss: with a private CA, run with NODE_EXTRA_CA_CERTS.

import WebSocket from "ws";
import { Inviter, Registerer, RegistererState, SessionState, UserAgent } from "sip.js";

globalThis.WebSocket = WebSocket;

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
}
const answer = Number(args.answer || 0);
const timeout = Number(args.timeout || 30) * 1000;

function say(line) {
  process.stdout.write(line + "\n");
}
function fail(why) {
  say("FAIL " + why);
  process.exit(1);
}
setTimeout(() => fail("timeout"), timeout).unref();

const SDP = [
  "v=0",
  "o=- 1 1 IN IP4 127.0.0.1",
  "s=-",
  "c=IN IP4 127.0.0.1",
  "t=0 0",
  "m=audio 9 UDP/TLS/RTP/SAVPF 0",
  "a=rtpmap:0 PCMU/8000",
  "",
].join("\r\n");

// The media side, static: SIP.js calls it for offers and answers.
class StaticSdh {
  close() {}
  getDescription() {
    return Promise.resolve({ body: SDP, contentType: "application/sdp" });
  }
  hasDescription(contentType) {
    return contentType === "application/sdp";
  }
  setDescription() {
    return Promise.resolve();
  }
  sendDtmf() {
    return false;
  }
  rollbackDescription() {
    return Promise.resolve();
  }
}

let incomingLeft = answer;
let incomingDone;
const allIncoming = new Promise((resolve) => {
  incomingDone = resolve;
  if (answer === 0) resolve();
});

const ua = new UserAgent({
  uri: UserAgent.makeURI(`sip:${args.user}@${args.domain}`),
  authorizationUsername: args.user,
  authorizationPassword: args.password,
  transportOptions: { server: args.server, traceSip: !!process.env.TRACE_SIP },
  sessionDescriptionHandlerFactory: () => new StaticSdh(),
  logLevel: process.env.TRACE_SIP ? "debug" : "error",
  delegate: {
    onInvite(invitation) {
      say("INCOMING " + invitation.request.from.uri.toString());
      invitation.stateChange.addListener((state) => {
        if (state === SessionState.Established) say("INCOMING_ESTABLISHED");
        if (state === SessionState.Terminated) {
          say("INCOMING_TERMINATED");
          incomingLeft -= 1;
          if (incomingLeft <= 0) incomingDone();
        }
      });
      invitation.accept().catch((e) => fail("accept: " + e));
    },
  },
});

async function register(registerer, expires) {
  await new Promise((resolve, reject) => {
    registerer
      .register({
        requestDelegate: {
          onAccept: () => resolve(),
          onReject: (r) => reject(new Error(`REGISTER answered ${r.message.statusCode}`)),
        },
      })
      .catch(reject);
  });
}

async function call(target) {
  const inviter = new Inviter(ua, UserAgent.makeURI(target));
  const ended = new Promise((resolve) => {
    inviter.stateChange.addListener((state) => {
      if (state === SessionState.Established) {
        say("OUTGOING_ESTABLISHED");
        setTimeout(() => inviter.bye().catch((e) => fail("bye: " + e)), 300);
      }
      if (state === SessionState.Terminated) resolve();
    });
  });
  await inviter.invite({
    requestDelegate: {
      onReject: (r) => fail(`INVITE answered ${r.message.statusCode}`),
    },
  });
  await ended;
  say("OUTGOING_TERMINATED");
}

try {
  await ua.start();
  const registerer = new Registerer(ua, { expires: 300 });
  await register(registerer);
  if (registerer.state !== RegistererState.Registered) {
    await new Promise((resolve) =>
      registerer.stateChange.addListener((s) => s === RegistererState.Registered && resolve()),
    );
  }
  say("REGISTERED");
  await allIncoming;
  if (args.call) await call(args.call);
  await registerer.unregister().catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  await ua.stop();
  say("DONE");
  process.exit(0);
} catch (e) {
  fail(String(e && e.stack ? e.stack : e));
}
