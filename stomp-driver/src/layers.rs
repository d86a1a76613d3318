//! TLS (rustls) and WebSocket framing (tungstenite) as sans-IO layers over
//! in-memory buffers, shared by every adapter through the
//! [`Driver`](crate::driver::Driver): it moves raw bytes between the
//! transport and [`Layers`], and STOMP bytes between `Layers` and the
//! session. Handshakes run through the same two calls. Plain TCP passes
//! through untouched: the session's `Bytes` go out as they are, and what is
//! read is not copied here.
//!
//! For broker-less multicast (`udp://`) the layer is a [`Group`] member
//! instead: each chunk of output is one datagram, each
//! [`receive`](Layers::receive) takes one, and the member answers some
//! frames locally ([`take_local`](Layers::take_local)) after each send.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;

use std::time::Instant;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use stomp_proto::multicast::Group;
use stomp_proto::uri::{Endpoint, Scheme};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocket;
use tungstenite::Message;

use crate::tls::Tls;

/// The WebSocket subprotocols offered, best first.
const SUBPROTOCOLS: &str = "v12.stomp, v11.stomp, v10.stomp";

/// Builds the TLS configuration once and the layers for each dial.
#[derive(Debug)]
pub struct Connector {
    tls: Tls,
    websocket: crate::WebSocket,
    config: Option<Arc<rustls::ClientConfig>>,
    /// Multicast identities: one per member, drawn from this.
    seed: u64,
}

impl Connector {
    /// A connector with these TLS settings; with `check`, bad settings fail
    /// here rather than on the first TLS dial.
    pub fn new(
        tls: Tls,
        websocket: crate::WebSocket,
        check: bool,
    ) -> Result<Connector, crate::Error> {
        let config = if check { Some(tls.build()?) } else { None };
        Ok(Connector {
            tls,
            websocket,
            config,
            seed: crate::config::random_seed(),
        })
    }

    /// A connector for `hosts`: when one of them uses TLS, bad settings fail
    /// here.
    pub fn for_hosts(
        tls: Tls,
        websocket: crate::WebSocket,
        hosts: &[Endpoint],
    ) -> Result<Connector, crate::Error> {
        let check = hosts
            .iter()
            .any(|h| matches!(h.scheme, Scheme::StompSsl | Scheme::Wss));
        Connector::new(tls, websocket, check)
    }

    /// Fresh layers for a connection to `endpoint` (none for plain TCP);
    /// their first output (TLS hello, HTTP upgrade) is ready to take.
    pub fn layers(&mut self, endpoint: &Endpoint, now: Instant) -> io::Result<Layers> {
        let (tls, ws) = match endpoint.scheme {
            Scheme::Stomp => (false, false),
            Scheme::StompSsl => (true, false),
            Scheme::Ws => (false, true),
            Scheme::Wss => (true, true),
            Scheme::Udp => {
                let options = crate::multicast::options(endpoint)?;
                self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let group = Group::new(options.group_config(self.seed), now);
                return Ok(Layers {
                    tls: None,
                    ws: Ws::None,
                    max_message: None,
                    out: VecDeque::new(),
                    group: Some(Box::new(group)),
                    multicast: Some(options),
                    local: Vec::new(),
                    reported_garbage: 0,
                });
            }
        };
        let tls = if tls {
            Some(self.tls_session(endpoint)?)
        } else {
            None
        };
        let mut layers = Layers {
            tls,
            ws: Ws::None,
            max_message: self.websocket.max_message.filter(|_| ws).map(|m| m.max(1)),
            out: VecDeque::new(),
            group: None,
            multicast: None,
            local: Vec::new(),
            reported_garbage: 0,
        };
        if ws {
            layers.start_upgrade(endpoint, &self.websocket.headers)?;
        }
        layers.flush_tls()?;
        Ok(layers)
    }

