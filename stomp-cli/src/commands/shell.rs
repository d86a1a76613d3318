//! `stomp shell`: an interactive STOMP shell in the spirit of stomp.py's,
//! with line editing and history, messages printed as they arrive without
//! corrupting the prompt; or, with `--script` or piped input, the same
//! commands run from a file.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustyline::error::ReadlineError;
use rustyline::ExternalPrinter as _;
use stomp_proto::{AckMode, Command};
use stomp_tokio::{Client, Message, SendOptions, SubscribeOptions, Transaction};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::connect::{connect, ended, redact, ConnectArgs};
use crate::Failure;

const HELP: &str = "\
Commands:
  connect [URL]                  connect (again), to URL or the --url given
  disconnect                     disconnect gracefully
  subscribe DEST [ACK]           subscribe; ACK is auto (default), client or
                                 client-individual (also as --ack ACK)
  unsubscribe DEST|ID            end a subscription
  send DEST [BODY...]            send the rest of the line (inside the open
                                 transaction, if any)
  sendfile DEST FILE [HEADERS]   send a file's contents with a filename
                                 header, and headers from the file HEADERS
                                 (name:value lines)
  sendrec DEST BODY...           send, and wait (up to --timeout) until it
                                 comes back on a subscription
  sendreply DEST CORRELATION-ID BODY...
                                 send a reply: the rest of the line, with
                                 that correlation-id header
  begin | commit | abort | rollback
                                 one transaction at a time
  ack [ID] | nack [ID]           answer a message (ID: its message-id, shown
                                 as \"ack ID\" when it arrives; without it,
                                 the oldest message awaiting an answer;
                                 outside a transaction it waits for the
                                 broker's receipt, so a refusal shows)
  headers on|off                 show each message's headers under it
  save DIR|off                   save arriving messages that carry a
                                 filename header into DIR
  run FILE                       run the commands in FILE; the first
                                 failing one ends it
  stats                          the session's counters
  version | ver                  the negotiated version and the broker
  sleep SECONDS                  wait (in scripts)
  wait N                         wait until N messages in all have arrived
                                 (in scripts; up to --timeout)
  help [COMMAND]                 this, or one command's line
  quit | exit                    disconnect and leave (also Ctrl-D)";

/// The help lines of `command` (any of the alternatives a line names, as
/// in `begin | commit | abort`), with their continuation lines.
fn usage(command: &str) -> Option<String> {
    let mut lines = HELP.lines().skip(1).peekable();
    while let Some(line) = lines.next() {
        let synopsis = line.trim_start().split("  ").next().unwrap_or("");
        let names = synopsis
            .split('|')
            .filter_map(|alternative| alternative.split_whitespace().next());
        if names.clone().any(|name| name == command) {
            let mut text = line.to_string();
            // Continuation lines start with more than the two spaces.
            while let Some(more) = lines.next_if(|l| l.starts_with("   ")) {
                text.push('\n');
                text.push_str(more);
            }
            return Some(text);
        }
    }
    None
}

/// `stomp shell` flags.
#[derive(clap::Args, Debug)]
pub struct ShellArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Run the commands in this file (`-`: standard input) instead of
    /// reading them interactively; the first failing command ends the run.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
}

/// Where arriving messages go: above the prompt, or plainly to stdout in
/// scripts.
#[derive(Clone)]
struct Printer(Arc<Mutex<PrintFn>>);

/// Prints one arrival.
type PrintFn = Box<dyn FnMut(String) + Send>;

impl Printer {
    fn print(&self, text: String) {
        let mut print = self.0.lock().unwrap_or_else(|e| e.into_inner());
        print(text);
    }
}

/// The shell's state.
struct Shell {
    args: ConnectArgs,
    runtime: Runtime,
    printer: Printer,
    client: Option<Client>,
    transaction: Option<Transaction>,
    /// By destination: the subscription id and the task printing it.
    subscriptions: HashMap<String, (String, JoinHandle<()>)>,
    /// Messages awaiting ACK or NACK, oldest first, with their message-ids.
    unanswered: Arc<Mutex<VecDeque<(String, Message)>>>,
    arrived: Arc<AtomicU64>,
    /// Whether arrivals show their headers.
    show_headers: Arc<std::sync::atomic::AtomicBool>,
    /// Where arrivals with a `filename` header are saved, if anywhere.
    save_dir: Arc<Mutex<Option<PathBuf>>>,
    /// The `sendrec` tags that have come back.
    echoes: Arc<Mutex<HashSet<String>>>,
    /// `sendrec` tags made so far.
    sendrecs: u64,
    /// Destinations seen (subscribed to, sent to), for tab completion.
    destinations: Arc<Mutex<BTreeSet<String>>>,
    /// How deep in `run FILE` the shell is.
    depth: usize,
    /// The client, for a signal's graceful end.
    current: Arc<Mutex<Option<Client>>>,
}

