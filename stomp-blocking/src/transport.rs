//! Opening the transport a `Dial` names, and the raw byte reader thread.
//!
//! The reader thread only moves raw bytes off the socket; TLS (rustls) and
//! WebSocket framing (tungstenite) run on the pump's thread, in [`Link`],
//! over in-memory buffers. Their handshakes run while the transport opens,
//! before the reader starts.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::pki_types::ServerName;
use stomp_proto::reconnect::Dial;
use stomp_proto::uri::{Endpoint, Scheme};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocket;
use tungstenite::Message;

use crate::mailbox::Gate;
use crate::pump::Input;
use crate::tls::Tls;

/// The WebSocket subprotocols offered, best first.
const SUBPROTOCOLS: &str = "v12.stomp, v11.stomp, v10.stomp";

/// What the pump needs to open transports.
pub(crate) struct Opener {
    pub write_timeout: Duration,
    pub tls: Tls,
    /// Built on the first TLS dial.
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
}

/// An open transport: the pump writes to it and hands it what the reader
/// thread read; it gives back the STOMP bytes.
pub(crate) struct Link {
    stream: TcpStream,
    gate: Arc<Gate>,
    tls: Option<rustls::ClientConnection>,
    ws: Option<WebSocket<Pipe>>,
}

impl Opener {
    /// Connects to what `dial` names, runs the TLS and WebSocket handshakes,
    /// and starts the reader thread, which tags its input with `generation`.
    pub fn open(&mut self, dial: &Dial, generation: u64, input: Sender<Input>) -> io::Result<Link> {
        let endpoint = &dial.endpoint;
        let (tls, ws) = match endpoint.scheme {
            Scheme::Stomp => (false, false),
            Scheme::StompSsl => (true, false),
            Scheme::Ws => (false, true),
            Scheme::Wss => (true, true),
            Scheme::Udp => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "udp multicast is not supported yet",
                ))
            }
        };
        let tls = if tls {
            Some(self.tls_session(endpoint)?)
        } else {
            None
        };
        let stream = connect(endpoint, dial.timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(self.write_timeout))?;
        stream.set_read_timeout(Some(dial.timeout))?;
        let gate = Arc::new(Gate::default());
        let mut link = Link {
            stream,
            gate,
            tls,
            ws: None,
        };
        link.handshake(endpoint, ws)?;
        link.stream.set_read_timeout(None)?;
        let reader = link.stream.try_clone()?;
        let reader_gate = link.gate.clone();
        thread::Builder::new()
            .name("stomp-reader".into())
            .spawn(move || read_loop(reader, &reader_gate, generation, &input))?;
        Ok(link)
    }

    fn tls_session(&mut self, endpoint: &Endpoint) -> io::Result<rustls::ClientConnection> {
        let config = match &self.tls_config {
            Some(config) => config.clone(),
            None => {
                let config = self.tls.build().map_err(io::Error::other)?;
                self.tls_config = Some(config.clone());
                config
            }
        };
        let name = self.tls.server_name().unwrap_or(&endpoint.host);
        let name = ServerName::try_from(name.to_owned()).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("TLS server name: {e}"))
        })?;
        rustls::ClientConnection::new(config, name).map_err(io::Error::other)
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

