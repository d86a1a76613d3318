//! An async STOMP client for Tokio. One task owns the socket and the sans-IO
//! `ClientSession` of `stomp-proto`; [`Client`] handles are cheap clones that
//! talk to it. Heart-beats, reconnects and resubscription happen in that
//! task; every decision is the core's.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use stomp_tokio::{AckMode, Client};
//!
//! # async fn demo() -> Result<(), stomp_tokio::Error> {
//! let client = Client::connect("stomp://guest:guest@localhost:61613").await?;
//! let mut orders = client.subscribe("/queue/orders", AckMode::ClientIndividual).await?;
//! client.send_with_receipt("/queue/orders", "one pizza").await?; // the broker has it
//! if let Some(message) = orders.next().await {
//!     println!("{}", message.text().unwrap_or("<binary>".into()));
//!     message.ack().await?;
//! }
//! client.disconnect().await
//! # }
//! ```
//!
//! Runs on current-thread and multi-threaded runtimes. Transports (TCP, TLS,
//! WebSocket, and `udp://` multicast without a broker), back-pressure and
//! cancellation are as described in [`stomp_driver::aio`]: every call is
//! cancel-safe (dropping its future never leaves the connection half-done).
//!
//! # Requests, the tap, health and confirmed mode
//!
//! ```no_run
//! use std::time::Duration;
//! use stomp_tokio::{Client, Config, Outcome};
//!
//! # async fn demo() -> Result<(), stomp_tokio::Error> {
//! let mut config = Config::from_url("stomp://guest:guest@localhost:61613")?;
//! config.confirm = true; // every request waits for its receipt
//! config.resubscribe_idle = Some(Duration::from_secs(300)); // the zombie-consumer watchdog
//! let client = Client::connect_with(config).await?;
//! let tap = client.tap(); // every frame and heart-beat, both ways
//! tokio::spawn(async move {
//!     while let Some(tapped) = tap.recv().await {
//!         eprintln!("{:?} {:?}", tapped.direction, tapped.frame.map(|f| f.command));
//!     }
//! });
//! // reply-to and correlation-id, over RabbitMQ's /temp-queue/ or a reply subscription
//! let price = client.request("/queue/prices", "ACME", Duration::from_secs(5)).await?;
//! println!("{}", price.text().unwrap_or_default());
//! if let Err(e) = client.send("/queue/orders", "one pizza").await {
//!     if e.outcome() == Outcome::Ambiguous {
//!         // it may be on the broker: check before sending it again
//!     }
//! }
//! println!("{:?}", client.health().await?);
//! # Ok(()) }
//! ```
//!
//! Also on every client: `unhandled()` (MESSAGEs for no subscription of
//! ours), `reply()`, `ack_id`/`nack_id`, `transaction_with_id`,
//! `SendOptions::receipt_id`, and [`Config::tcp`] (keepalive, a local
//! address to bind to).

#![forbid(unsafe_code)]

use std::io;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use std::net::SocketAddr;
use std::task::{Context, Poll};

use stomp_driver::aio::{self, AsyncDatagram, AsyncStream, BoxFuture, Runtime};
use tokio_util::compat::TokioAsyncReadCompatExt;

#[cfg(feature = "codec")]
pub mod codec;

pub use stomp_driver::aio::{Message, Subscription, Tap, Transaction, Unhandled};
pub use stomp_driver::driver::{Health, SubscriptionHealth};
use stomp_driver::tcp;
pub use stomp_driver::{
    Config, Empty, Error, Events, Keepalive, Lifecycle, Outcome, TcpOptions, Tls,
};
pub use stomp_proto::client::{Direction, SendOptions, SubscribeOptions, Tapped};
pub use stomp_proto::reconnect::{ReconnectPolicy, UnconfirmedSends};
pub use stomp_proto::{AckMode, HeartBeat, Version, VersionSet};

/// Tokio as the client's runtime: tasks, timers and TCP.
#[derive(Debug)]
struct Tokio(tokio::runtime::Handle);

impl Runtime for Tokio {
    fn spawn(&self, task: BoxFuture<()>) {
        self.0.spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn connect(
        &self,
        host: String,
        port: u16,
        options: TcpOptions,
    ) -> BoxFuture<io::Result<Box<dyn AsyncStream>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), port)).await?;
            let stream = tcp::connect_each(addrs, &options, |stream| async move {
                let stream = tokio::net::TcpStream::from_std(stream)?;
                stream.writable().await?;
                tcp::finish_connect(&stream)?;
                Ok(stream)
            })
            .await?;
            Ok(Box::new(stream.compat()) as Box<dyn AsyncStream>)
        })
    }

    fn udp(&self, socket: std::net::UdpSocket) -> io::Result<Box<dyn AsyncDatagram>> {
        let _runtime = self.0.enter();
        Ok(Box::new(Udp(tokio::net::UdpSocket::from_std(socket)?)))
    }
}

/// A Tokio UDP socket, for `udp://` multicast.
#[derive(Debug)]
struct Udp(tokio::net::UdpSocket);

impl AsyncDatagram for Udp {
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        datagram: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.0.poll_send_to(cx, datagram, target)
    }

    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut read = tokio::io::ReadBuf::new(buf);
        match self.0.poll_recv_from(cx, &mut read) {
            Poll::Ready(Ok(_from)) => Poll::Ready(Ok(read.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A connected client: `Clone + Send + Sync`, cheap to clone; every method
/// of [`aio::Client`] is available on it. The connection closes when the last
/// clone is dropped, or at [`disconnect`](Client::disconnect).
#[derive(Clone, Debug)]
pub struct Client(aio::Client);

impl Client {
    /// Connects to `url` (see [`Config::from_url`]) and waits for CONNECTED.
    pub async fn connect(url: &str) -> Result<Client, Error> {
        Client::connect_with(Config::from_url(url)?).await
    }

    /// Connects with `config` and waits for CONNECTED (or the end of the
    /// first connect's attempts). Must be called inside a Tokio runtime.
    pub async fn connect_with(config: Config) -> Result<Client, Error> {
        let runtime = Arc::new(Tokio(tokio::runtime::Handle::current()));
        aio::Client::connect_with(config, runtime).await.map(Client)
    }

    /// Disconnects gracefully: DISCONNECT, then its receipt (or the
    /// disconnect timeout).
    pub async fn disconnect(self) -> Result<(), Error> {
        self.0.disconnect().await
    }
}

impl Deref for Client {
    type Target = aio::Client;

    fn deref(&self) -> &aio::Client {
        &self.0
    }
}
