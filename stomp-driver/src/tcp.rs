//! The TCP socket every adapter opens, made the same way for all of them:
//! TCP keepalive (stomp.py's `keepalive`), a local address to bind to
//! (stomp.py's `bind_host_port`), `TCP_NODELAY`. The blocking adapter
//! connects with [`connect_blocking`]; an async one resolves the host,
//! then for each address starts the connect with [`start_connect`], waits
//! until its runtime finds the socket writable, and calls
//! [`finish_connect`] ([`connect_each`] runs that loop).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

/// How the client's TCP sockets are set up.
///
/// ```
/// use std::time::Duration;
/// use stomp_driver::{Config, Keepalive};
///
/// let mut config = Config::from_url("stomp://127.0.0.1:61613")?;
/// // Find a dead peer within about a minute, even with heart-beats off.
/// config.tcp.keepalive = Some(Keepalive {
///     idle: Duration::from_secs(30),
///     interval: Some(Duration::from_secs(10)),
///     retries: Some(3),
/// });
/// // Leave through this address (port 0: any).
/// config.tcp.bind = Some("127.0.0.1:0".parse().unwrap());
/// # Ok::<(), stomp_driver::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    /// `TCP_NODELAY`: frames go out at once instead of waiting to fill a
    /// segment (on by default; the driver writes whole batches anyway).
    pub nodelay: bool,
    /// TCP keepalive probes, off by default.
    pub keepalive: Option<Keepalive>,
    /// The local address (and port, 0 for any) to connect from. Hosts of
    /// the other address family are not reachable from it: their dials
    /// fail.
    pub bind: Option<SocketAddr>,
}

impl Default for TcpOptions {
    fn default() -> TcpOptions {
        TcpOptions {
            nodelay: true,
            keepalive: None,
            bind: None,
        }
    }
}

/// TCP keepalive: after `idle` without traffic the kernel probes the peer
/// every `interval`, and gives the connection up after `retries` probes
/// without an answer (the system's defaults where `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Quiet time before the first probe.
    pub idle: Duration,
    /// Time between probes.
    pub interval: Option<Duration>,
    /// Probes without an answer before the connection fails.
    pub retries: Option<u32>,
}

/// A socket for `addr` with `options` set, bound if asked.
fn socket(addr: SocketAddr, options: &TcpOptions) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(options.nodelay)?;
    if let Some(keepalive) = &options.keepalive {
        let mut params = TcpKeepalive::new().with_time(keepalive.idle);
        if let Some(interval) = keepalive.interval {
            params = params.with_interval(interval);
        }
        if let Some(retries) = keepalive.retries {
            params = params.with_retries(retries);
        }
        socket.set_tcp_keepalive(&params)?;
    }
    if let Some(bind) = options.bind {
        if bind.is_ipv4() != addr.is_ipv4() {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("the local address {bind} cannot reach {addr}"),
            ));
        }
        socket.bind(&SockAddr::from(bind))?;
    }
    Ok(socket)
}

/// A non-blocking socket for `addr`, set up as `options` say, whose
/// connect has started: register it with the runtime, wait until it is
/// writable, then call [`finish_connect`].
pub fn start_connect(addr: SocketAddr, options: &TcpOptions) -> io::Result<TcpStream> {
    let socket = socket(addr, options)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// Whether a non-blocking connect's error says it is under way.
fn in_progress(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    e.kind() == io::ErrorKind::WouldBlock
}

/// After the socket of [`start_connect`] became writable (in whatever
/// wrapper the runtime registered it): whether the connect succeeded.
#[cfg(unix)]
pub fn finish_connect(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    connected(socket2::SockRef::from(socket))
}

/// After the socket of [`start_connect`] became writable (in whatever
/// wrapper the runtime registered it): whether the connect succeeded.
#[cfg(windows)]
pub fn finish_connect(socket: &impl std::os::windows::io::AsSocket) -> io::Result<()> {
    connected(socket2::SockRef::from(socket))
}

fn connected(socket: socket2::SockRef<'_>) -> io::Result<()> {
    if let Some(error) = socket.take_error()? {
        return Err(error);
    }
    // Writable without an error, yet not connected: it was refused.
    socket.peer_addr().map(drop)
}

/// Connects to `host:port` (each of its addresses in turn, each within
/// `timeout`), blocking, set up as `options` say.
pub fn connect_blocking(
    host: &str,
    port: u16,
    options: &TcpOptions,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in (host, port).to_socket_addrs()? {
        let attempt = socket(addr, options).and_then(|socket| {
            socket
                .connect_timeout(&SockAddr::from(addr), timeout)
                .map(|()| socket)
        });
        match attempt {
            Ok(socket) => return Ok(socket.into()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Connects to each of `addrs` in turn until one answers: the socket of
/// [`start_connect`] goes to `wait`, which registers it with the runtime,
/// waits until it is writable and calls [`finish_connect`].
pub async fn connect_each<S, F, Fut>(
    addrs: impl IntoIterator<Item = SocketAddr>,
    options: &TcpOptions,
    wait: F,
) -> io::Result<S>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = io::Result<S>>,
{
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        let attempt = match start_connect(addr, options) {
            Ok(stream) => wait(stream).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}
