//! A TCP proxy on loopback between a client and a broker, to break the
//! network between them without touching the broker. Bytes pass through
//! untouched (TLS and WebSocket included) unless a fault is set:
//!
//! - [`cut`](Proxy::cut) closes every connection through it (FIN both ways),
//!   and while [`refusing`](Proxy::set_refusing) it closes new ones at once
//!   (the broker unreachable);
//! - [`set_latency`](Proxy::set_latency) delays every chunk by a fixed time
//!   each way, [`set_bandwidth`](Proxy::set_bandwidth) caps each direction
//!   of each connection to so many octets a second;
//! - [`set_stalled`](Proxy::set_stalled) forwards nothing while keeping both
//!   sockets open, and stops reading, so the sender's buffers fill: a
//!   half-open link, as when the far host vanishes;
//! - [`set_dropping`](Proxy::set_dropping) reads one direction and throws
//!   it away (one direction black-holed);
//! - [`reset_after`](Proxy::reset_after) forwards so many more octets in one
//!   direction, then resets the connection (RST to both ends).
//!
//! Faults apply to every connection, open or new, until changed.
//! Each direction of a connection is a reader and a writer thread with a
//! bounded queue between them (at most 64 chunks of at most 64 KiB), so a
//! slow link holds the sender back instead of buffering without bound.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// A direction through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the broker.
    Up,
    /// From the broker to the client.
    Down,
}

/// See the module docs. Dropping it stops it and cuts everything.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    refusing: AtomicBool,
    faults: Mutex<Faults>,
    /// Octets forwarded, per direction, over every connection.
    forwarded: [AtomicU64; 2],
    /// Connections accepted.
    accepted: AtomicU64,
    open: Mutex<Vec<Weak<Conn>>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    latency: Duration,
    /// Octets per second per direction of a connection.
    bandwidth: Option<u64>,
    stalled: bool,
    dropping: [bool; 2],
    /// Octets still to forward in a direction before a reset.
    reset: Option<(Direction, u64)>,
}

/// One connection: both sockets, shared by its four threads, so that the
/// sockets close (with RST after a reset) when the last thread leaves.
#[derive(Debug)]
struct Conn {
    client: TcpStream,
    server: TcpStream,
    dead: AtomicBool,
}

impl Conn {
    fn ends(&self, direction: Direction) -> (&TcpStream, &TcpStream) {
        match direction {
            Direction::Up => (&self.client, &self.server),
            Direction::Down => (&self.server, &self.client),
        }
    }

    /// Closes both ways with FIN.
    fn close(&self) {
        self.dead.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }

    /// Makes the last close send RST, and has every thread leave.
    fn reset(&self) {
        for socket in [&self.client, &self.server] {
            let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
        }
        self.dead.store(true, Ordering::SeqCst);
    }
}

/// How often blocked threads look at the faults again.
const TICK: Duration = Duration::from_millis(10);

impl Proxy {
    /// A proxy on an ephemeral loopback port to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        thread::Builder::new()
            .name("suite-proxy".into())
            .spawn(move || accept_loop(&listener, upstream, &accepting))?;
        Ok(Proxy { addr, shared })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection through it, both ways.
    pub fn cut(&self) {
        for conn in self.connections() {
            conn.close();
        }
    }

    /// While set, a new connection is closed as soon as it is accepted.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Delays everything by `latency` each way (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.faults.lock().unwrap().latency = latency;
    }

    /// Caps each direction of each connection to `octets_per_second`
    /// (`None`: no cap).
    pub fn set_bandwidth(&self, octets_per_second: Option<u64>) {
        self.shared.faults.lock().unwrap().bandwidth = octets_per_second.map(|b| b.max(1));
    }

    /// While set, nothing is read or forwarded either way, and both sockets
    /// stay open.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.faults.lock().unwrap().stalled = stalled;
    }

    /// While set, what comes in `direction` is read and thrown away.
    pub fn set_dropping(&self, direction: Direction, dropping: bool) {
        self.shared.faults.lock().unwrap().dropping[direction as usize] = dropping;
    }

    /// Forwards `octets` more in `direction`, then resets the connection
    /// that carried the last of them (once).
    pub fn reset_after(&self, direction: Direction, octets: u64) {
        self.shared.faults.lock().unwrap().reset = Some((direction, octets));
    }

    /// Clears every fault (latency, bandwidth, stall, dropping, a pending
    /// reset; not refusing).
    pub fn heal(&self) {
        *self.shared.faults.lock().unwrap() = Faults::default();
    }

    /// Octets forwarded in `direction` so far, over every connection.
    pub fn forwarded(&self, direction: Direction) -> u64 {
        self.shared.forwarded[direction as usize].load(Ordering::SeqCst)
    }

    /// Connections accepted so far (refused ones included).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    fn connections(&self) -> Vec<Arc<Conn>> {
        let mut open = self.shared.open.lock().unwrap();
        open.retain(|conn| conn.strong_count() > 0);
        open.iter().filter_map(Weak::upgrade).collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                if shared.refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                if let Err(e) = open(client, upstream, shared) {
                    eprintln!("suite proxy: a connection to {upstream} failed: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn open(client: TcpStream, upstream: SocketAddr, shared: &Arc<Shared>) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    for socket in [&client, &server] {
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(TICK))?;
        socket.set_write_timeout(Some(TICK))?;
    }
    let conn = Arc::new(Conn {
        client,
        server,
        dead: AtomicBool::new(false),
    });
    shared.open.lock().unwrap().push(Arc::downgrade(&conn));
    for direction in [Direction::Up, Direction::Down] {
        let (tx, rx) = sync_channel(64);
        let (reading, writing) = (conn.clone(), conn.clone());
        let (shared_r, shared_w) = (shared.clone(), shared.clone());
        thread::Builder::new()
            .name("suite-proxy-read".into())
            .spawn(move || read_loop(&reading, direction, &shared_r, &tx))?;
        thread::Builder::new()
            .name("suite-proxy-write".into())
            .spawn(move || write_loop(&writing, direction, &shared_w, &rx))?;
    }
    Ok(())
}

