// stompjs as an e2e benchmark client, over TCP (@stomp/tcp-wrapper): the
// spec (JSON) in argv[2], one JSON report on stdout. Each producer and
// consumer has its own Client at stompjs's defaults, heart-beats off.
'use strict';
const { Client } = require('@stomp/stompjs');
const { TCPWrapper } = require('@stomp/tcp-wrapper');

const spec = JSON.parse(process.argv[2]);
const topic = spec.destination.startsWith('/topic/');
const expected = spec.count * (topic ? spec.consumers : 1);
const hr = () => process.hrtime.bigint();
let start = hr();
const now = () => Number(hr() - start);
const tally = { received: 0, sent: 0, lastReceived: 0, lastSent: 0, latencies: [], error: null };
let finish;
const finished = new Promise((resolve) => (finish = resolve));
const fail = (why) => {
  if (tally.error === null) tally.error = why;
  finish();
};

function connect() {
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: () => new TCPWrapper(spec.host, spec.port),
      connectHeaders: { login: spec.login, passcode: spec.passcode, host: spec.vhost },
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      reconnectDelay: 0,
    });
    client.onConnect = () => resolve(client);
    client.onStompError = (frame) => {
      reject(new Error(frame.headers.message));
      fail('ERROR: ' + frame.headers.message);
    };
    client.activate();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const receipt = (client, id) => new Promise((r) => client.watchForReceipt(id, r));

async function produce(n, client) {
  const p = spec.producers;
  const share = Math.floor(spec.count / p) + (n < spec.count % p ? 1 : 0);
  const pad = 'x'.repeat(Math.max(spec.size - 20, 0));
  for (let i = 1; i <= share; i++) {
    if (spec.rate > 0) {
      const due = (i - 1) * p * 1e9 / spec.rate;
      const ahead = (due - now()) / 1e6;
      if (ahead > 1) await sleep(ahead);
    } else if (i % 100 === 0) {
      await new Promise((r) => setImmediate(r));
    }
    const body = String(now()).padStart(20, '0') + pad;
    if (spec.receipt_every > 0 && (i % spec.receipt_every === 0 || i === share)) {
      const confirmed = receipt(client, String(i));
      client.publish({ destination: spec.destination, body, headers: { receipt: String(i) } });
      await confirmed;
    } else {
      client.publish({ destination: spec.destination, body });
    }
  }
  tally.sent += share;
  tally.lastSent = Math.max(tally.lastSent, now());
}

async function main() {
  const before = process.cpuUsage();
  const consumers = [];
  for (let n = 0; n < spec.consumers; n++) {
    const client = await connect();
    const subscribed = receipt(client, 'subscribed');
    client.subscribe(spec.destination, (message) => {
      if (spec.ack !== 'auto') message.ack();
      const t = now();
      if (spec.rate > 0) tally.latencies.push(Math.floor((t - Number(message.body.slice(0, 20))) / 1000));
      tally.lastReceived = Math.max(tally.lastReceived, t);
      if (++tally.received === expected) finish();
    }, { ack: spec.ack, receipt: 'subscribed' });
    await subscribed;
    consumers.push(client);
  }
  const producers = [];
  for (let n = 0; n < spec.producers; n++) producers.push(await connect());
  start = hr();
  const timer = setTimeout(() => fail(`timed out: ${tally.received} of ${expected} deliveries came`), spec.timeout_s * 1000);
  producers.forEach((client, n) => produce(n, client).catch((e) => fail('send: ' + e)));
  await finished;
  clearTimeout(timer);
  for (const client of [...producers, ...consumers]) await client.deactivate();
  const cpu = process.cpuUsage(before);
  const lat = tally.latencies.sort((a, b) => a - b);
  const at = (q) => (lat.length ? lat[Math.floor((lat.length - 1) * q)] : 0);
  console.log(JSON.stringify({
    sent: tally.sent, received: tally.received,
    send_s: tally.lastSent / 1e9, recv_s: tally.lastReceived / 1e9,
    cpu_s: (cpu.user + cpu.system) / 1e6, rss_kb: process.resourceUsage().maxRSS,
    p50_us: at(0.5), p99_us: at(0.99), error: tally.error,
  }));
  process.exit(0);
}

main().catch((e) => {
  console.log(JSON.stringify({ sent: 0, received: 0, send_s: 0, recv_s: 0, cpu_s: 0, rss_kb: 0, p50_us: 0, p99_us: 0, error: String(e) }));
  process.exit(0);
});
