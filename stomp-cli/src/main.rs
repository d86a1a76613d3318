//! `stomp`: a command-line tool for STOMP, the Simple Text Oriented Messaging Protocol.

use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stomp_proto::Version;

mod commands;
mod json;

const DECODE_EXAMPLE: &str = "\
Output: one JSON object per line, in stream order:
  {\"command\":\"SEND\",\"headers\":[[\"destination\",\"/queue/a\"]],\"body\":\"hi\"}
  {\"heartbeat\":true}
Bodies that are not UTF-8 come as \"body_base64\" (standard, padded).

Exit status: 0 when the input was whole frames, 1 on malformed input (the frames
before the error are printed, and the message says at which byte offset), 2 when
the input ends inside a frame.

Example:
  printf 'SEND\\ndestination:/queue/a\\n\\nhi\\0' | stomp decode";

const ENCODE_EXAMPLE: &str = "\
Input: the JSON lines `stomp decode` writes; `content-length` is added only where
the body holds a NUL, so `stomp encode | stomp decode` gives back its input.

Example:
  echo '{\"command\":\"SEND\",\"headers\":[[\"destination\",\"/queue/a\"]],\"body\":\"hi\"}' \\
    | stomp encode | stomp decode";

const SUBSCRIBE_HELP: &str = "\
Exit status: 0 after --count messages, Ctrl-C or SIGTERM (with a graceful DISCONNECT),
5 when the broker ends the session (an ERROR, a heart-beat timeout), with the
reason on stderr.

Example:
  stomp subscribe /queue/orders --json --count 10 | stomp encode | stomp decode";

const BENCH_HELP: &str = "\
Latency is from send to receive, measured in this process (the send time
travels in a header). Messages left on the destination by earlier runs are
acknowledged and skipped.

Through a failover (a failover: URL, a broker killed under the run) the
bench goes on and reports the outage: each lost connection and how long it
took to come back, the longest gap without a delivery, duplicates, sends
not confirmed (--receipts) and messages that never came. Exit status 5 if a
message the broker confirmed never arrived.

Examples:
  stomp bench                                   # the embedded broker, 100,000 x 1 KiB
  stomp bench --producers 4 --consumers 4 --duration 10s --transport ws
  stomp bench --url stomp://guest:guest@127.0.0.1:61613 --ack client-individual --json
  stomp bench --url 'failover:(stomp://h1:61613,stomp://h2:61613)' --duration 20s \
    --rate 2000 --persistent --receipts --ack client-individual";

const SHELL_HELP: &str = "\
Type help in the shell for its commands. Messages print as they arrive, above
the prompt, as [DESTINATION] BODY, with (ack ID) when they await an answer.
History is kept in ~/.stomp_history.

With --script FILE (or commands piped in), the commands run in order and the
first one that fails ends the run with exit status 5, for example:
  printf 'subscribe /queue/a\nsend /queue/a hello\nwait 1\n' | stomp shell";

/// A command-line tool for STOMP 1.0, 1.1 and 1.2.
#[derive(Parser)]
#[command(name = "stomp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode raw STOMP bytes into JSON lines, one per frame or heart-beat.
    #[command(after_help = DECODE_EXAMPLE)]
    Decode {
        /// The protocol version whose escaping rules apply: 1.0, 1.1 or 1.2.
        #[arg(long, default_value = "1.2", value_name = "VERSION")]
        protocol: Version,
        /// The input file; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Encode JSON lines (as `stomp decode` prints them) into raw STOMP bytes.
    #[command(after_help = ENCODE_EXAMPLE)]
    Encode {
        /// The protocol version whose escaping rules apply: 1.0, 1.1 or 1.2.
        #[arg(long, default_value = "1.2", value_name = "VERSION")]
        protocol: Version,
        /// The input file; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Send a message (or --count of them), then disconnect gracefully.
    Send(commands::send::SendArgs),
    /// Print the messages that arrive on a destination until Ctrl-C or --count.
    #[command(after_help = SUBSCRIBE_HELP)]
    Subscribe(commands::subscribe::SubscribeArgs),
    /// Measure a broker: producers and consumers, a progress bar, and a table
    /// of rates and latencies. Without --url it runs the embedded broker
    /// in-process.
    #[command(after_help = BENCH_HELP)]
    Bench(commands::bench::BenchArgs),
    /// An interactive shell (connect, subscribe, send, transactions, acks,
    /// stats) with line editing and history; or run a script of its commands.
    #[command(after_help = SHELL_HELP)]
    Shell(commands::shell::ShellArgs),
    /// Run the embedded development broker (queues, topics, acks,
    /// transactions) until Ctrl-C. For development and tests; deployments use
    /// RabbitMQ, ActiveMQ or Artemis.
    Serve(commands::serve::ServeArgs),
}

/// Why a sub-command failed; each kind has its own exit status.
pub enum Failure {
    /// The input broke the protocol (exit 1).
    Malformed(String),
    /// The input ended inside a frame (exit 2).
    Incomplete(String),
    /// Reading or writing failed (exit 3).
    Io(io::Error),
    /// The command cannot run as asked (exit 4).
    Usage(String),
    /// The broker could not be reached, refused us, or ended the session
    /// (an ERROR, a heart-beat timeout) (exit 5).
    Remote(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Malformed(m)
            | Failure::Incomplete(m)
            | Failure::Usage(m)
            | Failure::Remote(m) => f.write_str(m),
            Failure::Io(e) => write!(f, "{e}"),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are answers; anything else is a usage
            // error, 4 as the README says (clap's own 2 is `decode`'s
            // "input ended inside a frame").
            return match e.exit_code() {
                0 => ExitCode::SUCCESS,
                _ => ExitCode::from(4),
            };
        }
    };
    // The codec commands hold stdout for their whole run; the client ones
    // print from several threads and take it line by line.
    let buffered = || io::BufWriter::with_capacity(64 << 10, io::stdout().lock());
    let (name, result) = match cli.command {
        Command::Decode { protocol, file } => (
            "decode",
            commands::open_input(file.as_deref())
                .map_err(Failure::Io)
                .and_then(|input| {
                    let mut out = buffered();
                    commands::decode::run(protocol, input, &mut out)
                        .and_then(|()| out.flush().map_err(Failure::Io))
                }),
        ),
        Command::Encode { protocol, file } => (
            "encode",
            commands::open_input(file.as_deref())
                .map_err(Failure::Io)
                .and_then(|input| {
                    let mut out = buffered();
                    commands::encode::run(protocol, BufReader::new(input), &mut out)
                        .and_then(|()| out.flush().map_err(Failure::Io))
                }),
        ),
        Command::Serve(args) => {
            commands::init_logging(0, true);
            ("serve", commands::serve::run(&args))
        }
        Command::Send(args) => {
            commands::init_logging(args.connect.verbose, false);
            ("send", commands::send::run(&args))
        }
        Command::Bench(args) => {
            commands::init_logging(args.connect.verbose, false);
            ("bench", commands::bench::run(&args))
        }
        Command::Shell(args) => {
            commands::init_logging(args.connect.verbose, false);
            ("shell", commands::shell::run(&args))
        }
        Command::Subscribe(args) => {
            commands::init_logging(args.connect.verbose, false);
            ("subscribe", commands::subscribe::run(&args))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(failure) => {
            let (code, message) = match failure {
                Failure::Malformed(m) => (1, m),
                Failure::Incomplete(m) => (2, m),
                Failure::Io(e) => (3, e.to_string()),
                Failure::Usage(m) => (4, m),
                Failure::Remote(m) => (5, m),
            };
            eprintln!("stomp {name}: {message}");
            ExitCode::from(code)
        }
    }
}
