//! An async STOMP client on the `futures-io` traits, for async-std and smol.
//!
//! async-std was discontinued upstream in 2025 (advisory RUSTSEC-2025-0052;
//! smol is the successor it names). This crate serves both: the client runs
//! on a small [`Runtime`] (a task, a timer, a TCP connection), implemented
//! here for async-std ([`AsyncStd`], feature `async-std`, on by default)
//! and for smol ([`Smol`], feature `smol`), the way quinn serves several
//! runtimes. One task owns the socket and the sans-IO `ClientSession` of
//! `stomp-proto`; [`Client`] handles are cheap clones that talk to it.
//!
//! ```no_run
//! # #[cfg(feature = "async-std")]
//! # fn main() -> Result<(), stomp_async_std::Error> {
//! use stomp_async_std::{AckMode, Client};
//!
//! async_std::task::block_on(async {
//!     let client = Client::connect("stomp://guest:guest@localhost:61613").await?;
//!     let orders = client.subscribe("/queue/orders", AckMode::ClientIndividual).await?;
//!     client.send_with_receipt("/queue/orders", "one pizza").await?; // the broker has it
//!     if let Some(message) = orders.recv().await {
//!         println!("{}", message.text().unwrap_or("<binary>".into()));
//!         message.ack().await?;
//!     }
//!     client.disconnect().await
//! })
//! # }
//! # #[cfg(not(feature = "async-std"))]
//! # fn main() {}
//! ```
//!
//! Transports (TCP, TLS, WebSocket, and `udp://` multicast without a
//! broker, on async-io's UDP socket for both runtimes), back-pressure and
//! cancellation are as described in [`stomp_driver::aio`]: every call is
//! cancel-safe.
//!
//! # Requests, the tap, health and confirmed mode
//!
//! ```no_run
//! use std::time::Duration;
//! use stomp_async_std::{Client, Config, Outcome};
//!
//! # async fn demo() -> Result<(), stomp_async_std::Error> {
//! let mut config = Config::from_url("stomp://guest:guest@localhost:61613")?;
//! config.confirm = true; // every request waits for its receipt
//! config.resubscribe_idle = Some(Duration::from_secs(300)); // the zombie-consumer watchdog
//! let client = Client::connect_with(config).await?;
//! let tap = client.tap(); // every frame and heart-beat, both ways
//! // reply-to and correlation-id, over RabbitMQ's /temp-queue/ or a reply subscription
//! let price = client.request("/queue/prices", "ACME", Duration::from_secs(5)).await?;
//! println!("{}", price.text().unwrap_or_default());
//! while let Some(tapped) = tap.recv().await {
//!     eprintln!("{:?} {:?}", tapped.direction, tapped.frame.map(|f| f.command));
//! }
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

use std::net::{SocketAddr, UdpSocket};
use std::task::{Context, Poll};

use stomp_driver::aio::{self, AsyncDatagram, AsyncStream, BoxFuture};

pub mod codec;

pub use stomp_driver::aio::{Message, Runtime, Subscription, Tap, Transaction, Unhandled};
pub use stomp_driver::driver::{Health, SubscriptionHealth};
pub use stomp_driver::{
    Config, Empty, Error, Events, Keepalive, Lifecycle, Outcome, TcpOptions, Tls,
};
pub use stomp_proto::client::{Direction, SendOptions, SubscribeOptions, Tapped};
pub use stomp_proto::reconnect::{ReconnectPolicy, UnconfirmedSends};
pub use stomp_proto::{AckMode, HeartBeat, Version, VersionSet};

/// The UDP socket both runtimes share (async-std's own sockets are
/// async-io's), for `udp://` multicast.
#[derive(Debug)]
struct Udp(async_io::Async<UdpSocket>);

impl Udp {
    fn boxed(socket: UdpSocket) -> io::Result<Box<dyn AsyncDatagram>> {
        Ok(Box::new(Udp(async_io::Async::new(socket)?)))
    }
}

impl AsyncDatagram for Udp {
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        datagram: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.0.get_ref().send_to(datagram, target) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = std::task::ready!(self.0.poll_writable(cx)) {
                        return Poll::Ready(Err(e));
                    }
                }
                sent => return Poll::Ready(sent),
            }
        }
    }

    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.0.get_ref().recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = std::task::ready!(self.0.poll_readable(cx)) {
                        return Poll::Ready(Err(e));
                    }
                }
                received => return Poll::Ready(received.map(|(n, _)| n)),
            }
        }
    }
}

