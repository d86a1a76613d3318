//! The socket of one link: opened by the pump, then a reader thread and a
//! writer thread that only move raw bytes between the socket and the
//! pump's queue, each report naming the link. TLS, WebSocket and the
//! multicast member run in the driver.
//!
//! The pump itself never blocks on the socket: a peer that stops reading
//! until it has written (many brokers serve a connection that way) must
//! not stop us reading, or both sides wait on each other.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use stomp_driver::driver::{consume_written, io_slices, Input, Target};
use stomp_driver::queue::Queue;
use stomp_proto::client::LinkId;

use crate::gate::Gate;

/// An open transport: the pump hands it chunks to write and paces its
/// reader.
pub(crate) struct Link {
    pub id: LinkId,
    socket: Socket,
    gate: Arc<Gate>,
    /// Chunks for the writer thread (the driver bounds what waits).
    out: Arc<Queue<Bytes>>,
}

enum Socket {
    Tcp(TcpStream),
    Udp,
}

/// How often a multicast reader looks whether its link is gone.
const UDP_POLL: Duration = Duration::from_millis(200);

/// The most one read takes, and the size of a fresh read buffer.
const READ_CHUNK: usize = 64 * 1024;

/// A read buffer with less room left than this is replaced.
const MIN_READ: usize = 4 * 1024;

impl Link {
    /// Opens what `target` names within `timeout`, and starts the reader
    /// and writer threads, which report to `input`.
    pub fn open(
        id: LinkId,
        target: &Target,
        timeout: Duration,
        input: &Arc<Queue<Input>>,
    ) -> io::Result<Link> {
        let gate = Arc::new(Gate::default());
        let out = Arc::new(Queue::unbounded());
        let socket = match target {
            Target::Tcp {
                host,
                port,
                options,
            } => {
                let stream = stomp_driver::tcp::connect_blocking(host, *port, options, timeout)?;
                let reader = stream.try_clone()?;
                let writer = stream.try_clone()?;
                spawn("stomp-reader", {
                    let (gate, input) = (gate.clone(), input.clone());
                    move || read_loop(reader, id, &gate, &input)
                })?;
                spawn("stomp-writer", {
                    let (out, input) = (out.clone(), input.clone());
                    move || write_loop(writer, id, &out, &input)
                })?;
                Socket::Tcp(stream)
            }
            Target::Udp(options) => {
                let socket = options.open()?;
                socket.set_read_timeout(Some(UDP_POLL))?;
                let reader = socket.try_clone()?;
                let group = SocketAddr::V4(options.group);
                spawn("stomp-udp-reader", {
                    let (gate, input) = (gate.clone(), input.clone());
                    move || udp_read_loop(&reader, id, &gate, &input)
                })?;
                spawn("stomp-udp-writer", {
                    let (out, input) = (out.clone(), input.clone());
                    move || udp_write_loop(&socket, group, id, &out, &input)
                })?;
                Socket::Udp
            }
        };
        Ok(Link {
            id,
            socket,
            gate,
            out,
        })
    }

    /// Hands a chunk (a datagram, for multicast) to the writer thread.
    pub fn write(&self, bytes: Bytes) {
        self.out.push(bytes);
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.gate.close();
        self.out.close();
        if let Socket::Tcp(stream) = &self.socket {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new().name(name.into()).spawn(f).map(drop)
}

/// Reads while the gate lets it into a zeroed buffer, handing each read's
/// part over without a copy; a fresh buffer is zeroed once per
/// [`READ_CHUNK`] octets read, not once per read.
fn read_loop(mut stream: TcpStream, link: LinkId, gate: &Gate, input: &Queue<Input>) {
    let mut buf = BytesMut::zeroed(READ_CHUNK);
    let error = loop {
        let Some(allowed) = gate.wait_ready() else {
            return;
        };
        if buf.len() < MIN_READ {
            buf = BytesMut::zeroed(READ_CHUNK);
        }
        let want = allowed.min(buf.len());
        match stream.read(&mut buf[..want]) {
            Ok(0) => break None,
            Ok(n) => {
                gate.read(n);
                let bytes = buf.split_to(n).freeze();
                if !input.push(Input::Read { link, bytes }) {
                    return;
                }
            }
            // Nothing was read: nothing is in flight.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    input.push(Input::Ended { link, error });
}

/// Writes what the pump hands over until the queue closes: everything
/// waiting goes out in vectored writes (one system call for many frames),
/// each batch reported once written; a failed write ends the transport and
/// says why.
fn write_loop(mut stream: TcpStream, link: LinkId, out: &Queue<Bytes>, input: &Queue<Input>) {
    let mut batch = VecDeque::new();
    while let Ok(chunk) = out.pop(None) {
        batch.push_back(chunk);
        out.drain_into(&mut batch);
        let n: usize = batch.iter().map(Bytes::len).sum();
        if let Err(e) = write_all_vectored(&mut stream, &mut batch) {
            out.close();
            // Told before the shutdown, so the reader's end comes second.
            input.push(Input::Ended {
                link,
                error: Some(e),
            });
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        input.push(Input::Written { link, n });
    }
}

/// Writes every chunk of `batch`, in order, emptying it.
fn write_all_vectored(stream: &mut TcpStream, batch: &mut VecDeque<Bytes>) -> io::Result<()> {
    let mut offset = 0;
    while !batch.is_empty() {
        let slices = io_slices(batch, offset);
        let n = match stream.write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        consume_written(batch, &mut offset, n);
    }
    Ok(())
}

/// Moves each datagram from the group to the pump while the gate lets it;
/// wakes up now and then to see whether the link is gone.
fn udp_read_loop(socket: &UdpSocket, link: LinkId, gate: &Gate, input: &Queue<Input>) {
    let mut buf = vec![0; 64 * 1024];
    let error = loop {
        if gate.wait_ready().is_none() {
            return;
        }
        match socket.recv_from(&mut buf) {
            Ok((n, _from)) => {
                gate.read(n);
                let bytes = Bytes::copy_from_slice(&buf[..n]);
                if !input.push(Input::Read { link, bytes }) {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                gate.consumed()
            }
            Err(e) => break Some(e),
        }
    };
    input.push(Input::Ended { link, error });
}

/// Sends each datagram the pump hands over to the group.
fn udp_write_loop(
    socket: &UdpSocket,
    group: SocketAddr,
    link: LinkId,
    out: &Queue<Bytes>,
    input: &Queue<Input>,
) {
    while let Ok(datagram) = out.pop(None) {
        if let Err(e) = socket.send_to(&datagram, group) {
            out.close();
            input.push(Input::Ended {
                link,
                error: Some(e),
            });
            return;
        }
        input.push(Input::Written {
            link,
            n: datagram.len(),
        });
    }
}