/// On Ctrl-C (outside the line editor, which takes it as a key) or
/// SIGTERM: the session up then disconnects gracefully (DISCONNECT, its
/// receipt), and the shell leaves with success, as `subscribe` does.
fn end_gracefully_on_signal(
    runtime: &Runtime,
    current: Arc<Mutex<Option<Client>>>,
) -> Result<(), Failure> {
    let interrupted = runtime
        .block_on(async { super::interrupted() })
        .map_err(Failure::Io)?;
    runtime.spawn(async move {
        interrupted.await;
        let client = current.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(client) = client {
            let _ = client.disconnect().await;
        }
        std::process::exit(0);
    });
    Ok(())
}

/// The header a `sendrec` tags its message with.
const SENDREC: &str = "stomp-sendrec";

/// How deep `run FILE` may nest.
const MAX_RUN_DEPTH: usize = 8;

/// Every command, for tab completion.
const COMMANDS: &[&str] = &[
    "abort",
    "ack",
    "begin",
    "commit",
    "connect",
    "disconnect",
    "exit",
    "headers",
    "help",
    "nack",
    "quit",
    "rollback",
    "run",
    "save",
    "send",
    "sendfile",
    "sendrec",
    "sendreply",
    "sleep",
    "stats",
    "subscribe",
    "unsubscribe",
    "ver",
    "version",
    "wait",
];

/// The commands whose first argument is a destination.
const TAKES_DESTINATION: &[&str] = &[
    "send",
    "sendfile",
    "sendrec",
    "sendreply",
    "subscribe",
    "unsubscribe",
];

/// What tab completes at `pos` of `line`: where the word starts, and its
/// candidates (commands for the first word, destinations seen for a
/// command's destination).
fn complete(line: &str, pos: usize, destinations: &BTreeSet<String>) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before.rfind(char::is_whitespace).map_or(0, |at| at + 1);
    let word = &before[start..];
    let words_before: Vec<&str> = before[..start].split_whitespace().collect();
    let candidates: Vec<String> = match words_before.as_slice() {
        [] => COMMANDS
            .iter()
            .filter(|c| c.starts_with(word))
            .map(|c| c.to_string())
            .collect(),
        [command] if TAKES_DESTINATION.contains(command) => destinations
            .iter()
            .filter(|d| d.starts_with(word))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    (start, candidates)
}

/// Tab completion for the interactive shell.
struct Completion {
    destinations: Arc<Mutex<BTreeSet<String>>>,
}

impl rustyline::completion::Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let destinations = self.destinations.lock().unwrap_or_else(|e| e.into_inner());
        Ok(complete(line, pos, &destinations))
    }
}

impl rustyline::hint::Hinter for Completion {
    type Hint = String;
}

impl rustyline::highlight::Highlighter for Completion {}

impl rustyline::validate::Validator for Completion {}

impl rustyline::Helper for Completion {}

/// The headers of a headers file: `name:value` lines; blank lines and
/// lines starting with `#` are skipped.
fn headers_file(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut headers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| format!("{path}:{}: not a name:value line", n + 1))?;
        headers.push((name.to_string(), value.to_string()));
    }
    Ok(headers)
}

/// Saves `body` as `name` (its last path part only) in `dir`, never over
/// a file already there (`name.1`, `name.2` ... instead): the path.
fn save_file(dir: &std::path::Path, name: &str, body: &[u8]) -> std::io::Result<PathBuf> {
    let base = std::path::Path::new(name)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("unnamed");
    for n in 0..1000 {
        let candidate = match n {
            0 => dir.join(base),
            n => dir.join(format!("{base}.{n}")),
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut file) => {
                file.write_all(body)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "{base}: too many copies in {}",
        dir.display()
    )))
}

/// What a command asks of the loop.
enum Next {
    Continue,
    Quit,
}

