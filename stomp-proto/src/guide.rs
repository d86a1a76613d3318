//! A walkthrough: driving a [`ClientSession`] from your own event loop.
//!
//! The adapter crates (blocking, Tokio, async-std) do all of this for you. Read
//! on if you have a loop of your own (mio, io_uring, a game loop, an embedded
//! TCP stack) or want to know what the adapters do. The complete program is
//! `examples/tcp_client.rs`, 79 lines over `std::net::TcpStream`:
//!
//! ```text
//! cargo run -p stomp-proto --example tcp_client -- stomp://guest:guest@localhost:61613
//! ```
//!
//! # 1. What goes in, what comes out
//!
//! A session is a state machine. It owns no socket, no thread and no clock:
//!
//! | you call | when |
//! |---|---|
//! | [`poll_dial`](crate::client::ClientSession::poll_dial) | the session wants a transport: open it |
//! | [`handle_connected`](crate::client::ClientSession::handle_connected) | the transport is up |
//! | [`handle_input`](crate::client::ClientSession::handle_input) | octets arrived |
//! | [`handle_closed`](crate::client::ClientSession::handle_closed) | the transport closed, or could not be opened |
//! | [`poll_transmit`](crate::client::ClientSession::poll_transmit) | after anything: write what it returns |
//! | [`poll_event`](crate::client::ClientSession::poll_event) | after anything: messages, receipts, errors |
//! | [`poll_timeout`](crate::client::ClientSession::poll_timeout) / [`handle_timeout`](crate::client::ClientSession::handle_timeout) | sleep until the deadline, then say so |
//!
//! Every input takes `now: Instant`, so tests can run whole sessions, heart-beat
//! timeouts and reconnect backoff included, in simulated time.
//!
//! # 2. Configure
//!
//! [`ClientConfig::from_uri`] reads one endpoint, a host list or a `failover:`
//! URI (see [`uri`](crate::uri)); every field of [`ClientConfig`] can be set
//! directly too: versions, heart-beats, credentials (asked again on each
//! connect), timeouts and the limits that bound memory.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use stomp_proto::client::{ClientConfig, ClientSession};
//! use stomp_proto::HeartBeat;
//!
//! let mut config = ClientConfig::from_uri(
//!     "failover:(stomp://mq1:61613,stomp://mq2:61613)?maxReconnectAttempts=5",
//! )
//! .unwrap();
//! config.heartbeat = HeartBeat::new(5_000, 5_000);
//! config.receipt_timeout = Duration::from_secs(10);
//! config.reconnect.seed = 0x5eed; // adapters seed this from the OS
//! let client = ClientSession::new(config, Instant::now());
//! # let _ = client;
//! ```
//!
//! # 3. The loop
//!
//! One turn of the example's loop does four things. First, open the transport
//! the session asks for; it names the host and how long the dial may take:
//!
//! ```text
//! if let Some(dial) = client.poll_dial(Instant::now()) {
//!     let addr = dial.endpoint.authority().to_socket_addrs().ok();
//!     ...
//!     match stream {
//!         Some(_) => client.handle_connected(Instant::now()),  // sends CONNECT
//!         None => client.handle_closed(Instant::now()),        // next host, or backoff
//!     }
//! }
//! ```
//!
//! Second, drain events. Commands ([`subscribe`](crate::client::ClientSession::subscribe),
//! [`send`](crate::client::ClientSession::send), [`ack`](crate::client::ClientSession::ack), ...) may be
//! called at any time while connected; they queue frames and return at once:
//!
//! ```text
//! while let Some(event) = client.poll_event() {
//!     match event {
//!         Event::Connected(_) => { client.subscribe(queue, ..)?; client.send(queue, "hello", ..)?; }
//!         Event::Message(message) => { ... client.disconnect()?; }
//!         Event::ConnectionLost(_) => stream = None,      // a reconnect follows
//!         Event::Closed(why) => return ...,                // the end
//!         _ => {}
//!     }
//! }
//! ```
//!
//! Third, write everything [`poll_transmit`](crate::client::ClientSession::poll_transmit)
//! returns. Large bodies come out as their own `Bytes`, uncopied. Fourth, wait
//! for input, but no longer than [`poll_timeout`](crate::client::ClientSession::poll_timeout),
//! hand in what arrived, and call [`handle_timeout`](crate::client::ClientSession::handle_timeout)
//! (a call before the deadline does nothing, so calling it every turn is fine).
//!
//! # 4. A whole session, in memory
//!
//! The same loop with a [`ServerSession`](crate::server::ServerSession) as the
//! peer, the way this crate's own tests run (no network, no sleeping):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use stomp_proto::client::{ClientConfig, ClientSession, Event, SendOptions, SubscribeOptions};
//! use stomp_proto::server::{RequestKind, ServerConfig, ServerEvent, ServerSession};
//! use stomp_proto::{Command, Frame};
//!
//! let mut now = Instant::now();
//! let mut client = ClientSession::new(ClientConfig::default(), now);
//! let mut server = ServerSession::new(ServerConfig::default(), now);
//! let dial = client.poll_dial(now).expect("a host to dial");
//! assert_eq!(dial.endpoint.authority(), "localhost:61613");
//! client.handle_connected(now);
//!
//! let mut received = Vec::new();
//! for _ in 0..10 {
//!     while let Some(bytes) = client.poll_transmit(now) {
//!         server.handle_input(now, &bytes);
//!     }
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             ServerEvent::Connect(_) => server.accept(now, Some("s-1")),
//!             ServerEvent::Request(r) => {
//!                 if let RequestKind::Send { destination, .. } = &r.kind {
//!                     let message = Frame::builder(Command::Message)
//!                         .header("destination", destination)
//!                         .header("subscription", "sub-0")
//!                         .header("message-id", "m-1")
//!                         .body(r.frame.body.clone())
//!                         .build();
//!                     server.message(&message).unwrap();
//!                 }
//!             }
//!             ServerEvent::Closed(_) => {}
//!         }
//!     }
//!     while let Some(bytes) = server.poll_transmit(now) {
//!         client.handle_input(now, &bytes);
//!     }
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             Event::Connected(_) => {
//!                 client.subscribe("/queue/a", SubscribeOptions::default()).unwrap();
//!                 client.send("/queue/a", "hello", SendOptions::with_receipt()).unwrap();
//!             }
//!             Event::Message(m) => received.push(m.body().clone()),
//!             _ => {}
//!         }
//!     }
//!     now += Duration::from_millis(100);
//!     client.handle_timeout(now);
//!     server.handle_timeout(now);
//! }
//! assert_eq!(received, ["hello"]);
//! assert_eq!(client.stats().frames_in(Command::Receipt), 1);
//! ```
//!
//! # 5. When the connection is lost
//!
//! With a reconnect policy ([`ReconnectPolicy`](crate::reconnect::ReconnectPolicy),
//! or a `failover:` URI) a lost connection is reported as
//! [`Event::ConnectionLost`] followed by [`Event::Reconnecting`]: close the
//! transport and keep looping. `poll_timeout` includes the backoff, and
//! `poll_dial` names the next host once it is due. After the next CONNECTED,
//! the session has already queued every live subscription again (same ids,
//! same headers, same order). Requests whose receipt was outstanding failed
//! with [`RequestError::ConnectionLost`](crate::client::RequestError::ConnectionLost),
//! unless [`UnconfirmedSends::Resend`](crate::reconnect::UnconfirmedSends::Resend)
//! asked for sends to go again. Without a policy the session ends instead, with
//! [`Event::Closed`].
//!
//! # 6. Back-pressure and limits
//!
//! Nothing grows without bound. Commands fail with
//! [`CommandError::Backpressure`](crate::client::CommandError::Backpressure)
//! when [`ClientConfig::max_outgoing`] octets wait to be written, and with
//! `TooManyPendingReceipts` past [`ClientConfig::max_pending_receipts`]. When
//! [`ClientConfig::max_events`] events wait undrained, input is held back:
//! [`wants_input`](crate::client::ClientSession::wants_input) turns false, so stop reading the
//! socket and TCP slows the broker down. The decoder's
//! [`Limits`](crate::Limits) cap what a hostile server can make us buffer.
//!
//! [`ClientSession`]: crate::client::ClientSession
//! [`ClientConfig`]: crate::client::ClientConfig
//! [`ClientConfig::from_uri`]: crate::client::ClientConfig::from_uri
//! [`ClientConfig::max_outgoing`]: crate::client::ClientConfig::max_outgoing
//! [`ClientConfig::max_pending_receipts`]: crate::client::ClientConfig::max_pending_receipts
//! [`ClientConfig::max_events`]: crate::client::ClientConfig::max_events
//! [`Event::ConnectionLost`]: crate::client::Event::ConnectionLost
//! [`Event::Reconnecting`]: crate::client::Event::Reconnecting
//! [`Event::Closed`]: crate::client::Event::Closed
//! [`ClientSession::poll_dial`]: crate::client::ClientSession::poll_dial
