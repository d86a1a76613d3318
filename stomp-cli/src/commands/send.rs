//! `stomp send`: sends a message (or many), then disconnects gracefully.

use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;
use stomp_tokio::SendOptions;

use super::connect::{check_destination, failed, ConnectArgs};
use crate::Failure;

/// `stomp send` flags.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Where to: /queue/NAME, /topic/NAME, or what the broker names.
    pub destination: String,
    /// The body; `-` reads standard input; empty when absent.
    pub body: Option<String>,
    /// A header, NAME:VALUE (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Wait for the broker's receipt of each message.
    #[arg(long)]
    pub receipt: bool,
    /// Read the body from this file.
    #[arg(long, conflicts_with = "body", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Send the message this many times.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub count: u64,
    /// Send inside one transaction, committed after the last message.
    #[arg(long)]
    pub transaction: bool,
}

/// Splits `NAME:VALUE` flags.
pub fn parse_headers(headers: &[String]) -> Result<Vec<(String, String)>, Failure> {
    headers
        .iter()
        .map(|header| {
            header
                .split_once(':')
                .filter(|(name, _)| !name.is_empty())
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .ok_or_else(|| Failure::Usage(format!("-H {header:?}: expected NAME:VALUE")))
        })
        .collect()
}

fn body(args: &SendArgs) -> Result<Bytes, Failure> {
    if let Some(path) = &args.file {
        return std::fs::read(path)
            .map(Bytes::from)
            .map_err(|e| Failure::Usage(format!("--file {}: {e}", path.display())));
    }
    match args.body.as_deref() {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(Failure::Io)?;
            Ok(Bytes::from(buf))
        }
        Some(text) => Ok(Bytes::copy_from_slice(text.as_bytes())),
        None => Ok(Bytes::new()),
    }
}

/// Runs `stomp send`.
pub fn run(args: &SendArgs) -> Result<(), Failure> {
    check_destination(&args.destination)?;
    let headers = parse_headers(&args.headers)?;
    let body = body(args)?;
    super::runtime()?.block_on(async {
        let client = args.connect.connect().await?;
        let failed = |e: stomp_tokio::Error| failed(&e);
        let transaction = match args.transaction {
            true => Some(client.transaction().await.map_err(failed)?),
            false => None,
        };
        for _ in 0..args.count {
            let options = SendOptions {
                headers: headers.clone(),
                receipt: args.receipt,
                transaction: transaction.as_ref().map(|tx| tx.id().clone()),
                ..SendOptions::default()
            };
            client
                .send_with(&args.destination, body.clone(), options)
                .await
                .map_err(failed)?;
        }
        if let Some(transaction) = transaction {
            transaction.commit().await.map_err(failed)?;
        }
        // The DISCONNECT receipt also confirms every send before it.
        client.disconnect().await.map_err(failed)?;
        let plural = if args.count == 1 { "" } else { "s" };
        eprintln!(
            "stomp send: {} message{plural} to {}",
            args.count, args.destination
        );
        Ok(())
    })
}
