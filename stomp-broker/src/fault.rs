//! The scripted fault peer: a STOMP server on loopback whose connections each
//! play one [`Behaviour`] of a script: serve properly (the embedded broker's
//! [`Engine`], one for all of the peer's connections), or cut the handshake,
//! stall, go deaf, or write half a frame or garbage, on cue. Each connection
//! writes everything it owes before it reads again, as some brokers do.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use stomp_broker::fault::{Behaviour, Cut, FaultPeer};
//!
//! // The first connection is cut as soon as CONNECT arrives; later ones serve.
//! let peer = FaultPeer::start(vec![Behaviour::Cut(Cut::AfterConnect), Behaviour::Serve])?;
//! let connect = b"CONNECT\naccept-version:1.2\nhost:/\n\n\0";
//!
//! let mut first = TcpStream::connect(peer.addr())?;
//! first.write_all(connect)?;
//! let mut reply = Vec::new();
//! first.read_to_end(&mut reply)?;
//! assert!(reply.is_empty());
//!
//! let mut second = TcpStream::connect(peer.addr())?;
//! second.write_all(connect)?;
//! let mut reply = [0; 9];
//! second.read_exact(&mut reply)?;
//! assert_eq!(&reply, b"CONNECTED");
//! assert_eq!(peer.accepted(), 2);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use stomp_proto::server::ServerConfig;

use crate::engine::{ConnectionId, Engine, EngineConfig};

/// How often a connection thread looks at its socket and the stop flag.
const TICK: Duration = Duration::from_millis(5);

/// Where in the handshake a connection is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// As soon as the connection is accepted.
    OnAccept,
    /// Once CONNECT has arrived, without answering.
    AfterConnect,
    /// Halfway through writing CONNECTED.
    MidConnected,
    /// Right after CONNECTED was written.
    AfterConnected,
}

impl Cut {
    /// Every point, in handshake order.
    pub const ALL: [Cut; 4] = [
        Cut::OnAccept,
        Cut::AfterConnect,
        Cut::MidConnected,
        Cut::AfterConnected,
    ];
}

/// What one connection does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// A working broker (the embedded one): accepts any login, queues and
    /// topics, acks, transactions, receipts, heart-beats.
    Serve,
    /// The connection is closed at this point of the handshake.
    Cut(Cut),
    /// Serves, then after this long goes silent: no heart-beats, no frames,
    /// the socket left open and what arrives discarded.
    StallAfter(Duration),
    /// After CONNECTED, neither reads nor writes: the socket stays open and
    /// the client's writes back up until they time out.
    Deaf,
    /// Accepts the connection and reads what comes, CONNECT included, but
    /// never answers: a broker that hangs before CONNECTED.
    Silent,
    /// Answers CONNECT with an ERROR carrying this `message`, then closes
    /// (a node that refuses the login, or is not ready).
    Refuse(String),
    /// After CONNECTED, writes these bytes as they are (garbage, half a
    /// frame); then closes if `close`, or serves on.
    Write {
        /// The bytes.
        bytes: Vec<u8>,
        /// Close once they are written.
        close: bool,
    },
}

/// A scripted STOMP server on an ephemeral loopback port. Connection `n`
/// (from 0) plays `script[n]`, or the script's last entry once it has run
/// out. Dropping it stops the server and every connection.
#[derive(Debug)]
pub struct FaultPeer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<TlsSeen>>>,
    thread: Option<JoinHandle<()>>,
}

/// What a TLS client showed the peer in its handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSeen {
    /// The server name it asked for (SNI), if any.
    pub server_name: Option<String>,
    /// How many certificates it presented (its chain).
    pub client_certificates: usize,
}

impl FaultPeer {
    /// Starts a peer with the default server configuration.
    pub fn start(script: Vec<Behaviour>) -> io::Result<FaultPeer> {
        FaultPeer::start_with(ServerConfig::default(), script)
    }