impl Link {
    /// The TLS handshake, then the WebSocket upgrade, on the still blocking
    /// socket (bounded by its read timeout).
    fn handshake(&mut self, endpoint: &Endpoint, ws: bool) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.is_handshaking() {
                tls.complete_io(&mut self.stream)
                    .map_err(|e| context("TLS handshake", e))?;
            }
        }
        if ws {
            self.upgrade(endpoint)
                .map_err(|e| context("WebSocket upgrade", e))?;
        }
        Ok(())
    }

    fn upgrade(&mut self, endpoint: &Endpoint) -> io::Result<()> {
        let scheme = if endpoint.scheme == Scheme::Wss {
            "wss"
        } else {
            "ws"
        };
        let host = if endpoint.host.contains(':') {
            format!("[{}]", endpoint.host)
        } else {
            endpoint.host.clone()
        };
        let path = if endpoint.path.is_empty() {
            "/"
        } else {
            &endpoint.path
        };
        let url = format!("{scheme}://{host}:{}{path}", endpoint.port);
        let mut request = url.into_client_request().map_err(ws_error)?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static(SUBPROTOCOLS),
        );
        let mut handshake =
            ClientHandshake::start(Pipe::default(), request, None).map_err(ws_error)?;
        let mut buf = vec![0; 16 * 1024];
        loop {
            match handshake.handshake() {
                Ok((ws, _response)) => {
                    self.ws = Some(ws);
                    return Ok(());
                }
                Err(HandshakeError::Interrupted(mid)) => {
                    handshake = mid;
                    let pipe = handshake.get_mut().get_mut();
                    let out = std::mem::take(&mut pipe.outbound);
                    self.write_raw(&out)?;
                    let n = self.stream.read(&mut buf)?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let (plain, _) = self.tls_in(&buf[..n])?;
                    handshake.get_mut().get_mut().inbound.extend(plain);
                }
                Err(HandshakeError::Failure(e)) => return Err(ws_error(e)),
            }
        }
    }

    /// Writes STOMP bytes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.ws {
            Some(ws) => {
                ws.send(Message::Binary(bytes::Bytes::copy_from_slice(bytes)))
                    .map_err(ws_error)?;
                let out = std::mem::take(&mut ws.get_mut().outbound);
                self.write_raw(&out)
            }
            None => self.write_raw(bytes),
        }
    }

    /// Writes below the WebSocket layer: through TLS, if any, to the socket.
    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        match &mut self.tls {
            Some(tls) => {
                // rustls takes a bounded amount of plaintext at a time.
                let mut rest = bytes;
                while !rest.is_empty() {
                    let n = tls.writer().write(rest)?;
                    rest = &rest[n..];
                    while tls.wants_write() {
                        tls.write_tls(&mut self.stream)?;
                    }
                }
                Ok(())
            }
            None => self.stream.write_all(bytes),
        }
    }

    fn flush_tls(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                tls.write_tls(&mut self.stream)?;
            }
        }
        Ok(())
    }

    /// Decrypts `raw`; true when the peer ended TLS (close_notify).
    fn tls_in(&mut self, raw: &[u8]) -> io::Result<(Vec<u8>, bool)> {
        let Some(tls) = &mut self.tls else {
            return Ok((raw.to_vec(), false));
        };
        let mut plain = Vec::new();
        let mut ended = false;
        let mut rest = raw;
        while !rest.is_empty() {
            if tls.read_tls(&mut rest)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS input refused",
                ));
            }
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            match tls.reader().read_to_end(&mut plain) {
                Ok(_) => ended = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        // Alerts, key updates and tickets may want an answer.
        self.flush_tls()?;
        Ok((plain, ended))
    }

    /// Takes raw bytes from the reader thread; gives the STOMP bytes in them,
    /// and true when the peer ended the stream cleanly (a TLS close_notify or
    /// a WebSocket close).
    pub fn receive(&mut self, raw: Vec<u8>) -> io::Result<(Vec<u8>, bool)> {
        let (plain, mut ended) = if self.tls.is_some() {
            self.tls_in(&raw)?
        } else {
            (raw, false)
        };
        let Some(ws) = &mut self.ws else {
            return Ok((plain, ended));
        };
        ws.get_mut().inbound.extend(plain);
        let mut data = Vec::new();
        loop {
            match ws.read() {
                Ok(Message::Binary(bytes)) => data.extend_from_slice(&bytes),
                Ok(Message::Text(text)) => data.extend_from_slice(text.as_bytes()),
                Ok(Message::Close(_)) => ended = true,
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    ended = true;
                    break;
                }
                Err(e) => return Err(ws_error(e)),
            }
        }
        // Pongs and the close reply.
        let out = std::mem::take(&mut ws.get_mut().outbound);
        self.write_raw(&out)?;
        Ok((data, ended))
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

fn context(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn ws_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// In-memory stream under tungstenite: reads what the socket (after TLS)
/// delivered, would-block when empty; collects what it writes.
#[derive(Default)]
pub(crate) struct Pipe {
    inbound: VecDeque<u8>,
    outbound: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbound.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.inbound.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbound.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn read_loop(mut stream: TcpStream, gate: &Gate, generation: u64, input: &Sender<Input>) {
    let mut buf = vec![0; 64 * 1024];
    while gate.wait_ready() {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {
                let bytes = buf[..n].to_vec();
                if input.send(Input::Bytes { generation, bytes }).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => gate.consumed(),
            _ => break,
        }
    }
    let _ = input.send(Input::Eof { generation });
}
