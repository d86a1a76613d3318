//! The sub-commands.

pub mod bench;
pub mod connect;
pub mod decode;
pub mod encode;
pub mod send;
pub mod serve;
pub mod shell;
pub mod subscribe;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// The runtime the client sub-commands run on: one thread is plenty.
pub fn runtime() -> Result<tokio::runtime::Runtime, crate::Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::Failure::Io)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, listened for from this call on: a signal
/// before the first poll is not lost, nor does it kill the process.
/// Call inside the runtime.
pub fn interrupted() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Logs to stderr: with `serve`, the broker's connections (with times and
/// levels); with `-v`, the client's life-cycle and every frame (`-vv`:
/// heart-beats too), as `> SEND destination:/queue/a (5 bytes)`.
pub fn init_logging(verbose: u8, serve: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let frames = match verbose {
        0 => LevelFilter::OFF,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // The client's life-cycle (reconnects) shows with -v; without it, a
    // failure is the one line the command prints itself.
    let rest = if serve || verbose > 0 {
        LevelFilter::INFO
    } else {
        LevelFilter::OFF
    };
    let filter = Targets::new()
        .with_target("stomp::frames", frames)
        .with_default(rest);
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_level(serve);
    let layer = if serve {
        format.boxed()
    } else {
        format.without_time().boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}

/// Opens `path` for reading, or standard input for `-` or no path.
pub fn open_input(path: Option<&Path>) -> io::Result<Box<dyn Read>> {
    match path {
        None => Ok(Box::new(io::stdin().lock())),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(io::stdin().lock())),
        Some(p) => File::open(p)
            .map(|f| Box::new(BufReader::with_capacity(64 << 10, f)) as Box<dyn Read>)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display()))),
    }
}
