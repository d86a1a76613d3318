// @stomp/stompjs as an interop peer for the suite's interop scenarios, over
// STOMP over WebSocket (RabbitMQ's Web-STOMP, the embedded broker's).
//
//   stompjs.cjs send URL QUEUE            sends the messages the suite expects
//                                         (the first two in a transaction)
//   stompjs.cjs receive URL QUEUE COUNT   prints COUNT messages, one per line:
//                                         body as hex, then name=hex(value)
//                                         headers; acks them in a transaction
//   stompjs.cjs acks URL QUEUE VERSION MODE
//                                         speaks only VERSION (1.0, 1.1, 1.2):
//                                         sends a, b, c, d, subscribes with ack
//                                         MODE, acknowledges c (client: with a
//                                         and b) or a and c (client-individual;
//                                         1.1 and 1.2 NACK b, in a transaction),
//                                         disconnects, then prints what a new
//                                         connection receives
const { Client, Versions } = require('@stomp/stompjs');
const WebSocket = require('ws');

// What `send` sends: [body, extra headers] (in step with the suite).
const MESSAGES = [
  [Buffer.from('plain text from a peer'), {}],
  [Buffer.concat([Buffer.from([...Array(256).keys()]), Buffer.from([0, 0])]),
    { 'content-type': 'application/octet-stream' }],
  [Buffer.from('escaped headers'), { 'x-note': 'a:b\nc\\d' }],
  [Buffer.from('unicode \u00e9\u00e8 \u2603'), { 'content-type': 'text/plain;charset=utf-8' }],
];

const [command, url, queue, count, mode] = process.argv.slice(2);

function fail(why) {
  console.error(why);
  process.exit(1);
}

setTimeout(() => fail('timed out'), 20000).unref();

// For `acks`, the fourth argument is the one version spoken.
const versions = command === 'acks' ? [count] : ['1.2', '1.1', '1.0'];

function newClient() {
  return new Client({
    webSocketFactory: () => new WebSocket(url, versions.map((v) => `v${v.replace('.', '')}.stomp`)),
    stompVersions: new Versions(versions),
    connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    onStompError: (frame) => fail(`ERROR: ${frame.headers.message}`),
    onWebSocketError: (event) => fail(`WebSocket error: ${event.message ?? event}`),
  });
}

const client = newClient();

function receipted(destination, body, headers) {
  const receipt = `r-${Math.random()}`;
  const done = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.publish({ destination, binaryBody: new Uint8Array(body), headers: { ...headers, receipt } });
  return done;
}

// Resolves with the client once it is connected.
function connected(c) {
  return new Promise((resolve) => {
    c.onConnect = () => resolve(c);
    c.activate();
  });
}

async function acks(negotiated) {
  const version = count;
  if (negotiated !== version) fail(`asked for ${version}, the broker chose ${negotiated}`);
  const received = new Map();
  let all;
  const four = new Promise((resolve) => { all = resolve; });
  for (const body of ['a', 'b', 'c', 'd']) await receipted(queue, Buffer.from(body), {});
  client.subscribe(queue, (message) => {
    received.set(Buffer.from(message.binaryBody).toString(), message);
    if (received.size === 4) all();
  }, { id: '1', ack: mode });
  await four;
  if (mode === 'client') {
    received.get('c').ack();
  } else {
    received.get('a').ack();
    if (version !== '1.0') {
      const tx = client.begin();
      received.get('b').nack({ transaction: tx.id });
      received.get('c').ack({ transaction: tx.id });
      tx.commit();
    } else {
      received.get('c').ack();
    }
  }
  // Our frames are all out before the DISCONNECT's receipt comes back.
  await client.deactivate();
  const again = await connected(newClient());
  const left = [];
  again.subscribe(queue, (message) => left.push(Buffer.from(message.binaryBody).toString()),
    { id: '2', ack: 'auto' });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  console.log(left.sort().join(' '));
  await again.deactivate();
  process.exit(0);
}

client.onConnect = async (frame) => {
  if (command === 'acks') {
    await acks(frame.headers.version);
    return;
  }
  if (command === 'send') {
    const tx = client.begin();
    for (const [n, [body, headers]] of MESSAGES.entries()) {
      if (n < 2) {
        client.publish({ destination: queue, binaryBody: new Uint8Array(body),
          headers: { ...headers, transaction: tx.id } });
        continue;
      }
      if (n === 2) tx.commit();
      await receipted(queue, body, headers);
    }
    await client.deactivate();
    process.exit(0);
  }
  const received = [];
  client.subscribe(queue, async (message) => {
    received.push(message);
    if (received.length < Number(count)) return;
    const tx = client.begin();
    for (const m of received) m.ack({ transaction: tx.id });
    tx.commit();
    for (const m of received) {
      const fields = [Buffer.from(m.binaryBody).toString('hex')];
      for (const name of Object.keys(m.headers).sort()) {
        fields.push(`${name}=${Buffer.from(m.headers[name]).toString('hex')}`);
      }
      console.log(fields.join(' '));
    }
    await client.deactivate();
    process.exit(0);
  }, { ack: 'client-individual' });
};

client.activate();
