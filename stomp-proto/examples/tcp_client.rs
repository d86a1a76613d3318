//! A `ClientSession` driven from a plain `std::net::TcpStream` loop. Run:
//! cargo run -p stomp-proto --example tcp_client -- stomp://guest:guest@localhost:61613
use std::error::Error;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use stomp_proto::client::{
    ClientConfig, ClientSession, Dial, Event, LinkId, SendOptions, SubscribeOptions,
};

fn main() -> Result<(), Box<dyn Error>> {
    let uri = std::env::args().nth(1);
    let uri = uri.unwrap_or_else(|| "stomp://localhost:61613".into());
    println!("received: {}", run(&uri, "/queue/demo")?);
    Ok(())
}

/// Connects to `uri`, sends "hello" to `queue` and returns what comes back.
pub fn run(uri: &str, queue: &str) -> Result<String, Box<dyn Error>> {
    let mut client = ClientSession::new(ClientConfig::from_uri(uri)?, Instant::now());
    // The open transport, with the link id the session knows it by.
    let mut stream: Option<(LinkId, TcpStream)> = None;
    let mut received = None;
    let mut buf = vec![0; 64 * 1024];
    loop {
        // 1. Open the transport the session asks for (the first, the next
        //    host after a failed dial, or a reconnect).
        if let Some(dial) = client.poll_dial(Instant::now()) {
            match open(&dial) {
                Ok(s) => {
                    stream = Some((dial.link, s));
                    client.handle_connected(Instant::now());
                }
                Err(e) => client.handle_transport_error(Instant::now(), e),
            }
        }
        // 2. React to what happened; commands queue frames. An event about a
        //    transport names it: close that one, never a newer one.
        while let Some(event) = client.poll_event() {
            match event {
                Event::Connected(_) => {
                    client.subscribe(queue, SubscribeOptions::default())?;
                    client.send(queue, "hello", SendOptions::default())?;
                }
                Event::Message(message) => {
                    received = Some(String::from_utf8_lossy(message.body()).into_owned());
                    client.disconnect()?;
                }
                Event::DialFailed { link, .. } | Event::ConnectionLost { link, .. }
                    if stream.as_ref().is_some_and(|(open, _)| *open == link) =>
                {
                    stream = None;
                }
                Event::Closed(why) => return received.ok_or_else(|| why.into()),
                _ => {}
            }
        }
        // 3. Write what the session wants written (a blocking socket takes
        //    it all; a non-blocking one would keep the rest for later).
        if let Some((_, s)) = &mut stream {
            while let Some(bytes) = client.poll_transmit(Instant::now()) {
                if let Err(e) = s.write_all(&bytes) {
                    client.handle_transport_error(Instant::now(), e);
                    break;
                }
            }
        }
        // 4. Wait for input, but no longer than the next deadline, then let
        //    the session's timers run.
        let next = client.poll_timeout().map(|t| t - Instant::now());
        let wait = next
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(1));
        let read = stream.as_mut().map(|(_, s)| {
            s.set_read_timeout(Some(wait))?;
            s.read(&mut buf)
        });
        match read {
            None => std::thread::sleep(wait),
            Some(Ok(0)) => client.handle_closed(Instant::now()),
            Some(Ok(n)) => client.handle_input(Instant::now(), &buf[..n]),
            Some(Err(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Some(Err(e)) => client.handle_transport_error(Instant::now(), e),
        }
        client.handle_timeout(Instant::now());
    }
}

/// Opens a TCP connection to what `dial` names, within its timeout.
fn open(dial: &Dial) -> io::Result<TcpStream> {
    let mut last = io::Error::new(ErrorKind::NotFound, "no address");
    for addr in dial.endpoint.authority().to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, dial.timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}
