//! `stomp subscribe`: prints what arrives on a destination until Ctrl-C or
//! `--count`, then disconnects gracefully.

use std::io::Write;

use stomp_proto::{AckMode, Item};
use stomp_tokio::SubscribeOptions;

use super::connect::{check_destination, failed, reason_line, ConnectArgs};
use super::send::parse_headers;
use crate::Failure;

/// The ack modes, as flags spell them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// The broker forgets a message once it is sent.
    Auto,
    /// Each ACK covers every earlier message too.
    Client,
    /// Each message is acknowledged on its own.
    ClientIndividual,
}

impl From<Ack> for AckMode {
    fn from(ack: Ack) -> AckMode {
        match ack {
            Ack::Auto => AckMode::Auto,
            Ack::Client => AckMode::Client,
            Ack::ClientIndividual => AckMode::ClientIndividual,
        }
    }
}

/// `stomp subscribe` flags.
#[derive(clap::Args, Debug)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// What to subscribe to: /queue/NAME, /topic/NAME, ...
    pub destination: String,
    /// Print each message as one JSON line, as `stomp decode` prints frames.
    #[arg(long)]
    pub json: bool,
    /// How messages are acknowledged; in the client modes each is
    /// acknowledged once printed.
    #[arg(long, value_enum, default_value_t = Ack::Auto)]
    pub ack: Ack,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// A SUBSCRIBE header, NAME:VALUE (repeatable): a selector, a prefetch.
    #[arg(short = 'H', long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
}

/// Runs `stomp subscribe`.
pub fn run(args: &SubscribeArgs) -> Result<(), Failure> {
    check_destination(&args.destination)?;
    let headers = parse_headers(&args.headers)?;
    super::runtime()?.block_on(async {
        // Listening from the start: a Ctrl-C during connect is not lost.
        let interrupted = super::interrupted().map_err(Failure::Io)?;
        tokio::pin!(interrupted);
        let client = args.connect.connect().await?;
        let failed = |e: stomp_tokio::Error| failed(&e);
        let options = SubscribeOptions {
            ack: args.ack.into(),
            headers,
            ..SubscribeOptions::default()
        };
        let subscription = client
            .subscribe_with(&args.destination, options)
            .await
            .map_err(failed)?;
        let stdout = std::io::stdout();
        let mut seen = 0;
        while args.count.is_none_or(|count| seen < count) {
            let message = tokio::select! {
                () = &mut interrupted => break,
                message = subscription.recv() => message,
            };
            let Some(message) = message else {
                let reason = client.close_reason();
                return Err(Failure::Remote(
                    reason
                        .as_ref()
                        .map_or_else(|| "the subscription ended".to_string(), reason_line),
                ));
            };
            let mut out = stdout.lock();
            let printed = if args.json {
                crate::json::write_item(&mut out, &Item::Frame(message.frame().clone()))
            } else {
                out.write_all(message.body())
                    .and_then(|()| out.write_all(b"\n"))
            }
            .and_then(|()| out.flush());
            drop(out);
            match printed {
                Ok(()) => {}
                // The reader went away (`| head`): stop as if asked to; the
                // message stays unacknowledged, so it is not lost.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                Err(e) => return Err(Failure::Io(e)),
            }
            message.ack().await.map_err(failed)?;
            seen += 1;
        }
        client.disconnect().await.map_err(failed)
    })
}
