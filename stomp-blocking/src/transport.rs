//! The socket of one connection: TCP opened by the pump, a reader thread
//! that only moves raw bytes to the pump, and the driver's TLS/WebSocket
//! [`Layers`] between the socket and the session. Handshakes run while the
//! transport opens, before the reader starts.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use stomp_driver::driver::Input;
use stomp_driver::layers::{Connector, Layers};
use stomp_driver::queue::Queue;
use stomp_proto::reconnect::Dial;
use stomp_proto::uri::Endpoint;

use crate::gate::Gate;

/// An open transport: the pump writes to it and hands it what the reader
/// thread read; it gives back the STOMP bytes.
pub(crate) struct Link {
    stream: TcpStream,
    gate: Arc<Gate>,
    layers: Layers,
    /// STOMP bytes that came with the end of the handshakes.
    pub early: Vec<u8>,
}

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
        let stream = connect(&dial.endpoint, dial.timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(write_timeout))?;
        stream.set_read_timeout(Some(dial.timeout))?;
        let mut link = Link {
            stream,
            gate: Arc::new(Gate::default()),
            layers,
            early: Vec::new(),
        };
        link.flush()?;
        let mut buf = vec![0; 16 * 1024];
        while !link.layers.is_ready() {
            let n = link.stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the handshake",
                ));
            }
            let (data, _) = link.layers.receive(&buf[..n])?;
            link.early.extend(data);
            link.flush()?;
        }
        link.stream.set_read_timeout(None)?;
        let reader = link.stream.try_clone()?;
        let gate = link.gate.clone();
        thread::Builder::new()
            .name("stomp-reader".into())
            .spawn(move || read_loop(reader, &gate, generation, &input))?;
        Ok(link)
    }

    /// Writes STOMP bytes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.layers.send(bytes)?;
        self.flush()
    }

    /// Takes raw bytes from the reader thread; gives the STOMP bytes in them
    /// and whether the peer ended the stream cleanly.
    pub fn receive(&mut self, raw: &[u8]) -> io::Result<(Vec<u8>, bool)> {
        let received = self.layers.receive(raw)?;
        self.flush()?;
        Ok(received)
    }

    fn flush(&mut self) -> io::Result<()> {
        let out = self.layers.take_output();
        if out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&out)
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.gate.close();
        let _ = self.stream.shutdown(Shutdown::Both);
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
    while gate.wait_ready() {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {
                let bytes = buf[..n].to_vec();
                if !input.push(Input::Bytes { generation, bytes }) {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => gate.consumed(),
            _ => break,
        }
    }
    input.push(Input::Eof { generation });
}