/// Runs `stomp shell`.
pub fn run(args: &ShellArgs) -> Result<(), Failure> {
    // A URL that cannot be read is a usage error, as for every command.
    args.connect.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(Failure::Io)?;
    let script: Option<Box<dyn BufRead>> = match &args.script {
        Some(path) => Some(Box::new(std::io::BufReader::new(
            super::open_input(Some(path)).map_err(Failure::Io)?,
        ))),
        None if !std::io::stdin().is_terminal() => Some(Box::new(std::io::stdin().lock())),
        None => None,
    };
    match script {
        Some(lines) => {
            let printer = Printer(Arc::new(Mutex::new(Box::new(|text: String| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }))));
            let mut shell = Shell::new(args.connect.clone(), runtime, printer);
            end_gracefully_on_signal(&shell.runtime, shell.current.clone())?;
            shell.connect(None)?;
            for line in lines.lines() {
                let line = line.map_err(Failure::Io)?;
                match shell.execute(&line) {
                    Ok(Next::Continue) => {}
                    Ok(Next::Quit) => break,
                    Err(why) => {
                        shell.close();
                        return Err(Failure::Remote(format!("{}: {why}", line.trim())));
                    }
                }
            }
            shell.close();
            Ok(())
        }
        None => interactive(args, runtime),
    }
}

