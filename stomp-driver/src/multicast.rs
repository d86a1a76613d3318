//! The socket side of broker-less multicast (`udp://GROUP:PORT?options`):
//! opening the UDP socket and reading the URL's options. The protocol side
//! is [`stomp_proto::multicast`]; [`Layers`](crate::layers::Layers) runs a
//! [`Group`](stomp_proto::multicast::Group) member between the session and
//! the datagrams.
//!
//! Options (all optional):
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `interface` | the IPv4 address of the interface to join and send on | any (`0.0.0.0`) |
//! | `ttl` | how many routers a datagram may cross (0: this host only) | 1 (the local network) |
//! | `loop` | whether this host's members hear each other | `true` |
//! | `ignore_own` | drop our own messages instead of delivering them | `false` |
//! | `max_datagram` | the largest datagram (and so frame) to send, in octets | 65507 |
//!
//! ```
//! use stomp_driver::multicast::options;
//! use stomp_proto::uri::Failover;
//!
//! let url: Failover = "udp://239.1.2.3:61616?interface=127.0.0.1&ttl=0&ignore_own=true"
//!     .parse()?;
//! let options = options(&url.hosts[0])?;
//! assert_eq!(options.ttl, 0);
//! assert!(options.ignore_own);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};
use stomp_proto::multicast::{GroupConfig, MAX_UDP_PAYLOAD};
use stomp_proto::uri::Endpoint;

/// A multicast endpoint's settings, from its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The group.
    pub group: SocketAddrV4,
    /// The interface to join and send on.
    pub interface: Ipv4Addr,
    /// Multicast TTL.
    pub ttl: u32,
    /// Multicast loop-back.
    pub multicast_loop: bool,
    /// Drop our own messages.
    pub ignore_own: bool,
    /// The largest datagram.
    pub max_datagram: usize,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// Reads `endpoint`'s group address and options.
pub fn options(endpoint: &Endpoint) -> io::Result<Options> {
    let address: Ipv4Addr = endpoint.host.parse().map_err(|_| {
        invalid(format!(
            "udp://{}: the group must be an IPv4 multicast address (224.0.0.0/4)",
            endpoint.host
        ))
    })?;
    if !address.is_multicast() {
        return Err(invalid(format!(
            "udp://{address}: not a multicast address (224.0.0.0 to 239.255.255.255)"
        )));
    }
    let parse = |name: &str, default: &str| -> io::Result<String> {
        Ok(endpoint.option(name).unwrap_or(default).to_string())
    };
    let flag = |name: &str, default: bool| -> io::Result<bool> {
        match endpoint.option(name) {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(invalid(format!("{name}={other}: expected true or false"))),
        }
    };
    let interface = parse("interface", "0.0.0.0")?;
    let interface: Ipv4Addr = interface
        .parse()
        .map_err(|_| invalid(format!("interface={interface}: not an IPv4 address")))?;
    let ttl = parse("ttl", "1")?;
    let ttl: u32 = ttl
        .parse()
        .ok()
        .filter(|t| *t <= 255)
        .ok_or_else(|| invalid(format!("ttl={ttl}: expected 0 to 255")))?;
    let max = parse("max_datagram", &MAX_UDP_PAYLOAD.to_string())?;
    let max_datagram: usize = max
        .parse()
        .ok()
        .filter(|m| (512..=MAX_UDP_PAYLOAD).contains(m))
        .ok_or_else(|| {
            invalid(format!(
                "max_datagram={max}: expected 512 to {MAX_UDP_PAYLOAD}"
            ))
        })?;
    Ok(Options {
        group: SocketAddrV4::new(address, endpoint.port),
        interface,
        ttl,
        multicast_loop: flag("loop", true)?,
        ignore_own: flag("ignore_own", false)?,
        max_datagram,
    })
}

impl Options {
    /// The group member's settings, with identity `seed`.
    pub fn group_config(&self, seed: u64) -> GroupConfig {
        GroupConfig {
            max_datagram: self.max_datagram,
            ignore_own: self.ignore_own,
            ..GroupConfig::new(seed)
        }
    }

    /// A UDP socket that has joined the group: bound to the group's port
    /// (shared with other members on this host), sending on the interface
    /// with the TTL and loop-back asked for. Blocking; adapters make it
    /// what they need.
    pub fn open(&self) -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        // Bound to the group address: only its datagrams arrive.
        let bind = SocketAddrV4::new(*self.group.ip(), self.group.port());
        socket.bind(&SocketAddr::V4(bind).into())?;
        socket.join_multicast_v4(self.group.ip(), &self.interface)?;
        socket.set_multicast_if_v4(&self.interface)?;
        socket.set_multicast_ttl_v4(self.ttl)?;
        socket.set_multicast_loop_v4(self.multicast_loop)?;
        // Bursts wait here rather than being lost (the kernel caps it at
        // its own maximum, net.core.rmem_max on Linux).
        let _ = socket.set_recv_buffer_size(4 << 20);
        Ok(socket.into())
    }
}
