//! A TCP proxy on loopback between a client and a broker, to drop the
//! client's connection without touching the broker: [`cut`](Proxy::cut)
//! closes every connection through it, and while
//! [`refusing`](Proxy::set_refusing) it closes new ones at once (the
//! broker unreachable). Bytes pass through untouched, TLS and WebSocket
//! included.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

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
    /// Both sockets of every connection through it.
    open: Mutex<Vec<TcpStream>>,
}

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
        let open = std::mem::take(&mut *self.shared.open.lock().unwrap());
        for socket in open {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// While set, a new connection is closed as soon as it is accepted.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
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
                if shared.refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))
                else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let clones = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                );
                let (Ok(client_copy), Ok(server_copy), Ok(client2), Ok(server2)) = clones else {
                    continue;
                };
                shared
                    .open
                    .lock()
                    .unwrap()
                    .extend([client_copy, server_copy]);
                thread::spawn(move || pipe(client, server));
                thread::spawn(move || pipe(server2, client2));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Copies `from` to `to` until either ends, then closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
