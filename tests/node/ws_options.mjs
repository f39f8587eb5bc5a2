// N OPTIONS one after the other over one WebSocket connection (the `sip` subprotocol, one
// message per text frame), each answered before the next: the ws/wss client of
// benches/load/tls.sh, the counterpart of tests/tls/sip_tls_client.py's `options` mode.
//
// node ws_options.mjs URL COUNT [TIMEOUT_SECONDS]     (wss: with a private CA: NODE_EXTRA_CA_CERTS)
import WebSocket from "ws";

const [url, countArg, timeoutArg] = process.argv.slice(2);
const count = Number(countArg || 1);
setTimeout(() => {
  console.log("timeout");
  process.exit(1);
}, Number(timeoutArg || 20) * 1000).unref();

const secure = url.startsWith("wss:");
const target = new URL(url).host;
const ws = new WebSocket(url, "sip");
let i = 0;

function send() {
  const wire = [
    `OPTIONS sip:${target} SIP/2.0`,
    `Via: SIP/2.0/${secure ? "WSS" : "WS"} bench${process.pid}.invalid;branch=z9hG4bK-${process.pid}-${i};rport`,
    "Max-Forwards: 70",
    `From: <sip:bench@${target}>;tag=${process.pid}`,
    `To: <sip:${target}>`,
    `Call-ID: ${i}-${process.pid}@bench`,
    "CSeq: 1 OPTIONS",
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
  ws.send(wire);
}

ws.on("open", () => {
  if (ws.protocol !== "sip") {
    console.log(`server chose subprotocol ${JSON.stringify(ws.protocol)}`);
    process.exit(1);
  }
  send();
});
ws.on("message", (data) => {
  const reply = data.toString();
  if (reply.startsWith("SIP/2.0 1")) return;
  if (!reply.startsWith("SIP/2.0 200")) {
    console.log(`request ${i}: ${reply.split("\r\n", 1)[0]}`);
    process.exit(1);
  }
  i += 1;
  if (i < count) {
    send();
  } else {
    console.log(`${count} OPTIONS answered over ${secure ? "WSS" : "WS"}`);
    ws.close();
    process.exit(0);
  }
});
ws.on("error", (e) => {
  console.log(`error: ${e.message}`);
  process.exit(1);
});