    /// Starts a peer whose sessions use `config` (heart-beats, versions).
    pub fn start_with(config: ServerConfig, script: Vec<Behaviour>) -> io::Result<FaultPeer> {
        FaultPeer::spawn(config, script, None)
    }

    /// Starts a peer that speaks TLS with `tls` (its certificate, and
    /// whether it asks for client certificates); [`tls_seen`](FaultPeer::tls_seen)
    /// tells what each client showed.
    pub fn start_tls(
        config: ServerConfig,
        script: Vec<Behaviour>,
        tls: Arc<rustls::ServerConfig>,
    ) -> io::Result<FaultPeer> {
        FaultPeer::spawn(config, script, Some(tls))
    }

    /// What each TLS client showed in its handshake, in order.
    pub fn tls_seen(&self) -> Vec<TlsSeen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn spawn(
        config: ServerConfig,
        script: Vec<Behaviour>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<FaultPeer> {
        if script.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the script is empty",
            ));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let engine = EngineConfig {
            server: config,
            ..EngineConfig::default()
        };
        let shared = Shared {
            engine: Mutex::new(Engine::new(engine)),
            script,
            tls,
            stop: stop.clone(),
            accepted: accepted.clone(),
            seen: seen.clone(),
        };
        let thread = thread::Builder::new()
            .name("fault-peer".into())
            .spawn(move || accept_loop(&listener, shared))?;
        Ok(FaultPeer {
            addr,
            stop,
            accepted,
            seen,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `stomp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("stomp://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the accept loop hands each connection.
struct Shared {
    engine: Mutex<Engine>,
    script: Vec<Behaviour>,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<TlsSeen>>>,
}

fn accept_loop(listener: &TcpListener, shared: Shared) {
    let shared = Arc::new(shared);
    let mut connections = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let n = shared.accepted.fetch_add(1, Ordering::SeqCst);
                let behaviour = shared.script[n.min(shared.script.len() - 1)].clone();
                let shared = shared.clone();
                let spawned = thread::Builder::new()
                    .name(format!("fault-peer-{n}"))
                    .spawn(move || {
                        if let Ok(connection) = Connection::new(stream, &shared) {
                            let _ = connection.play(&behaviour, &shared.stop);
                        }
                    });
                if let Ok(handle) = spawned {
                    connections.push(handle);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(TICK),
            Err(_) => thread::sleep(TICK),
        }
    }
    for handle in connections {
        let _ = handle.join();
    }
}

/// The bytes of one connection: plain, or TLS over it.
enum Io {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(stream) => stream.read(buf),
            Io::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Plain(stream) => stream.write(buf),
            Io::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(stream) => stream.flush(),
            Io::Tls(stream) => stream.flush(),
        }
    }
}

/// One accepted connection, served by the shared engine.
struct Connection<'a> {
    socket: TcpStream,
    stream: Io,
    /// Where to note what a TLS client showed, until it has been noted.
    seen: Option<Arc<Mutex<Vec<TlsSeen>>>>,
    engine: &'a Mutex<Engine>,
    id: ConnectionId,
    /// The transport ended (EOF, error, or the session finished).
    ended: bool,
}

impl<'a> Connection<'a> {
    fn new(socket: TcpStream, shared: &'a Shared) -> io::Result<Connection<'a>> {
        socket.set_nonblocking(false)?;
        let stream = match &shared.tls {
            None => Io::Plain(socket.try_clone()?),
            Some(tls) => {
                let server =
                    rustls::ServerConnection::new(tls.clone()).map_err(io::Error::other)?;
                Io::Tls(Box::new(rustls::StreamOwned::new(
                    server,
                    socket.try_clone()?,
                )))
            }
        };
        let seen = shared.tls.as_ref().map(|_| shared.seen.clone());
        let id = lock(&shared.engine).open(Instant::now());
        Ok(Connection {
            socket,
            stream,
            seen,
            engine: &shared.engine,
            id,
            ended: false,
        })
    }

    fn play(mut self, behaviour: &Behaviour, stop: &AtomicBool) -> io::Result<()> {
        self.socket.set_read_timeout(Some(TICK))?;
        self.socket.set_nodelay(true)?;
        let cut = match behaviour {
            Behaviour::Cut(Cut::OnAccept) => return self.close(),
            Behaviour::Cut(cut) => Some(*cut),
            _ => None,
        };
        // The handshake: up to CONNECT (its closing NUL), which the engine
        // answers unless cut there.
        let mut handshake = Vec::new();
        while !handshake.contains(&0) {
            if self.ended || stop.load(Ordering::SeqCst) {
                return self.close();
            }
            handshake.extend(self.read()?);
        }
        if cut == Some(Cut::AfterConnect) {
            return self.close();
        }
        match behaviour {
            Behaviour::Silent => {
                while !self.ended && !stop.load(Ordering::SeqCst) {
                    self.read()?;
                }
                return self.close();
            }
            Behaviour::Refuse(message) => {
                let error = format!("ERROR\nmessage:{message}\ncontent-length:0\n\n\0");
                self.stream.write_all(error.as_bytes())?;
                return self.close();
            }
            _ => {}
        }
        lock(self.engine).input(self.id, Instant::now(), &handshake);
        let connected = lock(self.engine)
            .poll_transmit(self.id, Instant::now())
            .unwrap_or_default();
        match cut {
            Some(Cut::MidConnected) => {
                self.stream.write_all(&connected[..connected.len() / 2])?;
                return self.close();
            }
            Some(_) => {
                self.stream.write_all(&connected)?;
                return self.close();
            }
            None => self.stream.write_all(&connected)?,
        }
        let stall_at = match behaviour {
            Behaviour::StallAfter(after) => Some(Instant::now() + *after),
            Behaviour::Write { bytes, close } => {
                self.stream.write_all(bytes)?;
                if *close {
                    return self.close();
                }
                None
            }
            Behaviour::Deaf => {
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(TICK);
                }
                return self.close();
            }
            _ => None,
        };
        while !self.ended && !stop.load(Ordering::SeqCst) {
            if stall_at.is_some_and(|at| Instant::now() >= at) {
                // Silent: read and drop, so the client's writes never block.
                self.ended |= matches!(self.stream.read(&mut [0; 4096]), Ok(0));
                continue;
            }
            let input = self.read()?;
            self.serve(&input)?;
        }
        self.close()
    }

    /// What arrived within a tick.
    fn read(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = [0; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.ended = true;
                Ok(Vec::new())
            }
            Ok(n) => {
                self.note_tls();
                Ok(buf[..n].to_vec())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Hands the engine `input`, runs its timers, and writes everything it
    /// has for this connection (blocking until written).
    fn serve(&mut self, input: &[u8]) -> io::Result<()> {
        let now = Instant::now();
        let mut out = Vec::new();
        {
            let mut engine = lock(self.engine);
            if !input.is_empty() {
                engine.input(self.id, now, input);
            }
            engine.handle_timeout(now);
            while let Some(bytes) = engine.poll_transmit(self.id, now) {
                out.push(bytes);
            }
            self.ended |= engine.is_finished(self.id);
        }
        for bytes in out {
            self.stream.write_all(&bytes)?;
        }
        Ok(())
    }

    /// Once the TLS handshake is done, notes what the client showed.
    fn note_tls(&mut self) {
        let Io::Tls(stream) = &self.stream else {
            return;
        };
        if let Some(seen) = self.seen.take() {
            let tls = &stream.conn;
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(TlsSeen {
                    server_name: tls.server_name().map(String::from),
                    client_certificates: tls.peer_certificates().map_or(0, <[_]>::len),
                });
        }
    }

    fn close(mut self) -> io::Result<()> {
        lock(self.engine).closed(self.id);
        if let Io::Tls(stream) = &mut self.stream {
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
        let _ = self.socket.shutdown(Shutdown::Both);
        Ok(())
    }
}

fn lock(engine: &Mutex<Engine>) -> std::sync::MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|e| e.into_inner())
}
