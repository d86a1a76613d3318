//! The socket of one connection: TCP opened by the pump, a reader thread
//! and a writer thread that only move raw bytes between the socket and the
//! pump, and the driver's TLS/WebSocket [`Layers`] between the socket and
//! the session. Handshakes run while the transport opens, before the
//! threads start.
//!
//! The pump itself never blocks on the socket: a peer that stops reading
//! until it has written (many brokers serve a connection that way) must
//! not stop us reading, or both sides wait on each other.
//!
//! A `udp://` multicast link has a UDP socket instead: the reader moves
//! one datagram at a time, the writer sends each to the group, and the
//! layers' group member answers the session locally.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use stomp_driver::driver::Input;
use stomp_driver::layers::{Connector, Layers};
use stomp_driver::multicast::Options;
use stomp_driver::queue::Queue;
use stomp_proto::reconnect::Dial;
use stomp_proto::uri::Endpoint;

use crate::gate::Gate;

/// An open transport: the pump writes to it and hands it what the reader
/// thread read; it gives back the STOMP bytes.
pub(crate) struct Link {
    socket: Socket,
    gate: Arc<Gate>,
    layers: Layers,
    /// Raw bytes for the writer thread, a few chunks at most.
    out: Arc<Queue<Vec<u8>>>,
    /// Raw bytes made while `out` was full, in order.
    backlog: VecDeque<Vec<u8>>,
    /// Closed when the writer thread has stopped.
    writer_done: Arc<Queue<()>>,
    /// STOMP bytes that came with the end of the handshakes.
    pub early: Vec<u8>,
}

/// What a link reads and writes.
enum Socket {
    Tcp(TcpStream),
    Udp,
}

/// How often a multicast reader looks whether its link is gone.
const UDP_POLL: Duration = Duration::from_millis(200);

/// Chunks that may wait for the writer thread; past them, bytes wait in
/// the session's outgoing queue, whose limit holds callers back.
const MAX_OUT_CHUNKS: usize = 4;

