//! A `ClientSession` driven from a plain `std::net::TcpStream` loop. Run:
//! cargo run -p stomp-proto --example tcp_client -- stomp://guest:guest@localhost:61613
use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use stomp_proto::client::{ClientConfig, ClientSession, Event, SendOptions, SubscribeOptions};

fn main() -> Result<(), Box<dyn Error>> {
    let uri = std::env::args().nth(1);
    let uri = uri.unwrap_or_else(|| "stomp://localhost:61613".into());
    println!("received: {}", run(&uri, "/queue/demo")?);
    Ok(())
}

/// Connects to `uri`, sends "hello" to `queue` and returns what comes back.
pub fn run(uri: &str, queue: &str) -> Result<String, Box<dyn Error>> {
    let mut client = ClientSession::new(ClientConfig::from_uri(uri)?, Instant::now());
    let mut stream: Option<TcpStream> = None;
    let mut received = None;
    let mut buf = vec![0; 64 * 1024];
    loop {
        // Open the transport the session asks for (the first, or a reconnect).
        if let Some(dial) = client.poll_dial(Instant::now()) {
            let addr = dial.endpoint.authority().to_socket_addrs().ok();
            let addr = addr.and_then(|mut addrs| addrs.next());
            stream = addr.and_then(|a| TcpStream::connect_timeout(&a, dial.timeout).ok());
            match stream {
                Some(_) => client.handle_connected(Instant::now()),
                None => client.handle_closed(Instant::now()),
            }
        }
        // React to what happened; commands queue frames.
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
                Event::ConnectionLost(_) => stream = None,
                Event::Closed(why) => return received.ok_or_else(|| why.to_string().into()),
                _ => {}
            }
        }
        // Write what the session wants written.
        if let Some(s) = &mut stream {
            while let Some(bytes) = client.poll_transmit(Instant::now()) {
                if s.write_all(&bytes).is_err() {
                    client.handle_closed(Instant::now());
                    break;
                }
            }
        }
        // Wait for input, but no longer than the next deadline.
        let next = client.poll_timeout().map(|t| t - Instant::now());
        let wait = next
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(1));
        let read = stream.as_mut().map(|s| {
            s.set_read_timeout(Some(wait))?;
            s.read(&mut buf)
        });
        match read {
            None => std::thread::sleep(wait),
            Some(Ok(n)) if n > 0 => client.handle_input(Instant::now(), &buf[..n]),
            Some(Err(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Some(_) => {
                stream = None;
                client.handle_closed(Instant::now());
            }
        }
        client.handle_timeout(Instant::now());
    }
}
