"""stomp.py as an e2e benchmark client: the spec (JSON) in argv[1], one JSON
report on stdout. Each producer and consumer has its own Connection12 at
stomp.py's defaults, heart-beats off."""

import json
import resource
import sys
import threading
import time

import stomp

spec = json.loads(sys.argv[1])


def usage():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.received = 0
        self.sent = 0
        self.last_received = 0
        self.last_sent = 0
        self.latencies = []
        self.error = None
        self.start = time.perf_counter_ns()
        self.topic = spec["destination"].startswith("/topic/")
        self.expected = spec["count"] * (spec["consumers"] if self.topic else 1)

    def now(self):
        return time.perf_counter_ns() - self.start

    def delivered(self, body):
        now = self.now()
        with self.lock:
            if spec["rate"] > 0:
                try:
                    self.latencies.append((now - int(body[:20])) // 1000)
                except ValueError:
                    pass
            self.last_received = max(self.last_received, now)
            self.received += 1
            if self.received == self.expected:
                self.done.set()

    def fail(self, why):
        with self.lock:
            if self.error is None:
                self.error = why
        self.done.set()


tally = None


class Consumer(stomp.ConnectionListener):
    def __init__(self, conn):
        self.conn = conn
        self.receipts = {}

    def on_message(self, frame):
        if spec["ack"] != "auto":
            self.conn.ack(frame.headers["ack"])
        if tally is not None:
            tally.delivered(frame.body)

    def on_receipt(self, frame):
        event = self.receipts.get(frame.headers.get("receipt-id"))
        if event is not None:
            event.set()

    def on_error(self, frame):
        if tally is not None:
            tally.fail("ERROR: " + frame.headers.get("message", ""))


def connect():
    conn = stomp.Connection12([(spec["host"], spec["port"])], heartbeats=(0, 0), vhost=spec["vhost"])
    listener = Consumer(conn)
    conn.set_listener("", listener)
    conn.connect(spec["login"], spec["passcode"], wait=True)
    return conn, listener


def pace_wait(i):
    if spec["rate"] == 0:
        return
    due = tally.start + i * spec["producers"] * 1e9 / spec["rate"]
    ahead = (due - time.perf_counter_ns()) / 1e9
    if ahead > 0.0002:
        time.sleep(ahead)


def produce(n, conn, listener):
    p = spec["producers"]
    share = spec["count"] // p + (1 if n < spec["count"] % p else 0)
    every = spec["receipt_every"]
    pad = "x" * max(spec["size"] - 20, 0)
    try:
        for i in range(1, share + 1):
            pace_wait(i - 1)
            body = "%020d" % tally.now() + pad
            if every > 0 and (i % every == 0 or i == share):
                event = threading.Event()
                listener.receipts[str(i)] = event
                conn.send(spec["destination"], body, headers={"receipt": str(i)})
                if not event.wait(spec["timeout_s"]):
                    return tally.fail("no receipt")
                del listener.receipts[str(i)]
            else:
                conn.send(spec["destination"], body)
        with tally.lock:
            tally.sent += share
            tally.last_sent = max(tally.last_sent, tally.now())
    except Exception as e:  # a failed send ends the run
        tally.fail("send: %r" % e)


def main():
    global tally
    cpu_before = usage()[0]
    consumers = []
    for n in range(spec["consumers"]):
        conn, listener = connect()
        event = threading.Event()
        listener.receipts["subscribed"] = event
        conn.subscribe(spec["destination"], id=str(n), ack=spec["ack"], headers={"receipt": "subscribed"})
        if not event.wait(10):
            raise SystemExit("no receipt for SUBSCRIBE")
        consumers.append(conn)
    producers = [connect() for _ in range(spec["producers"])]
    tally = Tally()
    threads = [threading.Thread(target=produce, args=(n, c, l), daemon=True) for n, (c, l) in enumerate(producers)]
    for t in threads:
        t.start()
    if not tally.done.wait(spec["timeout_s"]):
        tally.fail("timed out: %d of %d deliveries came" % (tally.received, tally.expected))
    for t in threads:
        t.join(5)
    for conn, _ in producers:
        conn.disconnect()
    for conn in consumers:
        conn.disconnect()
    cpu, rss = usage()
    lat = sorted(tally.latencies)
    at = lambda q: float(lat[int((len(lat) - 1) * q)]) if lat else 0.0
    print(json.dumps({
        "sent": tally.sent, "received": tally.received,
        "send_s": tally.last_sent / 1e9, "recv_s": tally.last_received / 1e9,
        "cpu_s": cpu - cpu_before, "rss_kb": rss,
        "p50_us": at(0.5), "p99_us": at(0.99), "error": tally.error,
    }))


main()
