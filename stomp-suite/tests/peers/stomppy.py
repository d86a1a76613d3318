"""stomp.py as an interop peer for tests/interop.rs.

  stomppy.py send HOST PORT QUEUE    sends the messages the test expects (the
                                     first two in a transaction), then
                                     disconnects with a receipt
  stomppy.py receive HOST PORT QUEUE COUNT
                                     prints COUNT messages, one per line:
                                     body as hex, then name=hex(value) headers;
                                     acknowledges them in a transaction
"""

import sys
import threading

import stomp

# What `send` sends: (body, extra headers).
MESSAGES = [
    (b"plain text from a peer", {}),
    (bytes(range(256)) + b"\x00\x00", {"content-type": "application/octet-stream"}),
    (b"escaped headers", {"x-note": "a:b\nc\\d"}),
    ("unicode \u00e9\u00e8 \u2603".encode(), {"content-type": "text/plain;charset=utf-8"}),
]


def connect(host, port):
    conn = stomp.Connection12([(host, int(port))], vhost="/", auto_decode=False)
    conn.connect("guest", "guest", wait=True)
    return conn


class Collector(stomp.ConnectionListener):
    def __init__(self, count):
        self.count = count
        self.frames = []
        self.done = threading.Event()

    def on_message(self, frame):
        self.frames.append(frame)
        if len(self.frames) >= self.count:
            self.done.set()


def send(host, port, queue):
    conn = connect(host, port)
    tx = conn.begin()
    for n, (body, headers) in enumerate(MESSAGES):
        if n < 2:
            conn.send(queue, body, headers=dict(headers), transaction=tx)
        else:
            if n == 2:
                conn.commit(tx)
            conn.send(queue, body, headers=dict(headers))
    conn.disconnect(receipt="bye")


def receive(host, port, queue, count):
    conn = connect(host, port)
    collector = Collector(int(count))
    conn.set_listener("collector", collector)
    conn.subscribe(queue, id="1", ack="client-individual")
    if not collector.done.wait(20):
        sys.exit("only %d of %s messages came" % (len(collector.frames), count))
    tx = conn.begin()
    for frame in collector.frames:
        conn.ack(frame.headers["ack"], transaction=tx)
        body = frame.body if isinstance(frame.body, bytes) else frame.body.encode()
        fields = [body.hex()]
        for name, value in sorted(frame.headers.items()):
            fields.append("%s=%s" % (name, value.encode().hex()))
        print(" ".join(fields))
    conn.commit(tx)
    conn.disconnect(receipt="bye")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"send": send, "receive": receive}[command](*args)