fn interactive(args: &ShellArgs, runtime: Runtime) -> Result<(), Failure> {
    let mut editor: rustyline::Editor<Completion, rustyline::history::DefaultHistory> =
        rustyline::Editor::new().map_err(|e| Failure::Io(std::io::Error::other(e)))?;
    let history = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".stomp_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let mut external = editor
        .create_external_printer()
        .map_err(|e| Failure::Io(std::io::Error::other(e)))?;
    let printer = Printer(Arc::new(Mutex::new(Box::new(move |text: String| {
        let _ = external.print(format!("{text}\n"));
    }))));
    let mut shell = Shell::new(args.connect.clone(), runtime, printer);
    end_gracefully_on_signal(&shell.runtime, shell.current.clone())?;
    editor.set_helper(Some(Completion {
        destinations: shell.destinations.clone(),
    }));
    println!(
        "stomp shell {}: type help for the commands",
        env!("CARGO_PKG_VERSION")
    );
    if let Err(why) = shell.connect(None) {
        println!("not connected: {why} (use connect URL)");
    }
    loop {
        let prompt = match &shell.client {
            Some(client) if client.close_reason().is_none() => "stomp> ",
            _ => "stomp (not connected)> ",
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                match shell.execute(&line) {
                    Ok(Next::Continue) => {}
                    Ok(Next::Quit) => break,
                    Err(why) => println!("error: {why}"),
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                shell.close();
                return Err(Failure::Io(std::io::Error::other(e)));
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    shell.close();
    Ok(())
}

impl Shell {
    fn new(args: ConnectArgs, runtime: Runtime, printer: Printer) -> Shell {
        Shell {
            args,
            runtime,
            printer,
            client: None,
            transaction: None,
            subscriptions: HashMap::new(),
            unanswered: Arc::new(Mutex::new(VecDeque::new())),
            arrived: Arc::new(AtomicU64::new(0)),
            show_headers: Arc::default(),
            save_dir: Arc::default(),
            echoes: Arc::default(),
            sendrecs: 0,
            destinations: Arc::default(),
            depth: 0,
            current: Arc::default(),
        }
    }

    /// Remembers `destination` for tab completion.
    fn seen(&self, destination: &str) {
        self.destinations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(destination.to_string());
    }

    /// `run FILE`: each line as a command, up to the first failure.
    fn run_file(&mut self, path: &str) -> Result<Next, String> {
        if self.depth >= MAX_RUN_DEPTH {
            return Err(format!("run nests deeper than {MAX_RUN_DEPTH}"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        self.depth += 1;
        let mut outcome = Ok(Next::Continue);
        for (n, line) in text.lines().enumerate() {
            match self.execute(line) {
                Ok(Next::Continue) => {}
                Ok(Next::Quit) => {
                    outcome = Ok(Next::Quit);
                    break;
                }
                Err(why) => {
                    outcome = Err(format!("{path}:{}: {}: {why}", n + 1, line.trim()));
                    break;
                }
            }
        }
        self.depth -= 1;
        outcome
    }

    /// A command's own output: plainly, as the prompt is not showing.
    fn say(&self, text: impl Into<String>) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", text.into());
        let _ = out.flush();
    }

    fn client(&self) -> Result<&Client, String> {
        self.client
            .as_ref()
            .ok_or_else(|| "not connected (use connect)".to_string())
    }

    fn execute(&mut self, line: &str) -> Result<Next, String> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(Next::Continue);
        }
        let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let words: Vec<&str> = rest.split_whitespace().collect();
        let failed = |e: stomp_tokio::Error| ended(&e);
        match (command, words.as_slice()) {
            ("help" | "?", []) => self.say(HELP),
            ("help" | "?", [name]) => {
                let text = usage(name).ok_or_else(|| format!("unknown command {name:?}"))?;
                self.say(text);
            }
            ("quit" | "exit", _) => return Ok(Next::Quit),
            ("connect", []) => self.connect(None).map_err(|f| f.to_string())?,
            ("connect", [url]) => self.connect(Some(url)).map_err(|f| f.to_string())?,
            ("disconnect", []) => {
                self.close();
                self.say("disconnected");
            }
            ("subscribe", [destination]) => self.subscribe(destination, AckMode::Auto)?,
            ("subscribe", [destination, ack] | [destination, "--ack", ack]) => {
                let ack = match *ack {
                    "auto" => AckMode::Auto,
                    "client" => AckMode::Client,
                    "client-individual" => AckMode::ClientIndividual,
                    other => return Err(format!("unknown ack mode {other:?}")),
                };
                self.subscribe(destination, ack)?
            }
            ("unsubscribe", [which]) => {
                let destination = self
                    .subscriptions
                    .iter()
                    .find(|(destination, (id, _))| destination == which || id == which)
                    .map(|(destination, _)| destination.clone())
                    .ok_or_else(|| format!("no subscription {which}"))?;
                if let Some((_, task)) = self.subscriptions.remove(&destination) {
                    task.abort();
                    let _ = self.runtime.block_on(task);
                }
                self.say(format!("unsubscribed from {destination}"));
            }
            ("send", [destination, ..]) => {
                let body = rest[destination.len()..].trim_start();
                self.send(destination, Bytes::copy_from_slice(body.as_bytes()))?;
            }
            ("sendreply", [destination, correlation, ..]) => {
                let body = rest[destination.len()..].trim_start()[correlation.len()..].trim_start();
                let headers = vec![("correlation-id".to_string(), correlation.to_string())];
                self.send_with(
                    destination,
                    Bytes::copy_from_slice(body.as_bytes()),
                    headers,
                )?;
                self.say(format!("replied to {destination} ({correlation})"));
            }
            ("sendfile", [destination, file] | [destination, file, _]) => {
                let body = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
                let mut headers = match words.get(2) {
                    Some(path) => headers_file(path)?,
                    None => Vec::new(),
                };
                if !headers.iter().any(|(name, _)| name == "filename") {
                    let name = std::path::Path::new(file)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| file.to_string());
                    headers.push(("filename".into(), name));
                }
                let size = body.len();
                self.send_with(destination, Bytes::from(body), headers)?;
                self.say(format!("sent {file} ({size} bytes) to {destination}"));
            }
            ("sendrec", [destination, ..]) => {
                if self.transaction.is_some() {
                    return Err("sendrec inside a transaction would wait for the commit".into());
                }
                let body = rest[destination.len()..].trim_start();
                self.sendrecs += 1;
                let tag = format!("{}-{}", std::process::id(), self.sendrecs);
                let headers = vec![(SENDREC.to_string(), tag.clone())];
                let started = Instant::now();
                self.send_with(
                    destination,
                    Bytes::copy_from_slice(body.as_bytes()),
                    headers,
                )?;
                let deadline = started + self.args.timeout;
                loop {
                    if self
                        .echoes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&tag)
                    {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "sent to {destination}, not received back within {:?} \
                             (subscribe to where it goes first)",
                            self.args.timeout
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                self.say(format!(
                    "sent to {destination} and received back in {} ms",
                    started.elapsed().as_millis()
                ));
            }
            ("save", ["off"]) => {
                *self.save_dir.lock().unwrap_or_else(|e| e.into_inner()) = None;
                self.say("not saving files");
            }
            ("save", [dir]) => {
                let dir = PathBuf::from(dir);
                if !dir.is_dir() {
                    return Err(format!("{}: not a directory", dir.display()));
                }
                self.say(format!(
                    "saving messages with a filename header into {}",
                    dir.display()
                ));
                *self.save_dir.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir);
            }
            ("run", [file]) => return self.run_file(file),
            ("begin", []) => {
                if self.transaction.is_some() {
                    return Err("a transaction is already open (commit or abort it)".into());
                }
                let client = self.client()?.clone();
                let tx = self
                    .runtime
                    .block_on(client.transaction())
                    .map_err(failed)?;
                self.say(format!("transaction {} begun", tx.id()));
                self.transaction = Some(tx);
            }
            ("commit" | "abort" | "rollback", []) => {
                let tx = self
                    .transaction
                    .take()
                    .ok_or_else(|| "no transaction is open (begin one)".to_string())?;
                let id = tx.id().to_string();
                if command == "commit" {
                    self.runtime.block_on(tx.commit()).map_err(failed)?;
                    self.say(format!("transaction {id} committed"));
                } else {
                    self.runtime.block_on(tx.abort()).map_err(failed)?;
                    self.say(format!("transaction {id} aborted"));
                }
            }
            ("ack" | "nack", [] | [_]) => {
                let (id, message) = {
                    let mut unanswered = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
                    let at = match words.first() {
                        Some(id) => unanswered.iter().position(|(m, _)| m == id),
                        None => (!unanswered.is_empty()).then_some(0),
                    };
                    at.and_then(|at| unanswered.remove(at))
                        .ok_or_else(|| match words.first() {
                            Some(id) => format!("no message {id} awaits an answer"),
                            None => "no message awaits an answer".to_string(),
                        })?
                };
                // Outside a transaction the receipt tells whether the broker
                // took it; inside one, the COMMIT does.
                let result = match (command, &self.transaction) {
                    ("ack", Some(tx)) => self.runtime.block_on(message.ack_in(tx)),
                    ("nack", Some(tx)) => self.runtime.block_on(message.nack_in(tx)),
                    ("ack", None) => self.runtime.block_on(message.ack_with_receipt()),
                    _ => self.runtime.block_on(message.nack_with_receipt()),
                };
                result.map_err(failed)?;
                self.say(format!("{command}ed {id}"));
            }
            ("headers", [setting @ ("on" | "off")]) => {
                let on = *setting == "on";
                self.show_headers.store(on, Ordering::SeqCst);
                self.say(format!("headers {setting}"));
            }
            ("stats", []) => {
                let stats = self
                    .runtime
                    .block_on(self.client()?.stats())
                    .map_err(failed)?;
                let frames = |of: fn(&stomp_proto::client::Stats, Command) -> u64| {
                    Command::ALL
                        .iter()
                        .filter(|c| of(&stats, **c) > 0)
                        .map(|c| format!("{c} {}", of(&stats, *c)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                self.say(format!(
                    "frames out: {}\nframes in: {}\nbytes out {}, in {}; heart-beats out {}, in {}\n\
                     acks {}, nacks {}, errors {}, receipt timeouts {}\n\
                     connects {}, reconnects {}, connections lost {}",
                    frames(stomp_proto::client::Stats::frames_out),
                    frames(stomp_proto::client::Stats::frames_in),
                    stats.bytes_out,
                    stats.bytes_in,
                    stats.heartbeats_out,
                    stats.heartbeats_in,
                    stats.acks,
                    stats.nacks,
                    stats.errors,
                    stats.receipt_timeouts,
                    stats.connects,
                    stats.reconnects,
                    stats.connections_lost,
                ));
            }
            ("version" | "ver", []) => {
                let info = self.client()?.info().clone();
                self.say(format!(
                    "STOMP {} with {} (session {}); stomp {}",
                    info.version,
                    info.server.as_deref().unwrap_or("an unnamed broker"),
                    info.session.as_deref().unwrap_or("-"),
                    env!("CARGO_PKG_VERSION")
                ));
            }
            ("sleep", [seconds]) => {
                let seconds: f64 = seconds
                    .parse()
                    .map_err(|_| format!("{seconds:?}: not a number"))?;
                std::thread::sleep(
                    Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())?,
                );
            }
            ("wait", [count]) => {
                let count: u64 = count
                    .parse()
                    .map_err(|_| format!("{count:?}: not a number"))?;
                let deadline = Instant::now() + self.args.timeout;
                while self.arrived.load(Ordering::SeqCst) < count {
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "{} of {count} messages arrived within {:?}",
                            self.arrived.load(Ordering::SeqCst),
                            self.args.timeout
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            (command, _) => {
                return Err(match usage(command) {
                    Some(text) => {
                        let synopsis = text.trim_start().split("  ").next().unwrap_or_default();
                        format!("wrong arguments (usage: {synopsis})")
                    }
                    None => format!("unknown command {command:?} (see help)"),
                });
            }
        }
        Ok(Next::Continue)
    }

    /// Connects to `url` (the flags' when `None`); the session up now, if
    /// any, is closed only once the new one is in, so a failed `connect`
    /// keeps it.
    fn connect(&mut self, url: Option<&str>) -> Result<(), Failure> {
        let url = url.unwrap_or(self.args.url()).to_string();
        let config = self.args.config_for(&url)?;
        let client = self.runtime.block_on(connect(&url, config))?;
        self.close();
        let info = client.info();
        self.say(format!(
            "connected to {} (STOMP {}, {})",
            redact(&url),
            info.version,
            info.server.as_deref().unwrap_or("an unnamed broker")
        ));
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(client.clone());
        self.client = Some(client);
        Ok(())
    }

    fn subscribe(&mut self, destination: &str, ack: AckMode) -> Result<(), String> {
        if self.subscriptions.contains_key(destination) {
            return Err(format!("already subscribed to {destination}"));
        }
        let client = self.client()?.clone();
        let options = SubscribeOptions {
            ack,
            receipt: true,
            ..SubscribeOptions::default()
        };
        let subscription = self
            .runtime
            .block_on(client.subscribe_with(destination, options))
            .map_err(|e| ended(&e))?;
        let id = subscription.id().to_string();
        self.seen(destination);
        let (printer, unanswered, arrived, show_headers) = (
            self.printer.clone(),
            self.unanswered.clone(),
            self.arrived.clone(),
            self.show_headers.clone(),
        );
        let (save_dir, echoes) = (self.save_dir.clone(), self.echoes.clone());
        let task = self.runtime.spawn(async move {
            while let Some(message) = subscription.recv().await {
                let destination = message.destination().unwrap_or("?").to_string();
                let body = shown_body(message.text().as_deref(), message.body());
                let redelivered = message.header("redelivered") == Some("true");
                let tag = message.header(SENDREC).map(String::from);
                let mut line = format!("[{destination}] {body}");
                if redelivered {
                    line += "  (redelivered)";
                }
                let dir = save_dir.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let (Some(dir), Some(name)) = (dir, message.header("filename")) {
                    line += &match save_file(&dir, name, message.body()) {
                        Ok(path) => format!("  (saved to {})", path.display()),
                        Err(e) => format!("  (not saved: {e})"),
                    };
                }
                let mut shown_headers = String::new();
                if show_headers.load(Ordering::SeqCst) {
                    for (name, value) in message.frame().headers.iter() {
                        let (name, value) = (name.escape_debug(), value.escape_debug());
                        shown_headers += &format!("\n    {name}:{value}");
                    }
                }
                if message.ack_handle().is_some() {
                    let id = message.header("message-id").unwrap_or("?").to_string();
                    line += &format!("  (ack {id})");
                    unanswered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_back((id, message));
                }
                printer.print(line + &shown_headers);
                if let Some(tag) = tag {
                    let mut echoes = echoes.lock().unwrap_or_else(|e| e.into_inner());
                    // Bounded: a stranger's tags are forgotten.
                    if echoes.len() >= 1024 {
                        echoes.clear();
                    }
                    echoes.insert(tag);
                }
                arrived.fetch_add(1, Ordering::SeqCst);
            }
        });
        self.subscriptions
            .insert(destination.to_string(), (id.clone(), task));
        self.say(format!("subscribed to {destination} (id {id}, ack {ack})"));
        Ok(())
    }

    fn send(&mut self, destination: &str, body: Bytes) -> Result<(), String> {
        self.send_with(destination, body, Vec::new())
    }

    fn send_with(
        &mut self,
        destination: &str,
        body: Bytes,
        headers: Vec<(String, String)>,
    ) -> Result<(), String> {
        self.seen(destination);
        let client = self.client()?.clone();
        let options = SendOptions {
            headers,
            transaction: self.transaction.as_ref().map(|tx| tx.id().clone()),
            receipt: self.transaction.is_none(),
            ..SendOptions::default()
        };
        self.runtime
            .block_on(client.send_with(destination, body, options))
            .map_err(|e| ended(&e))
    }

    /// Disconnects gracefully, if connected; what was unanswered goes back
    /// to the broker.
    fn close(&mut self) {
        for (_, (_, task)) in self.subscriptions.drain() {
            task.abort();
        }
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if let Some(tx) = self.transaction.take() {
            let _ = self.runtime.block_on(tx.abort());
        }
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.disconnect());
        }
    }
}

/// A body as a line shows it: its text (decoded in the charset its
/// content-type names) with control characters escaped, or, when it is not
/// text, its octets escaped (the first 256).
fn shown_body(text: Option<&str>, body: &[u8]) -> String {
    const SHOWN: usize = 256;
    match text {
        Some(text) => text.escape_debug().to_string(),
        None => {
            let escaped = body[..body.len().min(SHOWN)].escape_ascii().to_string();
            match body.len() > SHOWN {
                true => format!("<{} octets, binary> {escaped}...", body.len()),
                false => format!("<{} octets, binary> {escaped}", body.len()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    #[test]
    fn a_failed_connect_keeps_the_session_that_worked() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let config = stomp_broker::serve::ServeConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            ..Default::default()
        };
        let broker = runtime
            .block_on(stomp_broker::serve::Broker::start(config))
            .unwrap();
        let url = broker.url();
        let flags = Flags::parse_from(["stomp", "--url", &url, "--timeout", "2s"]);
        let said = Arc::new(Mutex::new(Vec::new()));
        let kept = said.clone();
        let printer = Printer(Arc::new(Mutex::new(Box::new(move |text: String| {
            kept.lock().unwrap().push(text);
        }))));
        let mut shell = Shell::new(flags.connect, runtime, printer);
        assert!(shell.connect(None).is_ok());
        shell.execute("subscribe /queue/kept").unwrap();
        let failed = shell.execute("connect stomp://127.0.0.1:1").err().unwrap();
        assert!(
            failed.contains("cannot connect to stomp://127.0.0.1:1"),
            "{failed}"
        );
        let bad = shell.execute("connect foo://x").err().unwrap();
        assert!(bad.contains("unknown scheme"), "{bad}");
        // The first session and its subscription live on.
        shell.execute("send /queue/kept still here").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !said
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.contains("still here"))
        {
            assert!(Instant::now() < deadline, "{:?}", said.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
        shell.close();
    }

    #[test]
    fn tab_completes_commands_then_destinations_seen() {
        let seen: BTreeSet<String> = ["/queue/a", "/queue/b", "/topic/t"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            complete("sen", 3, &seen),
            (
                0,
                vec![
                    "send".into(),
                    "sendfile".into(),
                    "sendrec".into(),
                    "sendreply".into()
                ]
            )
        );
        assert_eq!(
            complete("send /queue/", 12, &seen),
            (5, vec!["/queue/a".into(), "/queue/b".into()])
        );
        assert_eq!(
            complete("send /queue/a hel", 17, &seen).1,
            Vec::<String>::new()
        );
        assert_eq!(complete("stats /q", 8, &seen).1, Vec::<String>::new());
        // Every command the help names completes.
        for line in HELP.lines().skip(1) {
            let synopsis = line.trim_start().split("  ").next().unwrap_or("");
            if line.starts_with("   ") || synopsis.is_empty() {
                continue;
            }
            for name in synopsis
                .split(" | ")
                .filter_map(|a| a.split_whitespace().next())
            {
                if name != "?" {
                    assert!(COMMANDS.contains(&name), "{name} is not completed");
                }
            }
        }
    }

    #[test]
    fn usage_finds_a_commands_lines_by_any_of_its_names() {
        let subscribe = usage("subscribe").unwrap();
        assert!(subscribe.trim_start().starts_with("subscribe DEST [ACK]"));
        assert!(subscribe.contains("client-individual"), "{subscribe}");
        assert_eq!(subscribe.lines().count(), 2);
        let commit = usage("commit").unwrap();
        assert!(commit.trim_start().starts_with("begin | commit | abort"));
        assert!(usage("nack").unwrap().contains("ack [ID] | nack [ID]"));
        assert!(usage("exit").is_some());
        assert_eq!(usage("Commands:"), None);
        assert_eq!(usage("frobnicate"), None);
    }
}
