//! A walkthrough: driving a [`ClientSession`] from your own event loop.
//!
//! The adapter crates (blocking, Tokio, async-std) do all of this for you. Read
//! on if you have a loop of your own (mio, io_uring, a game loop, an embedded
//! TCP stack) or want to know what the adapters do (they run this loop once,
//! in `stomp-driver`'s connection driver). The complete program is
//! `examples/tcp_client.rs`, about 100 lines over `std::net::TcpStream`:
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
//! | [`handle_connected`](crate::client::ClientSession::handle_connected) | the transport is up (TLS and WebSocket handshakes done) |
//! | [`handle_transport_error`](crate::client::ClientSession::handle_transport_error) | the dial failed (refused, unreachable, a failed handshake), or a read or write failed |
//! | [`handle_input`](crate::client::ClientSession::handle_input) | octets arrived |
//! | [`handle_closed`](crate::client::ClientSession::handle_closed) | the peer closed the transport (end of stream) |
//! | [`poll_event`](crate::client::ClientSession::poll_event) | after anything: messages, receipts, errors, what happened to a transport |
//! | [`poll_transmit`](crate::client::ClientSession::poll_transmit) | after anything: write what it returns |
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
//! connect), timeouts and the limits that bound memory. The defaults: all three
//! versions offered, heart-beats 10 s both ways with a grace of 2 intervals, 10 s
//! to open a transport and 10 s more for CONNECTED, 30 s for a receipt, 8 MiB
//! of outgoing octets ([`ClientConfig::max_outgoing`]), 10,000 pending
//! receipts and 10,000 undrained events. A plain host list (`a,b`) is tried in
//! its order, once, with no reconnect after a loss; a `failover:` URI shuffles
//! the list on each pass (`randomize=false` keeps its order) and reconnects for
//! ever unless `maxReconnectAttempts` / `startupMaxReconnectAttempts` say
//! otherwise (see [`reconnect`](crate::reconnect)).
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
//! The whole program is [`example`], tested against a loopback server (failover past a refusing host included)
//! in `tests/example.rs`. The order of one turn matters, and is the same in every loop:
//!
//! 1. **Dial** what [`poll_dial`](crate::client::ClientSession::poll_dial)
//!    names. It hands out one dial at a time and gives `None` until that dial's
//!    outcome is known. Report the outcome: `handle_connected`, or
//!    `handle_transport_error` with the [`io::Error`](std::io::Error) (its kind
//!    reaches the user). A dial you never answer is failed by the session at
//!    [`Dial::timeout`](crate::client::Dial::timeout):
//!    `poll_timeout` includes that deadline.
//! 2. **Drain events.** Each event about a transport names it by its
//!    [`LinkId`](crate::client::LinkId) ([`Dial::link`](crate::client::Dial::link)):
//!    on [`Event::DialFailed`] or [`Event::ConnectionLost`], close the
//!    transport *it names*, if that is the one you hold, and no other. A
//!    failed dial is followed at once by the next host's dial (go back to
//!    step 1 on the next turn), so an event drained late must never close the
//!    new transport. After [`Event::Closed`], close whatever is open and stop.
//!    Draining events also resumes decoding input held back by
//!    [`ClientConfig::max_events`].
//! 3. **Transmit** everything [`poll_transmit`](crate::client::ClientSession::poll_transmit)
//!    returns, after events (their handlers queue frames) and after every
//!    command. Large bodies come out as their own `Bytes`, uncopied. A
//!    non-blocking socket may take only part of a chunk: keep the rest, in
//!    order, and write it before asking for more; heart-beat and receipt
//!    timers count from when `poll_transmit` handed the octets out.
//! 4. **Wait** for input, but no longer than
//!    [`poll_timeout`](crate::client::ClientSession::poll_timeout) (ask
//!    afresh every turn: any input, command or `poll_transmit` may move it;
//!    `None` means nothing is due until input comes), then call
//!    [`handle_timeout`](crate::client::ClientSession::handle_timeout). A
//!    call before the deadline does nothing, so calling it every turn is
//!    fine.
//!
//! With edge-triggered readiness (mio, epoll with `EPOLLET`), read until the
//! socket says `WouldBlock` each time it is readable, unless
//! [`wants_input`](crate::client::ClientSession::wants_input) turns false:
//! then stop reading, and read again (without waiting for a new edge) once
//! `poll_event` has drained events, since the kernel will not signal
//! readiness again for bytes already waiting.
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
//! [`Event::ConnectionLost`] naming its link, followed by
//! [`Event::Reconnecting`] with the wait: close that transport and keep
//! looping. `poll_timeout` includes the backoff, and `poll_dial` names the
//! next host once it is due. After the next CONNECTED, the session has
//! already queued every live subscription again (same ids, same headers, same
//! order). Requests whose receipt was outstanding failed with
//! [`RequestError::ConnectionLost`](crate::client::RequestError::ConnectionLost),
//! unless [`UnconfirmedSends::Resend`](crate::reconnect::UnconfirmedSends::Resend)
//! asked for sends to go again. A message delivered before the loss can no
//! longer be acknowledged: `ack` refuses it with
//! [`CommandError::StaleAck`](crate::client::CommandError::StaleAck) and
//! sends nothing (the broker redelivers it). Without a policy the session ends
//! instead, with [`Event::Closed`]. A broker that answers CONNECT with an
//! ERROR fails that host for the pass; when every host of a pass refused, the
//! refusal is final. When the policy's passes run out, the end is
//! [`CloseReason::GaveUp`](crate::client::CloseReason::GaveUp) with the last
//! failure; [`CloseReason::may_reconnect`](crate::client::CloseReason::may_reconnect)
//! says per reason whether a reconnect may follow.
//!
//! # 6. Back-pressure and limits
//!
//! Nothing grows without bound. Commands fail with
//! [`CommandError::Backpressure`](crate::client::CommandError::Backpressure)
//! when [`ClientConfig::max_outgoing`] octets wait to be written, and with
//! `TooManyPendingReceipts` past [`ClientConfig::max_pending_receipts`]. Acks
//! are commands like any other: a loop that must not lose one keeps its own
//! queue of acks refused with `Backpressure` and retries them after
//! `poll_transmit` made room ([`has_room_for`](crate::client::ClientSession::has_room_for)
//! says when). When [`ClientConfig::max_events`] events wait undrained,
//! input is held back: [`wants_input`](crate::client::ClientSession::wants_input)
//! turns false, so stop reading the socket and TCP slows the broker down. The
//! decoder's [`Limits`](crate::Limits) cap what a hostile server can make us
//! buffer.
//!
//! # 7. Small things newcomers ask
//!
//! - [`disconnect`](crate::client::ClientSession::disconnect) returns the
//!   DISCONNECT's receipt id, but its RECEIPT is not reported as an
//!   [`Event::Receipt`](crate::client::Event::Receipt): it ends the session with
//!   `Event::Closed(CloseReason::Disconnected)` (or `DisconnectTimeout`).
//! - [`Message::ack`](crate::client::Message::ack) is `None` for `auto`
//!   subscriptions, and for a 1.2 MESSAGE that came without an `ack` header;
//!   it is always `Some` for a `client` or `client-individual` subscription
//!   whose broker follows the spec.
//! - The session never shuffles a plain host list; the seed in
//!   [`ReconnectPolicy::seed`](crate::reconnect::ReconnectPolicy::seed) makes
//!   a shuffled one reproducible.
//!
//! [`ClientSession`]: crate::client::ClientSession
//! [`ClientConfig`]: crate::client::ClientConfig
//! [`ClientConfig::from_uri`]: crate::client::ClientConfig::from_uri
//! [`ClientConfig::max_outgoing`]: crate::client::ClientConfig::max_outgoing
//! [`ClientConfig::max_pending_receipts`]: crate::client::ClientConfig::max_pending_receipts
//! [`ClientConfig::max_events`]: crate::client::ClientConfig::max_events
//! [`Event::ConnectionLost`]: crate::client::Event::ConnectionLost
//! [`Event::DialFailed`]: crate::client::Event::DialFailed
//! [`Event::Reconnecting`]: crate::client::Event::Reconnecting
//! [`Event::Closed`]: crate::client::Event::Closed
//! [`ClientSession::poll_dial`]: crate::client::ClientSession::poll_dial

#[doc = concat!(
    "`examples/tcp_client.rs`, included as it is (so it cannot drift from the ",
    "tested program): the loop of [the guide](self), over `std::net::TcpStream`.\n\n",
    "```text\n",
    include_str!("../examples/tcp_client.rs"),
    "```"
)]
pub mod example {}