/// The timer both runtimes share (async-std's own timers are async-io's).
fn sleep_until(deadline: Instant) -> BoxFuture<()> {
    Box::pin(async move {
        async_io::Timer::at(deadline).await;
    })
}

/// async-std as the client's runtime.
#[cfg(feature = "async-std")]
#[derive(Debug, Default, Clone, Copy)]
pub struct AsyncStd;

#[cfg(feature = "async-std")]
impl Runtime for AsyncStd {
    fn spawn(&self, task: BoxFuture<()>) {
        async_std::task::spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        sleep_until(deadline)
    }

    fn connect(
        &self,
        host: String,
        port: u16,
        options: TcpOptions,
    ) -> BoxFuture<io::Result<Box<dyn AsyncStream>>> {
        Box::pin(async move {
            use async_std::net::ToSocketAddrs;
            let addrs = (host.as_str(), port).to_socket_addrs().await?;
            connect_async_io(addrs, options).await
        })
    }

    fn udp(&self, socket: UdpSocket) -> io::Result<Box<dyn AsyncDatagram>> {
        Udp::boxed(socket)
    }
}

/// A TCP connection through async-io's reactor (which async-std and smol
/// share), the socket set up as `options` say.
#[cfg(any(feature = "async-std", feature = "smol"))]
async fn connect_async_io(
    addrs: impl IntoIterator<Item = SocketAddr>,
    options: TcpOptions,
) -> io::Result<Box<dyn AsyncStream>> {
    let stream = stomp_driver::tcp::connect_each(addrs, &options, |stream| async move {
        let stream = async_io::Async::new(stream)?;
        stream.writable().await?;
        stomp_driver::tcp::finish_connect(&stream)?;
        Ok(stream)
    })
    .await?;
    Ok(Box::new(stream) as Box<dyn AsyncStream>)
}

/// smol as the client's runtime (its global executor).
#[cfg(feature = "smol")]
#[derive(Debug, Default, Clone, Copy)]
pub struct Smol;

#[cfg(feature = "smol")]
impl Runtime for Smol {
    fn spawn(&self, task: BoxFuture<()>) {
        smol::spawn(task).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        sleep_until(deadline)
    }

    fn connect(
        &self,
        host: String,
        port: u16,
        options: TcpOptions,
    ) -> BoxFuture<io::Result<Box<dyn AsyncStream>>> {
        Box::pin(async move {
            let addrs = smol::net::resolve((host.as_str(), port)).await?;
            connect_async_io(addrs, options).await
        })
    }

    fn udp(&self, socket: UdpSocket) -> io::Result<Box<dyn AsyncDatagram>> {
        Udp::boxed(socket)
    }
}

/// A connected client: `Clone + Send + Sync`, cheap to clone; every method
/// of [`aio::Client`] is available on it. The connection closes when the last
/// clone is dropped, or at [`disconnect`](Client::disconnect).
#[derive(Clone, Debug)]
pub struct Client(aio::Client);

impl Client {
    /// Connects to `url` (see [`Config::from_url`]) on the default runtime
    /// (async-std with its feature on, otherwise smol).
    #[cfg(any(feature = "async-std", feature = "smol"))]
    pub async fn connect(url: &str) -> Result<Client, Error> {
        Client::connect_with(Config::from_url(url)?).await
    }

    /// Connects with `config` on the default runtime (async-std with its
    /// feature on, otherwise smol) and waits for CONNECTED.
    #[cfg(any(feature = "async-std", feature = "smol"))]
    pub async fn connect_with(config: Config) -> Result<Client, Error> {
        #[cfg(feature = "async-std")]
        let runtime = AsyncStd;
        #[cfg(not(feature = "async-std"))]
        let runtime = Smol;
        Client::connect_on(config, runtime).await
    }

    /// Connects with `config` on `runtime` and waits for CONNECTED.
    pub async fn connect_on(config: Config, runtime: impl Runtime) -> Result<Client, Error> {
        aio::Client::connect_with(config, Arc::new(runtime))
            .await
            .map(Client)
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
