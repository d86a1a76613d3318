//! The embedded broker on Tokio: a TCP listener (loopback by default) and
//! one task that owns the [`Engine`]. Each connection has a reader task
//! that hands the engine what arrives, and a writer task that writes what
//! the engine gives, a bounded channel between them: the engine asks a
//! connection for more only while its writer has room.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::engine::{ConnectionId, Engine, EngineConfig};

/// Frames waiting for one connection's writer.
const WRITER_QUEUE: usize = 16;

/// Where the broker listens, and how it behaves.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The STOMP over TCP listener's address.
    pub listen: SocketAddr,
    /// Queues, topics, logins, sessions.
    pub engine: EngineConfig,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 61613)),
            engine: EngineConfig::default(),
        }
    }
}

/// A running broker; dropping it stops it (connections are closed).
#[derive(Debug)]
pub struct Broker {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Broker {
    /// Binds the listener and starts the broker on the current Tokio runtime.
    pub async fn start(config: ServeConfig) -> io::Result<Broker> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let (events, inbox) = mpsc::channel(256);
        tokio::spawn(accept_loop(listener, events));
        tokio::spawn(run_engine(Engine::new(config.engine), inbox, stopped));
        Ok(Broker {
            addr,
            stop: Some(stop),
        })
    }

    /// The TCP listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `stomp://<addr>`.
    pub fn url(&self) -> String {
        format!("stomp://{}", self.addr)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What reaches the engine task.
enum Event {
    Open {
        writer: mpsc::Sender<Bytes>,
        id: oneshot::Sender<ConnectionId>,
    },
    Bytes(ConnectionId, Vec<u8>),
    Closed(ConnectionId),
    /// A writer wrote: it may take more.
    Wrote,
}

async fn accept_loop(listener: TcpListener, events: mpsc::Sender<Event>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // The engine has stopped: so does the listener.
            () = events.closed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, events.clone()));
    }
}

/// One connection: registers with the engine, then runs its reader here
/// and its writer in a task of its own.
async fn connection(stream: TcpStream, events: mpsc::Sender<Event>) {
    let (mut reader, mut writer) = stream.into_split();
    let (writer_tx, mut writer_rx) = mpsc::channel::<Bytes>(WRITER_QUEUE);
    let (id_tx, id_rx) = oneshot::channel();
    let open = Event::Open {
        writer: writer_tx,
        id: id_tx,
    };
    if events.send(open).await.is_err() {
        return;
    }
    let Ok(id) = id_rx.await else { return };
    let wrote = events.clone();
    tokio::spawn(async move {
        while let Some(bytes) = writer_rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
            let _ = wrote.try_send(Event::Wrote);
        }
        let _ = writer.shutdown().await;
    });
    let mut buf = vec![0; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if events
                    .send(Event::Bytes(id, buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    let _ = events.send(Event::Closed(id)).await;
}

async fn run_engine(
    mut engine: Engine,
    mut inbox: mpsc::Receiver<Event>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut writers: HashMap<ConnectionId, mpsc::Sender<Bytes>> = HashMap::new();
    loop {
        let deadline = engine.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stopped => return,
            event = inbox.recv() => match event {
                None => return,
                Some(Event::Open { writer, id }) => {
                    let connection = engine.open(Instant::now());
                    writers.insert(connection, writer);
                    let _ = id.send(connection);
                }
                Some(Event::Bytes(id, bytes)) => engine.input(id, Instant::now(), &bytes),
                Some(Event::Closed(id)) => {
                    engine.closed(id);
                    writers.remove(&id);
                }
                Some(Event::Wrote) => {}
            },
            () = sleep => engine.handle_timeout(Instant::now()),
        }
        flush(&mut engine, &mut writers);
    }
}

/// Hands each connection's writer what the engine has for it, while it has
/// room; lets go of the writers of ended connections once drained.
fn flush(engine: &mut Engine, writers: &mut HashMap<ConnectionId, mpsc::Sender<Bytes>>) {
    let now = Instant::now();
    let mut drained = Vec::new();
    // New room may let queued messages out to any connection: go round
    // until nothing moves.
    loop {
        let mut moved = false;
        drained.clear();
        for (&id, writer) in writers.iter() {
            loop {
                if writer.capacity() == 0 {
                    break;
                }
                match engine.poll_transmit(id, now) {
                    Some(bytes) => {
                        if writer.try_send(bytes).is_err() {
                            break;
                        }
                        moved = true;
                    }
                    None => {
                        drained.push(id);
                        break;
                    }
                }
            }
        }
        if !moved {
            break;
        }
    }
    for id in &drained {
        if engine.is_finished(*id) {
            // Dropping the sender ends the writer, which closes the socket.
            writers.remove(id);
        }
    }
}
