// @stomp/stompjs as an interop peer for the suite's interop scenarios, over
// STOMP over WebSocket (RabbitMQ's Web-STOMP, the embedded broker's).
//
//   stompjs.cjs send URL QUEUE            sends the messages the suite expects
//                                         (the first two in a transaction)
//   stompjs.cjs receive URL QUEUE COUNT   prints COUNT messages, one per line:
//                                         body as hex, then name=hex(value)
//                                         headers; acks them in a transaction
const { Client } = require('@stomp/stompjs');
const WebSocket = require('ws');

// What `send` sends: [body, extra headers] (in step with the suite).
const MESSAGES = [
  [Buffer.from('plain text from a peer'), {}],
  [Buffer.concat([Buffer.from([...Array(256).keys()]), Buffer.from([0, 0])]),
    { 'content-type': 'application/octet-stream' }],
  [Buffer.from('escaped headers'), { 'x-note': 'a:b\nc\\d' }],
  [Buffer.from('unicode \u00e9\u00e8 \u2603'), { 'content-type': 'text/plain;charset=utf-8' }],
];

const [command, url, queue, count] = process.argv.slice(2);

function fail(why) {
  console.error(why);
  process.exit(1);
}

setTimeout(() => fail('timed out'), 20000).unref();

const client = new Client({
  webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
  connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
  reconnectDelay: 0,
  heartbeatIncoming: 0,
  heartbeatOutgoing: 0,
  onStompError: (frame) => fail(`ERROR: ${frame.headers.message}`),
  onWebSocketError: (event) => fail(`WebSocket error: ${event.message ?? event}`),
});

function receipted(destination, body, headers) {
  const receipt = `r-${Math.random()}`;
  const done = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.publish({ destination, binaryBody: new Uint8Array(body), headers: { ...headers, receipt } });
  return done;
}

client.onConnect = async () => {
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
