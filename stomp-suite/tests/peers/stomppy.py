"""stomp.py as an interop peer for tests/interop.rs.

  stomppy.py send HOST PORT QUEUE    sends the messages the test expects (the
                                     first two in a transaction), then
                                     disconnects with a receipt
  stomppy.py receive HOST PORT QUEUE COUNT
                                     prints COUNT messages, one per line:
                                     body as hex, then name=hex(value) headers;
                                     acknowledges them in a transaction
  stomppy.py acks HOST PORT QUEUE VERSION MODE
                                     with stomp.py's Connection10, 11 or 12
                                     at its defaults: sends a, b, c, d,
                                     subscribes with ack MODE, acknowledges
                                     c (client: with a and b) or a and c
                                     (client-individual; 1.1 and 1.2 NACK b,
                                     in a transaction), disconnects, then
                                     prints what a new connection receives
  stomppy.py mcast-send GROUP PORT DEST
                                     sends the same messages to a multicast
                                     group with stomp.py's MulticastConnection
                                     (the first two in a transaction)
  stomppy.py mcast-receive GROUP PORT DEST COUNT
                                     joins the group, prints "ready", then
                                     prints COUNT messages as `receive` does

The multicast commands stay on loopback: stomp.py joins on any interface and
sends by the default route with TTL 2, so its socket set-up is replaced by one
that joins, sends and loops back on 127.0.0.1 with TTL 0.
"""

import socket
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


def send_messages(conn, destination, messages):
    """Sends `messages`, the first two inside a transaction."""
    tx = conn.begin()
    for n, (body, headers) in enumerate(messages):
        if n < 2:
            conn.send(destination, body, headers=dict(headers), transaction=tx)
        else:
            if n == 2:
                conn.commit(tx)
            conn.send(destination, body, headers=dict(headers))


def send(host, port, queue):
    conn = connect(host, port)
    send_messages(conn, queue, MESSAGES)
    conn.disconnect(receipt="bye")


def printout(frame):
    body = frame.body if isinstance(frame.body, bytes) else frame.body.encode()
    fields = [body.hex()]
    for name, value in sorted(frame.headers.items()):
        fields.append("%s=%s" % (name, value.encode().hex()))
    print(" ".join(fields))


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
        printout(frame)
    conn.commit(tx)
    conn.disconnect(receipt="bye")


def acks(host, port, queue, version, mode):
    classes = {"1.0": stomp.Connection10, "1.1": stomp.Connection11, "1.2": stomp.Connection12}
    cls = classes[version]

    def open_connection():
        if version == "1.0":
            conn = cls([(host, int(port))], auto_decode=False)
        else:
            conn = cls([(host, int(port))], vhost="/", auto_decode=False)
        conn.connect("guest", "guest", wait=True)
        return conn

    def ack(conn, frame, nack=False, transaction=None):
        headers = frame.headers
        call = conn.nack if nack else conn.ack
        if version == "1.0":
            call(headers["message-id"], transaction=transaction)
        elif version == "1.1":
            call(headers["message-id"], headers["subscription"], transaction=transaction)
        else:
            call(headers["ack"], transaction=transaction)

    conn = open_connection()
    for body in ["a", "b", "c", "d"]:
        conn.send(queue, body.encode())
    collector = Collector(4)
    conn.set_listener("collector", collector)
    conn.subscribe(queue, id="1", ack=mode)
    if not collector.done.wait(20):
        sys.exit("only %d of 4 messages came" % len(collector.frames))
    frames = {f.body.decode(): f for f in collector.frames}
    if mode == "client":
        ack(conn, frames["c"])
    else:
        ack(conn, frames["a"])
        if version != "1.0":
            tx = conn.begin()
            ack(conn, frames["b"], nack=True, transaction=tx)
            ack(conn, frames["c"], transaction=tx)
            conn.commit(tx)
        else:
            ack(conn, frames["c"])
    conn.disconnect(receipt="bye")

    again = open_connection()
    left = Collector(1)
    again.set_listener("left", left)
    again.subscribe(queue, id="2", ack="auto")
    left.done.wait(10)
    # Whatever else is there comes soon after the first.
    threading.Event().wait(0.5)
    print(" ".join(sorted(f.body.decode() for f in left.frames)))
    again.disconnect(receipt="bye")


def multicast(group, port):
    """A stomp.py MulticastConnection on GROUP:PORT, kept on loopback."""
    from stomp.adapter import multicast as mc

    mc.MCAST_GRP, mc.MCAST_PORT = group, int(port)
    loopback = socket.inet_aton("127.0.0.1")

    def attempt_connection(transport):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, loopback)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        receiver.bind(("", int(port)))
        membership = socket.inet_aton(group) + loopback
        receiver.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        transport.socket, transport.receiver_socket = sender, receiver

    mc.MulticastTransport.attempt_connection = attempt_connection
    conn = mc.MulticastConnection()
    conn.connect()
    return conn


def mcast_send(group, port, destination):
    conn = multicast(group, port)
    # Its multicast connection writes header values unescaped: a line feed
    # in one would break the frame, so that sample stays out.
    plain = [(body, headers) for body, headers in MESSAGES if "x-note" not in headers]
    send_messages(conn, destination, plain)
    conn.disconnect()


def mcast_receive(group, port, destination, count):
    conn = multicast(group, port)
    collector = Collector(int(count))
    conn.set_listener("collector", collector)
    conn.subscribe(destination, id="1")
    print("ready", flush=True)
    if not collector.done.wait(20):
        sys.exit("only %d of %s messages came" % (len(collector.frames), count))
    for frame in collector.frames:
        printout(frame)
    conn.disconnect()


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "acks":
        acks(*args)
        sys.exit(0)
    commands = {
        "send": send,
        "receive": receive,
        "mcast-send": mcast_send,
        "mcast-receive": mcast_receive,
    }
    commands[command](*args)
