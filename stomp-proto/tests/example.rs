//! The `tcp_client` example against a loopback server built on
//! `ServerSession`: the example is the code a user copies, so it is tested
//! like any other code, including a failover past a host that refuses.

mod sim;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use sim::EchoBroker;
use stomp_proto::client::CloseReason;
use stomp_proto::server::{RequestKind, ServerConfig, ServerEvent, ServerSession};

#[path = "../examples/tcp_client.rs"]
#[allow(dead_code)]
mod example;

/// Serves one connection with the echo broker until the session ends;
/// returns the requests it saw. Fails after 10 s.
fn serve_one(listener: TcpListener) -> Vec<RequestKind> {
    let deadline = Instant::now() + Duration::from_secs(10);
    listener.set_nonblocking(true).unwrap();
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("no client: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut server = ServerSession::new(ServerConfig::default(), Instant::now());
    let mut broker = EchoBroker::default();
    let mut requests = Vec::new();
    let mut buf = [0; 4096];
    while Instant::now() < deadline {
        let now = Instant::now();
        while let Some(event) = server.poll_event() {
            broker.play(&mut server, now, &event);
            if let ServerEvent::Request(request) = event {
                requests.push(request.kind);
            }
        }
        while let Some(bytes) = server.poll_transmit(now) {
            stream.write_all(&bytes).unwrap();
        }
        if server.is_finished() {
            return requests;
        }
        match stream.read(&mut buf) {
            Ok(0) => server.handle_closed(),
            Ok(n) => server.handle_input(Instant::now(), &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        server.handle_timeout(Instant::now());
    }
    panic!("the session did not end within 10 s: {requests:?}");
}

fn kinds(requests: &[RequestKind]) -> Vec<&'static str> {
    requests
        .iter()
        .map(|r| match r {
            RequestKind::Subscribe { .. } => "SUBSCRIBE",
            RequestKind::Send { .. } => "SEND",
            RequestKind::Disconnect => "DISCONNECT",
            _ => "other",
        })
        .collect()
}

#[test]
fn the_tcp_example_round_trips_through_a_loopback_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || serve_one(listener));
    let body = example::run(&format!("stomp://127.0.0.1:{port}"), "/queue/demo").unwrap();
    assert_eq!(body, "hello");
    let requests = server.join().unwrap();
    assert_eq!(kinds(&requests), ["SUBSCRIBE", "SEND", "DISCONNECT"]);
}

#[test]
fn the_tcp_example_fails_over_past_a_refusing_host() {
    // A port that was just free refuses connections.
    let refused = TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_port = refused.local_addr().unwrap().port();
    drop(refused);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || serve_one(listener));
    let uri = format!(
        "failover:(stomp://127.0.0.1:{refused_port},stomp://127.0.0.1:{port})?randomize=false"
    );
    assert_eq!(example::run(&uri, "/queue/demo").unwrap(), "hello");
    server.join().unwrap();
}

#[test]
fn the_tcp_example_reports_an_unreachable_broker() {
    let refused = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = refused.local_addr().unwrap().port();
    drop(refused);
    let error = example::run(&format!("stomp://127.0.0.1:{port}"), "/queue/demo").unwrap_err();
    // A refused dial is reported as what it was, with its I/O error kind.
    let reason = error.downcast_ref::<CloseReason>().expect("a CloseReason");
    let CloseReason::GaveUp { attempts: 0, last } = reason else {
        panic!("{reason:?}")
    };
    let CloseReason::TransportError(failure) = &**last else {
        panic!("{last:?}")
    };
    assert_eq!(failure.kind(), ErrorKind::ConnectionRefused);
    assert!(
        error
            .to_string()
            .starts_with("no host could be reached: transport error: "),
        "{error}"
    );
}
