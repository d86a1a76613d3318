//! The sub-commands.

pub mod decode;
pub mod encode;
pub mod serve;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

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