    fn tls_session(&mut self, endpoint: &Endpoint) -> io::Result<rustls::ClientConnection> {
        let config = match &self.config {
            Some(config) => config.clone(),
            None => {
                let config = self.tls.build().map_err(io::Error::other)?;
                self.config = Some(config.clone());
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

enum Ws {
    None,
    Upgrading(Box<MidHandshake<ClientHandshake<Pipe>>>),
    Open(Box<WebSocket<Pipe>>),
    /// Between states, and after a failed upgrade.
    Broken,
}

/// The layers of one connection; see the module docs.
pub struct Layers {
    tls: Option<rustls::ClientConnection>,
    ws: Ws,
    /// The largest WebSocket message sent.
    max_message: Option<usize>,
    /// Raw bytes for the transport, in order (datagrams, for multicast).
    out: VecDeque<Bytes>,
    /// The multicast member, for `udp://`, and its socket's options.
    group: Option<Box<Group>>,
    multicast: Option<crate::multicast::Options>,
    /// STOMP bytes the member answered, for the session.
    local: Vec<u8>,
    /// The member's garbage count already reported.
    reported_garbage: u64,
}

impl std::fmt::Debug for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layers")
            .field("tls", &self.tls.is_some())
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl Layers {
    /// Whether the handshakes are done and STOMP bytes may flow.
    pub fn is_ready(&self) -> bool {
        let tls_ready = self.tls.as_ref().is_none_or(|tls| !tls.is_handshaking());
        tls_ready && matches!(self.ws, Ws::None | Ws::Open(_))
    }

    /// The next raw bytes to write to the transport (one datagram, for
    /// multicast).
    pub fn pop_output(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    /// Whether STOMP bytes pass through untouched (plain TCP).
    fn is_plain(&self) -> bool {
        self.tls.is_none() && matches!(self.ws, Ws::None) && self.group.is_none()
    }

    /// The group's address and socket options, if this is a multicast
    /// member (datagrams, not a byte stream): what the adapter opens.
    pub fn multicast(&self) -> Option<&crate::multicast::Options> {
        self.multicast.as_ref()
    }

    /// STOMP bytes the multicast member answered itself (CONNECTED,
    /// receipts), for the session now.
    pub fn take_local(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.local)
    }

    /// Garbage datagrams the multicast member dropped since the last call
    /// (for [`ClientSession::handle_dropped_datagrams`](stomp_proto::client::ClientSession::handle_dropped_datagrams)).
    pub fn take_dropped(&mut self) -> u64 {
        let Some(group) = &self.group else { return 0 };
        let garbage = group.stats().garbage;
        let new = garbage - self.reported_garbage;
        self.reported_garbage = garbage;
        new
    }

    /// Moves what the member has for the session and the group out.
    fn drain_group(&mut self, now: Instant) {
        let Some(group) = &mut self.group else { return };
        while let Some(bytes) = group.poll_client(now) {
            self.local.extend_from_slice(&bytes);
        }
        while let Some(datagram) = group.poll_datagram() {
            self.out.push_back(datagram);
        }
    }

    /// Queues STOMP bytes (call [`pop_output`](Layers::pop_output) next,
    /// and for multicast [`take_local`](Layers::take_local)). Plain TCP
    /// queues `bytes` itself, uncopied.
    pub fn send(&mut self, now: Instant, bytes: Bytes) -> io::Result<()> {
        if self.is_plain() {
            self.out.push_back(bytes);
            return Ok(());
        }
        if let Some(group) = &mut self.group {
            group.handle_client(now, &bytes);
            self.drain_group(now);
            return Ok(());
        }
        if let Ws::Open(ws) = &mut self.ws {
            match self.max_message {
                Some(max) if bytes.len() > max => {
                    let mut rest = bytes;
                    while !rest.is_empty() {
                        let piece = rest.split_to(max.min(rest.len()));
                        ws.write(Message::Binary(piece)).map_err(ws_error)?;
                    }
                    ws.flush().map_err(ws_error)?;
                }
                _ => ws.send(Message::Binary(bytes)).map_err(ws_error)?,
            }
            let framed = std::mem::take(&mut ws.get_mut().outbound);
            return self.below_ws(&framed);
        }
        self.below_ws(&bytes)
    }

    /// Takes raw bytes from the socket; gives the STOMP bytes in them, and
    /// true when the peer ended the stream cleanly (a TLS close_notify or a
    /// WebSocket close). Handshakes advance here too; answers they need
    /// (and pongs) wait in [`pop_output`](Layers::pop_output).
    pub fn receive<'a>(
        &mut self,
        now: Instant,
        raw: &'a [u8],
    ) -> io::Result<(Cow<'a, [u8]>, bool)> {
        if self.is_plain() {
            return Ok((Cow::Borrowed(raw), false));
        }
        if let Some(group) = &mut self.group {
            // One datagram: what it holds for the session's subscriptions.
            group.handle_datagram(raw);
            self.drain_group(now);
            return Ok((Cow::Owned(std::mem::take(&mut self.local)), false));
        }
        let (plain, mut ended) = self.tls_in(raw)?;
        let data = match std::mem::replace(&mut self.ws, Ws::Broken) {
            Ws::None => {
                self.ws = Ws::None;
                plain
            }
            Ws::Upgrading(mut mid) => {
                mid.get_mut().get_mut().inbound.extend(plain);
                match (*mid).handshake() {
                    Ok((ws, _response)) => {
                        self.ws = Ws::Open(Box::new(ws));
                        // Frames that came with the upgrade's answer.
                        let (data, closed) = self.ws_frames()?;
                        ended |= closed;
                        data
                    }
                    Err(HandshakeError::Interrupted(mid)) => {
                        self.ws = Ws::Upgrading(Box::new(mid));
                        self.flush_ws()?;
                        Vec::new()
                    }
                    Err(HandshakeError::Failure(e)) => {
                        return Err(context("WebSocket upgrade", ws_error(e)))
                    }
                }
            }
            Ws::Open(mut ws) => {
                ws.get_mut().inbound.extend(plain);
                self.ws = Ws::Open(ws);
                let (data, closed) = self.ws_frames()?;
                ended |= closed;
                data
            }
            Ws::Broken => return Err(io::Error::other("the WebSocket upgrade failed")),
        };
        self.flush_tls()?;
        Ok((Cow::Owned(data), ended))
    }

    fn start_upgrade(
        &mut self,
        endpoint: &Endpoint,
        headers: &[(String, String)],
    ) -> io::Result<()> {
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
        let url = format!(
            "{scheme}://{host}:{}{}",
            endpoint.port,
            endpoint.http_target()
        );
        let mut request = url.into_client_request().map_err(ws_error)?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static(SUBPROTOCOLS),
        );
        for (name, value) in headers {
            let bad = |what: &str| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("WebSocket header {name:?}: {what}"),
                )
            };
            let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad("not a header name"))?;
            let value = tungstenite::http::HeaderValue::from_str(value)
                .map_err(|_| bad("not a header value"))?;
            request.headers_mut().append(name, value);
        }
        let mid = ClientHandshake::start(Pipe::default(), request, None).map_err(ws_error)?;
        // The first round writes the request and stops for the answer.
        match mid.handshake() {
            Err(HandshakeError::Interrupted(mid)) => self.ws = Ws::Upgrading(Box::new(mid)),
            Err(HandshakeError::Failure(e)) => return Err(ws_error(e)),
            Ok(_) => return Err(io::Error::other("WebSocket upgrade answered unasked")),
        }
        self.flush_ws()
    }

    /// Moves what the WebSocket layer wrote down through TLS.
    fn flush_ws(&mut self) -> io::Result<()> {
        let pipe = match &mut self.ws {
            Ws::Upgrading(mid) => mid.get_mut().get_mut(),
            Ws::Open(ws) => ws.get_mut(),
            Ws::None | Ws::Broken => return Ok(()),
        };
        let bytes = std::mem::take(&mut pipe.outbound);
        self.below_ws(&bytes)
    }

    /// The STOMP bytes in the WebSocket messages received; true on a close.
    fn ws_frames(&mut self) -> io::Result<(Vec<u8>, bool)> {
        let Ws::Open(ws) = &mut self.ws else {
            return Ok((Vec::new(), false));
        };
        let mut data = Vec::new();
        let mut ended = false;
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
        self.flush_ws()?;
        Ok((data, ended))
    }

    /// Writes below the WebSocket layer: through TLS, if any.
    fn below_ws(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(tls) = &mut self.tls else {
            if !bytes.is_empty() {
                self.out.push_back(Bytes::copy_from_slice(bytes));
            }
            return Ok(());
        };
        // rustls takes a bounded amount of plaintext at a time.
        let mut records = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = tls.writer().write(rest)?;
            rest = &rest[n..];
            while tls.wants_write() {
                tls.write_tls(&mut records)?;
            }
            if n == 0 && !rest.is_empty() {
                return Err(io::Error::other("TLS refused plaintext"));
            }
        }
        if !records.is_empty() {
            self.out.push_back(records.into());
        }
        Ok(())
    }

    fn flush_tls(&mut self) -> io::Result<()> {
        let mut records = Vec::new();
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                tls.write_tls(&mut records)?;
            }
        }
        if !records.is_empty() {
            self.out.push_back(records.into());
        }
        Ok(())
    }

    /// Decrypts `raw`; true when the peer ended TLS (close_notify).
    fn tls_in(&mut self, raw: &[u8]) -> io::Result<(Vec<u8>, bool)> {
        let Some(tls) = &mut self.tls else {
            return Ok((raw.to_vec(), false));
        };
        let handshaking = tls.is_handshaking();
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
            if let Err(e) = tls.process_new_packets() {
                // Send the alert that says why, then fail.
                let mut alert = Vec::new();
                let _ = tls.write_tls(&mut alert);
                if !alert.is_empty() {
                    self.out.push_back(alert.into());
                }
                let what = if handshaking { "TLS handshake" } else { "TLS" };
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{what}: {e}"),
                ));
            }
            match tls.reader().read_to_end(&mut plain) {
                Ok(_) => ended = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        // Alerts, key updates and tickets may want an answer; plaintext
        // queued before the handshake ended goes out now.
        self.flush_tls()?;
        Ok((plain, ended))
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
struct Pipe {
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