impl Link {
    /// Connects to what `dial` names, runs the TLS and WebSocket handshakes
    /// (bounded by the dial's timeout), and starts the reader thread, which
    /// tags its input with `generation`.
    pub fn open(
        dial: &Dial,
        connector: &mut Connector,
        write_timeout: Duration,
        generation: u64,
        input: Arc<Queue<Input>>,
    ) -> io::Result<Link> {
        let layers = connector.layers(&dial.endpoint)?;
        if let Some(options) = layers.multicast().cloned() {
            return Link::open_udp(&options, layers, generation, input);
        }
        let stream = connect(&dial.endpoint, dial.timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(write_timeout))?;
        stream.set_read_timeout(Some(dial.timeout))?;
        let mut socket = stream.try_clone()?;
        let mut link = Link::new(Socket::Tcp(stream), layers, &input);
        link.handshake_flush()?;
        let mut buf = vec![0; 16 * 1024];
        while !link.layers.is_ready() {
            let n = socket.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the handshake",
                ));
            }
            let (data, _) = link.layers.receive(&buf[..n])?;
            link.early.extend(data);
            link.handshake_flush()?;
        }
        socket.set_read_timeout(None)?;
        let reader = socket.try_clone()?;
        let writer = socket;
        let gate = link.gate.clone();
        let reader_input = input.clone();
        thread::Builder::new()
            .name("stomp-reader".into())
            .spawn(move || read_loop(reader, &gate, generation, &reader_input))?;
        let out = link.out.clone();
        let done = link.writer_done.clone();
        thread::Builder::new()
            .name("stomp-writer".into())
            .spawn(move || {
                write_loop(writer, &out, generation, &input);
                done.close();
            })?;
        Ok(link)
    }

    fn new(socket: Socket, layers: Layers, input: &Arc<Queue<Input>>) -> Link {
        let room = input.clone();
        Link {
            socket,
            gate: Arc::new(Gate::default()),
            layers,
            out: Arc::new(Queue::bounded(
                MAX_OUT_CHUNKS,
                Some(Box::new(move || {
                    room.push(Input::Wake);
                })),
            )),
            backlog: VecDeque::new(),
            writer_done: Arc::new(Queue::unbounded()),
            early: Vec::new(),
        }
    }

    /// A multicast link: the group's socket, a reader and a writer thread.
    fn open_udp(
        options: &Options,
        layers: Layers,
        generation: u64,
        input: Arc<Queue<Input>>,
    ) -> io::Result<Link> {
        let socket = options.open()?;
        socket.set_read_timeout(Some(UDP_POLL))?;
        let reader = socket.try_clone()?;
        let link = Link::new(Socket::Udp, layers, &input);
        let gate = link.gate.clone();
        let reader_input = input.clone();
        thread::Builder::new()
            .name("stomp-udp-reader".into())
            .spawn(move || udp_read_loop(&reader, &gate, generation, &reader_input))?;
        let out = link.out.clone();
        let done = link.writer_done.clone();
        let group = SocketAddr::V4(options.group);
        thread::Builder::new()
            .name("stomp-udp-writer".into())
            .spawn(move || {
                udp_write_loop(&socket, group, &out, generation, &input);
                done.close();
            })?;
        Ok(link)
    }

    /// Whether it takes more bytes now; when false, a [`Input::Wake`]
    /// follows once the writer thread has made room.
    pub fn can_write(&mut self) -> bool {
        while !self.out.is_full() {
            let Some(chunk) = self.backlog.pop_front() else {
                return true;
            };
            self.out.push(chunk);
        }
        false
    }

    /// Hands STOMP bytes to the writer thread; gives what a multicast
    /// link's group member answered locally, for the session.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<Vec<u8>> {
        self.layers.send(bytes)?;
        self.flush();
        Ok(self.layers.take_local())
    }

    /// Takes raw bytes from the reader thread; gives the STOMP bytes in them
    /// and whether the peer ended the stream cleanly.
    pub fn receive(&mut self, raw: &[u8]) -> io::Result<(Vec<u8>, bool)> {
        let received = self.layers.receive(raw)?;
        // What the layers answer (TLS records, WebSocket pongs) goes out in
        // turn with everything else.
        self.flush();
        Ok(received)
    }

    /// Garbage datagrams a multicast link dropped since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        self.layers.take_dropped()
    }

    /// Waits up to `limit` for the writer thread to write what it was
    /// given, then closes the transport.
    pub fn finish(mut self, limit: Duration) {
        self.backlog.drain(..).for_each(|chunk| {
            self.out.push(chunk);
        });
        self.out.close();
        let _ = self.writer_done.pop(Some(limit));
    }

    fn flush(&mut self) {
        let out = self.layers.take_output();
        if !out.is_empty() {
            self.backlog.push_back(out);
        }
        for datagram in self.layers.take_datagrams() {
            self.backlog.push_back(datagram.to_vec());
        }
        self.can_write();
    }

    /// Writes on the pump's thread: only while the handshakes run.
    fn handshake_flush(&mut self) -> io::Result<()> {
        let out = self.layers.take_output();
        match &mut self.socket {
            Socket::Tcp(stream) if !out.is_empty() => stream.write_all(&out),
            _ => Ok(()),
        }
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

fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in endpoint.authority().to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn read_loop(mut stream: TcpStream, gate: &Gate, generation: u64, input: &Queue<Input>) {
    let mut buf = vec![0; 64 * 1024];
    let mut error = None;
    while gate.wait_ready() {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let bytes = buf[..n].to_vec();
                if !input.push(Input::Bytes { generation, bytes }) {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => gate.consumed(),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    input.push(Input::Eof { generation, error });
}

/// Writes what the pump hands over until the queue closes; a failed write
/// (the write timeout included) ends the transport and tells the pump why.
fn write_loop(mut stream: TcpStream, out: &Queue<Vec<u8>>, generation: u64, input: &Queue<Input>) {
    while let Ok(chunk) = out.pop(None) {
        if let Err(e) = stream.write_all(&chunk) {
            out.close();
            // Told before the shutdown, so the reader's end comes second.
            input.push(Input::Eof {
                generation,
                error: Some(format!("write failed: {e}")),
            });
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Moves each datagram from the group to the pump while the gate lets it;
/// wakes up now and then to see whether the link is gone.
fn udp_read_loop(socket: &UdpSocket, gate: &Gate, generation: u64, input: &Queue<Input>) {
    let mut buf = vec![0; 64 * 1024];
    let mut error = None;
    while gate.wait_ready() {
        match socket.recv_from(&mut buf) {
            Ok((n, _from)) => {
                let bytes = buf[..n].to_vec();
                if !input.push(Input::Bytes { generation, bytes }) {
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
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    input.push(Input::Eof { generation, error });
}

/// Sends each datagram the pump hands over to the group.
fn udp_write_loop(
    socket: &UdpSocket,
    group: SocketAddr,
    out: &Queue<Vec<u8>>,
    generation: u64,
    input: &Queue<Input>,
) {
    while let Ok(datagram) = out.pop(None) {
        if let Err(e) = socket.send_to(&datagram, group) {
            out.close();
            input.push(Input::Eof {
                generation,
                error: Some(format!("multicast send failed: {e}")),
            });
            return;
        }
    }
}
