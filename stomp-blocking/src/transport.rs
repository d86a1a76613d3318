//! Opening the transport a `Dial` names, and the raw byte reader thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use stomp_proto::reconnect::Dial;
use stomp_proto::uri::Scheme;

use crate::mailbox::Gate;
use crate::pump::Input;

/// An open transport: the pump writes to it; a reader thread feeds the pump.
pub(crate) struct Link {
    stream: TcpStream,
    gate: Arc<Gate>,
}

impl Link {
    /// Connects to what `dial` names and starts the reader thread, which tags
    /// its input with `generation`.
    pub fn open(
        dial: &Dial,
        write_timeout: Duration,
        generation: u64,
        input: Sender<Input>,
    ) -> io::Result<Link> {
        if dial.endpoint.scheme != Scheme::Stomp {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{} is not supported yet", dial.endpoint.scheme),
            ));
        }
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in dial.endpoint.authority().to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, dial.timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_write_timeout(Some(write_timeout))?;
                    let gate = Arc::new(Gate::default());
                    let reader = stream.try_clone()?;
                    let reader_gate = gate.clone();
                    thread::Builder::new()
                        .name("stomp-reader".into())
                        .spawn(move || read_loop(reader, &reader_gate, generation, &input))?;
                    return Ok(Link { stream, gate });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.gate.close();
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

fn read_loop(mut stream: TcpStream, gate: &Gate, generation: u64, input: &Sender<Input>) {
    let mut buf = vec![0; 64 * 1024];
    while gate.wait_ready() {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {
                let bytes = buf[..n].to_vec();
                if input.send(Input::Bytes { generation, bytes }).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => gate.consumed(),
            _ => break,
        }
    }
    let _ = input.send(Input::Eof { generation });
}