/// A chunk on its way: when it was read, its octets, and whether the
/// connection is reset after it.
type Chunk = (Instant, Vec<u8>, bool);

fn read_loop(conn: &Conn, direction: Direction, shared: &Shared, tx: &SyncSender<Chunk>) {
    let (mut from, _) = conn.ends(direction);
    let mut buf = vec![0; 64 * 1024];
    while !conn.dead.load(Ordering::SeqCst) {
        let faults = *shared.faults.lock().unwrap();
        if faults.stalled {
            thread::sleep(TICK);
            continue;
        }
        // Under a cap, small reads, so pacing stays smooth.
        let size = faults
            .bandwidth
            .map_or(buf.len(), |b| (b / 50).clamp(1, buf.len() as u64) as usize);
        let n = match from.read(&mut buf[..size]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        let dropping = shared.faults.lock().unwrap().dropping[direction as usize];
        if dropping {
            continue;
        }
        let (n, reset) = take_reset(shared, direction, n);
        let chunk = (Instant::now(), buf[..n].to_vec(), reset);
        // The writer may be slow (latency, a cap, a stall): wait for room.
        let mut chunk = Some(chunk);
        while let Some(c) = chunk.take() {
            match tx.try_send(c) {
                Ok(()) => {}
                Err(std::sync::mpsc::TrySendError::Full(c)) => {
                    if conn.dead.load(Ordering::SeqCst) {
                        return;
                    }
                    chunk = Some(c);
                    thread::sleep(Duration::from_millis(1));
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return,
            }
        }
        if reset {
            return;
        }
    }
    // The sender closed (or the connection died): pass the end on once the
    // writer has drained what came before.
}

/// How much of `n` octets read in `direction` to forward, and whether a
/// reset follows them.
fn take_reset(shared: &Shared, direction: Direction, n: usize) -> (usize, bool) {
    let mut faults = shared.faults.lock().unwrap();
    match faults.reset {
        Some((d, left)) if d == direction => {
            if (n as u64) < left {
                faults.reset = Some((d, left - n as u64));
                (n, false)
            } else {
                faults.reset = None;
                (left as usize, true)
            }
        }
        _ => (n, false),
    }
}

fn write_loop(conn: &Conn, direction: Direction, shared: &Shared, rx: &Receiver<Chunk>) {
    let (_, mut to) = conn.ends(direction);
    'chunks: loop {
        let (read_at, chunk, reset) = match rx.recv_timeout(TICK) {
            Ok(chunk) => chunk,
            Err(RecvTimeoutError::Timeout) if !conn.dead.load(Ordering::SeqCst) => continue,
            // The reader ended: the sender closed, or the connection died.
            Err(_) => break,
        };
        // Wait out the latency and any stall.
        loop {
            if conn.dead.load(Ordering::SeqCst) {
                break 'chunks;
            }
            let faults = *shared.faults.lock().unwrap();
            let due = read_at + faults.latency;
            let now = Instant::now();
            if !faults.stalled && now >= due {
                break;
            }
            thread::sleep(if faults.stalled {
                TICK
            } else {
                (due - now).min(TICK)
            });
        }
        let bandwidth = shared.faults.lock().unwrap().bandwidth;
        let started = Instant::now();
        let mut written = 0;
        while written < chunk.len() {
            if conn.dead.load(Ordering::SeqCst) {
                break 'chunks;
            }
            match to.write(&chunk[written..]) {
                Ok(0) => break 'chunks,
                Ok(n) => written += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break 'chunks,
            }
        }
        shared.forwarded[direction as usize].fetch_add(chunk.len() as u64, Ordering::SeqCst);
        if reset {
            conn.reset();
            return;
        }
        if let Some(bandwidth) = bandwidth {
            let should_take = Duration::from_secs_f64(chunk.len() as f64 / bandwidth as f64);
            if let Some(left) = should_take.checked_sub(started.elapsed()) {
                thread::sleep(left);
            }
        }
    }
    // Pass the end on: this direction is done, and so, once either ends,
    // is the connection (as the plain proxy always did).
    if !conn.dead.swap(true, Ordering::SeqCst) {
        conn.close();
    }
}
