//! The client sub-commands (`send`, `subscribe`, `bench`) run as a script
//! would, against `stomp serve` and the scripted fault peer.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{stomp, Killed, STOMP};
use stomp_broker::fault::{Behaviour, FaultPeer};
use stomp_proto::server::ServerConfig;
use stomp_proto::HeartBeat;

/// `stomp serve` with a TCP and a WebSocket listener on ephemeral ports,
/// guest/guest only: (the process, its stomp:// and ws:// URLs).
fn serve() -> (Killed, String, String) {
    serve_with(&[])
}

/// [`serve`] with `extra` arguments.
fn serve_with(extra: &[&str]) -> (Killed, String, String) {
    let mut args = vec!["--listen", "127.0.0.1:0", "--ws", "127.0.0.1:0"];
    args.extend(["--user", "guest:guest"]);
    args.extend(extra);
    let (child, urls) = common::serve(&args);
    let (tcp, ws) = (common::url(&urls, "stomp://"), common::url(&urls, "ws://"));
    (child, tcp.to_string(), ws.to_string())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A user error: one line on stderr, no backtrace.
fn assert_one_line(output: &Output, code: i32, wanted: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(wanted), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn send_and_subscribe_round_trip_through_stomp_serve_and_compose_with_decode() {
    let (_broker, tcp, ws) = serve();
    let authed = tcp.replace("stomp://", "stomp://guest:guest@");
    let sent = stomp(
        &[
            "send",
            "--url",
            &authed,
            "/queue/cli",
            "hello",
            "-H",
            "x-k:v",
        ],
        b"",
        &[],
    );
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let sent = stomp(
        &[
            "send",
            "--url",
            &authed,
            "/queue/cli",
            "--count",
            "2",
            "--receipt",
        ],
        b"",
        &[],
    );
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    assert!(text(&sent.stderr).contains("2 messages to /queue/cli"));

    // Over WebSocket, the login from the environment, one JSON line each.
    let got = stomp(
        &[
            "subscribe",
            "--url",
            &ws,
            "/queue/cli",
            "--json",
            "--count",
            "3",
        ],
        b"",
        &[("STOMP_LOGIN", "guest"), ("STOMP_PASSCODE", "guest")],
    );
    assert!(got.status.success(), "{}", text(&got.stderr));
    let lines: Vec<serde_json::Value> = text(&got.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", text(&got.stdout));
    assert_eq!(lines[0]["command"], "MESSAGE");
    assert_eq!(lines[0]["body"], "hello");
    let headers = lines[0]["headers"].as_array().unwrap();
    assert!(
        headers.contains(&serde_json::json!(["x-k", "v"])),
        "{headers:?}"
    );
    assert_eq!(lines[1]["body"], "");

    // `stomp decode`'s format: encode and decode give the lines back.
    let encoded = stomp(&["encode"], &got.stdout, &[]);
    assert!(encoded.status.success(), "{}", text(&encoded.stderr));
    let decoded = stomp(&["decode"], &encoded.stdout, &[]);
    assert_eq!(text(&decoded.stdout), text(&got.stdout));
}

#[test]
fn send_takes_its_body_from_stdin_or_a_file_and_can_use_a_transaction() {
    let (_broker, tcp, _) = serve();
    let login = ["--login", "guest", "--passcode", "guest", "--url", &tcp];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&login).map(|a| a.to_string()).collect()
    };
    let piped = stomp(&with(&["send", "/queue/bodies", "-"]), b"from stdin", &[]);
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    let file = std::env::temp_dir().join(format!("stomp-cli-body-{}", std::process::id()));
    std::fs::write(&file, b"from a file").unwrap();
    let path = file.to_str().unwrap();
    let filed = stomp(&with(&["send", "/queue/bodies", "--file", path]), b"", &[]);
    std::fs::remove_file(&file).unwrap();
    assert!(filed.status.success(), "{}", text(&filed.stderr));
    let args = with(&[
        "send",
        "/queue/bodies",
        "in tx",
        "--transaction",
        "--count",
        "2",
    ]);
    let tx = stomp(&args, b"", &[]);
    assert!(tx.status.success(), "{}", text(&tx.stderr));

    let args = with(&["subscribe", "/queue/bodies", "--count", "4"]);
    let got = stomp(&args, b"", &[]);
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert_eq!(text(&got.stdout), "from stdin\nfrom a file\nin tx\nin tx\n");
}

#[test]
fn client_acked_messages_left_unprinted_are_not_lost() {
    let (_broker, tcp, _) = serve();
    let login = ["--login", "guest", "--passcode", "guest", "--url", &tcp];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&login).map(|a| a.to_string()).collect()
    };
    let sent = stomp(
        &with(&["send", "/queue/kept", "m", "--count", "3"]),
        b"",
        &[],
    );
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    // Takes one in client-individual mode: the other two go back.
    let args = with(&[
        "subscribe",
        "/queue/kept",
        "--ack",
        "client-individual",
        "--count",
        "1",
    ]);
    let one = stomp(&args, b"", &[]);
    assert!(one.status.success(), "{}", text(&one.stderr));
    let args = with(&["subscribe", "/queue/kept", "--json", "--count", "2"]);
    let rest = stomp(&args, b"", &[]);
    assert!(rest.status.success(), "{}", text(&rest.stderr));
    assert_eq!(text(&rest.stdout).lines().count(), 2);
    assert!(
        text(&rest.stdout).contains(r#"["redelivered","true"]"#),
        "{}",
        text(&rest.stdout)
    );
}

#[test]
fn ctrl_c_and_sigterm_end_a_subscription_with_a_graceful_disconnect() {
    for signal in ["-INT", "-TERM"] {
        graceful_end_on(signal);
    }
}

fn graceful_end_on(signal: &str) {
    graceful_end_of(signal, &["subscribe", "/queue/idle"], "");
}

/// `stomp ARGS -v`, fed `script` on a standard input left open, ends
/// gracefully on `signal` once it has subscribed.
fn graceful_end_of(signal: &str, args: &[&str], script: &str) {
    let (_broker, tcp, _) = serve();
    let mut child = Command::new(STOMP)
        .args(args)
        .args(["-v", "--url", &tcp])
        .args(["--login", "guest", "--passcode", "guest"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let pid = child.id().to_string();
    let child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let line = log.next().unwrap().unwrap();
        let subscribed = line.starts_with("> SUBSCRIBE");
        seen.push(line);
        if subscribed {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.starts_with("< CONNECTED")),
        "{seen:?}"
    );
    let status = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(status.success());
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    let mut child = child;
    let status = child.0.wait().unwrap();
    drop(stdin);
    assert!(status.success(), "{signal}: {rest:?}");
    assert!(
        rest.iter().any(|l| l.starts_with("> DISCONNECT")),
        "{rest:?}"
    );
    assert!(rest.iter().any(|l| l.starts_with("< RECEIPT")), "{rest:?}");
}

#[test]
fn the_shell_ends_gracefully_on_sigterm_and_ctrl_c() {
    for signal in ["-TERM", "-INT"] {
        graceful_end_of(signal, &["shell"], "subscribe /queue/shell-idle\n");
    }
}

#[test]
fn the_shell_escapes_binary_bodies_shows_headers_and_reports_a_refused_ack() {
    let (_broker, tcp, _) = serve();
    let url = tcp.replace("stomp://", "stomp://guest:guest@");
    let dir = std::env::temp_dir().join(format!("stomp-shell-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bin.dat");
    std::fs::write(&file, b"\x00\x01bin\xff").unwrap();
    let script = format!(
        "headers on\nsubscribe /queue/shell-bin client-individual\n\
         sendfile /queue/shell-bin {}\nsend /queue/shell-bin tab\there\n\
         sendreply /queue/shell-bin corr-7 the answer\nwait 3\nver\nbegin\nrollback\n\
         unsubscribe /queue/shell-bin\nack\nack\n",
        file.display()
    );
    let output = stomp(&["shell", "--url", &url], script.as_bytes(), &[]);
    let out = text(&output.stdout);
    assert!(
        out.contains("[/queue/shell-bin] <6 octets, binary> \\x00\\x01bin\\xff  (ack "),
        "{out}"
    );
    assert!(
        out.contains("[/queue/shell-bin] tab\\there  (ack "),
        "{out}"
    );
    assert!(out.contains("\n    destination:/queue/shell-bin"), "{out}");
    assert!(out.contains("\n    content-length:6"), "{out}");
    assert!(
        out.contains("[/queue/shell-bin] the answer  (ack "),
        "{out}"
    );
    assert!(out.contains("\n    correlation-id:corr-7"), "{out}");
    assert!(out.contains("\nSTOMP 1.2 with stomp-rs/"), "ver: {out}");
    assert!(out.contains(" aborted"), "rollback: {out}");
    // The subscription is gone: the broker refuses the ACK, and the shell
    // says so instead of "acked".
    assert!(!out.contains("acked"), "{out}");
    assert_one_line(&output, 5, "no message to acknowledge");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verbose_logs_read_as_text() {
    let (_broker, tcp, _) = serve();
    let url = format!(
        "failover:(stomp://127.0.0.1:1,{})?randomize=false",
        tcp.replace("stomp://", "stomp://guest:guest@")
    );
    let output = stomp(
        &["send", "/queue/verbose", "hi", "-v", "--url", &url],
        b"",
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let log = text(&output.stderr);
    let events: Vec<&str> = log.lines().filter(|l| l.starts_with("STOMP ")).collect();
    assert!(
        events.iter().any(|l| l.starts_with("STOMP dial failed")),
        "{log}"
    );
    assert!(
        events.iter().any(|l| l.starts_with("STOMP connected")),
        "{log}"
    );
    for line in events {
        for debug in ["Some(", "None", "Endpoint(", "\""] {
            assert!(!line.contains(debug), "{debug:?} in {line:?}");
        }
        assert!(!line.contains("guest:guest"), "a passcode in {line:?}");
    }
}

#[test]
fn an_error_from_the_broker_exits_5_with_its_message() {
    let peer = FaultPeer::start(vec![Behaviour::Write {
        bytes: b"ERROR\nmessage:queue quota exceeded\n\nno room\0".to_vec(),
        close: true,
    }])
    .unwrap();
    let output = stomp(&["subscribe", "/queue/x", "--url", &peer.url()], b"", &[]);
    assert_one_line(
        &output,
        5,
        "the broker sent an ERROR: queue quota exceeded (no room)",
    );
}

#[test]
fn a_silent_broker_exits_5_with_a_heartbeat_timeout() {
    let config = ServerConfig {
        heartbeat: HeartBeat::new(100, 100),
        ..ServerConfig::default()
    };
    let peer = FaultPeer::start_with(
        config,
        vec![Behaviour::StallAfter(Duration::from_millis(300))],
    )
    .unwrap();
    let url = peer.url();
    let args = [
        "subscribe",
        "/queue/x",
        "--url",
        &url,
        "--heart-beat",
        "100,100",
    ];
    let output = stomp(&args, b"", &[]);
    assert_one_line(&output, 5, "heart-beat timeout");
}

#[test]
fn mistakes_a_user_can_make_give_one_line_and_a_non_zero_exit() {
    let refused = stomp(
        &["send", "/queue/x", "hi", "--url", "stomp://127.0.0.1:1"],
        b"",
        &[],
    );
    assert_one_line(&refused, 5, "cannot connect to stomp://127.0.0.1:1");
    let bad_url = stomp(&["send", "/queue/x", "--url", "htp://host"], b"", &[]);
    assert_one_line(&bad_url, 4, "unknown scheme");
    let shell = stomp(&["shell", "--url", "foo://x"], b"", &[]);
    assert_one_line(&shell, 4, "unknown scheme");
    // Refused before connecting: the dead port would have been a 5.
    for command in ["send", "subscribe"] {
        let empty = stomp(&[command, "", "--url", "stomp://127.0.0.1:1"], b"", &[]);
        assert_one_line(&empty, 4, "the destination is empty");
    }
    let empty = stomp(
        &["bench", "--destination", "", "--url", "stomp://127.0.0.1:1"],
        b"",
        &[],
    );
    assert_one_line(&empty, 4, "the destination is empty");
    let (_broker, tcp, _) = serve();
    let wrong = tcp.replace("stomp://", "stomp://guest:wrong@");
    let login = stomp(&["subscribe", "/queue/x", "--url", &wrong], b"", &[]);
    assert_one_line(&login, 5, "stomp://guest:***@");
    assert!(text(&login.stderr).contains("Bad CONNECT"));
    let header = stomp(
        &["send", "/queue/x", "-H", "nocolon", "--url", &tcp],
        b"",
        &[],
    );
    assert_one_line(&header, 4, "NAME:VALUE");
    let flag = stomp(&["send", "--bogus"], b"", &[]);
    assert_eq!(flag.status.code(), Some(4));
    assert!(text(&flag.stderr).contains("--bogus"));
}

#[test]
fn bench_runs_the_embedded_broker_in_process_over_tcp_and_websocket() {
    for transport in ["tcp", "ws"] {
        let args = [
            "bench",
            "--count",
            "2000",
            "--json",
            "--transport",
            transport,
        ];
        let output = stomp(&args, b"", &[]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["broker"], "embedded");
        assert_eq!(report["transport"], transport);
        assert_eq!(report["sent"], 2000);
        assert_eq!(report["received"], 2000);
        assert!(report["received_per_second"].as_f64().unwrap() > 0.0);
        let latency = &report["latency_ms"];
        assert!(latency["p50"].as_f64().unwrap() > 0.0, "{latency}");
        assert!(
            latency["p50"].as_f64() <= latency["p99"].as_f64(),
            "{latency}"
        );
        assert!(
            latency["p99"].as_f64() <= latency["max"].as_f64(),
            "{latency}"
        );
    }
}

#[test]
fn bench_on_a_topic_gives_every_consumer_every_message_and_prints_a_table() {
    let args = [
        "bench",
        "--count",
        "1000",
        "--producers",
        "2",
        "--consumers",
        "3",
        "--destination",
        "/topic/bench",
        "--ack",
        "client",
    ];
    let output = stomp(&args, b"", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    assert!(
        table.contains("2 producers -> 3 consumers on /topic/bench"),
        "{table}"
    );
    let row = |name: &str| -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in {table}"));
        line.split_whitespace().map(String::from).collect()
    };
    assert_eq!(row("sent")[1], "1000", "{table}");
    assert_eq!(row("received")[1], "3000", "{table}");
    assert!(row("latency").contains(&"p99".to_string()), "{table}");
}

#[test]
fn shell_script_runs_every_command_and_stops_at_the_first_failure() {
    let (_broker, tcp, _) = serve();
    let script = "\
# comments and blank lines are skipped

version
subscribe /queue/script --ack client-individual
send /queue/script first
wait 1
ack
begin
send /queue/script in a transaction
sleep 0.2
commit
wait 2
nack
wait 3
ack
stats
unsubscribe /queue/script
frobnicate
send /queue/script never
";
    let args = [
        "shell",
        "--url",
        &tcp,
        "--login",
        "guest",
        "--passcode",
        "guest",
    ];
    let output = stomp(&args, script.as_bytes(), &[]);
    let out = text(&output.stdout);
    assert_one_line(&output, 5, "frobnicate: unknown command");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("connected to stomp://"), "{out}");
    assert!(lines[1].starts_with("STOMP 1.2 with stomp-rs/"), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[/queue/script] first  (ack ")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("transaction ") && l.ends_with(" committed")),
        "{out}"
    );
    // NACKed, it comes back marked.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[/queue/script] in a transaction  (redelivered)")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("frames out: CONNECT 1, SEND 2")),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.contains("acks 2, nacks 1")), "{out}");
    assert!(out.contains("unsubscribed from /queue/script"), "{out}");
    assert!(!out.contains("never"), "{out}");

    // A known command with the wrong arguments says how to call it.
    let output = stomp(&args, b"help commit\nsubscribe\n", &[]);
    assert!(
        text(&output.stdout).contains("begin | commit | abort"),
        "{}",
        text(&output.stdout)
    );
    assert_one_line(
        &output,
        5,
        "subscribe: wrong arguments (usage: subscribe DEST [ACK])",
    );
}

/// A private tmux server, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("stomp-cli-test-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux (installed by scripts/deps)")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "shell"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    fn screen(&self) -> String {
        text(&self.run(&["capture-pane", "-p", "-t", "shell"]).stdout)
    }

    /// Waits up to 10 s for the screen to satisfy `want`; gives the screen.
    fn wait(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.screen();
            if want(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on the screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "shell"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The last non-empty line of a screen.
fn prompt_line(screen: &str) -> &str {
    screen.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("")
}

#[test]
fn shell_in_a_terminal_prints_arrivals_above_the_prompt_and_keeps_history() {
    let (_broker, tcp, _) = serve();
    let authed = tcp.replace("stomp://", "stomp://guest:guest@");
    let home = std::env::temp_dir().join(format!("stomp-shell-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let tmux = Tmux::new();
    let command = format!("env HOME={} {STOMP} shell --url {authed}", home.display());
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "shell",
        "-x",
        "100",
        "-y",
        "30",
        &command,
    ]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    tmux.wait("prompt", |s| prompt_line(s) == "stomp>");
    assert!(tmux.screen().contains("connected to stomp://guest:***@"));

    tmux.keys(&["subscribe /queue/tmux client-individual", "Enter"]);
    tmux.wait("subscription", |s| s.contains("subscribed to /queue/tmux"));

    // Half a command typed, a message arrives: printed above the prompt,
    // the typing kept.
    tmux.keys(&["send /queue/tmux typ"]);
    tmux.wait("typing", |s| {
        prompt_line(s) == "stomp> send /queue/tmux typ"
    });
    let sent = stomp(
        &["send", "--url", &authed, "/queue/tmux", "from outside"],
        b"",
        &[],
    );
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let screen = tmux.wait("arrival", |s| s.contains("[/queue/tmux] from outside"));
    assert_eq!(
        prompt_line(&screen),
        "stomp> send /queue/tmux typ",
        "{screen}"
    );

    tmux.keys(&["ed here", "Enter"]);
    tmux.wait("own message", |s| s.contains("[/queue/tmux] typed here"));
    tmux.keys(&["ack", "Enter"]);
    tmux.keys(&["ack", "Enter"]);
    tmux.wait("two acks", |s| s.matches("acked m-").count() == 2);

    // History: Up brings the last line back.
    tmux.keys(&["Up"]);
    tmux.wait("recalled line", |s| prompt_line(s) == "stomp> ack");
    // Tab completes commands, then destinations seen.
    tmux.keys(&["C-u", "unsubs", "Tab"]);
    tmux.wait("completed command", |s| {
        prompt_line(s) == "stomp> unsubscribe"
    });
    tmux.keys(&[" /queue/t", "Tab"]);
    tmux.wait("completed destination", |s| {
        prompt_line(s) == "stomp> unsubscribe /queue/tmux"
    });
    tmux.keys(&["C-u", "stats", "Enter"]);
    let screen = tmux.wait("stats", |s| s.contains("acks 2, nacks 0"));
    eprintln!("--- the shell in tmux ---\n{}", screen.trim_end());

    tmux.keys(&["quit", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.alive() {
        assert!(Instant::now() < deadline, "the shell did not quit");
        thread::sleep(Duration::from_millis(50));
    }
    let history = std::fs::read_to_string(home.join(".stomp_history")).unwrap_or_default();
    std::fs::remove_dir_all(&home).unwrap();
    assert!(
        history.contains("subscribe /queue/tmux client-individual"),
        "{history}"
    );
}

#[test]
fn serve_runs_a_broker_that_checks_logins_and_delivers() {
    use std::io::Read;
    use std::net::TcpStream;

    let (broker, tcp, _) = serve();
    let addr = tcp.trim_start_matches("stomp://").to_string();

    let session = |login: &str, frames: &[u8]| -> Vec<u8> {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let connect =
            format!("CONNECT\naccept-version:1.2\nhost:/\nlogin:{login}\npasscode:guest\n\n\0");
        stream.write_all(connect.as_bytes()).unwrap();
        stream.write_all(frames).unwrap();
        let mut received = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0; 4096];
        while Instant::now() < deadline {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
            if received
                .windows(18)
                .any(|w| w == b"receipt-id:bye\n\n\0".get(..18).unwrap_or(w))
            {
                break;
            }
        }
        received
    };

    // A stranger is refused.
    let refused = String::from_utf8_lossy(&session("mallory", b"")).into_owned();
    assert!(refused.starts_with("ERROR\n"), "{refused}");
    assert!(refused.contains("message:Bad CONNECT"), "{refused}");

    // guest sends to a queue, subscribes, and gets it back.
    let frames = b"SEND\ndestination:/queue/cli\n\nhello\0\
        SUBSCRIBE\nid:0\ndestination:/queue/cli\n\n\0\
        DISCONNECT\nreceipt:bye\n\n\0";
    let got = String::from_utf8_lossy(&session("guest", frames)).into_owned();
    assert!(got.starts_with("CONNECTED\n"), "{got}");
    assert!(
        got.contains("MESSAGE\n") && got.contains("\n\nhello\0"),
        "{got}"
    );
    assert!(got.contains("RECEIPT\nreceipt-id:bye\n"), "{got}");
    drop(broker);
}

#[test]
fn a_frame_too_large_for_a_datagram_is_a_local_error() {
    let port = 48_000 + (std::process::id() % 1000) as u16;
    let url = format!("udp://239.255.77.79:{port}?interface=127.0.0.1&ttl=0");
    let body = vec![b'x'; 100_000];
    let output = stomp(&["send", "--url", &url, "/topic/big", "-"], &body, &[]);
    assert_one_line(&output, 4, "the transport carries at most");
}

#[test]
fn multicast_members_in_separate_processes_talk_without_a_broker() {
    let port = 47_000 + (std::process::id() % 1000) as u16;
    let url = format!("udp://239.255.77.78:{port}?interface=127.0.0.1&ttl=0");
    let mut child = Command::new(STOMP)
        .args(["subscribe", "/topic/lan/>", "--json", "--count", "3", "-v"])
        .args(["--url", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let stdout = child.stdout.take().unwrap();
    let mut child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the subscriber never subscribed");
        let line = log.next().unwrap().unwrap();
        if line.starts_with("> SUBSCRIBE") {
            break;
        }
    }
    thread::spawn(move || log.for_each(drop));
    // Its member has the subscription once the frame is handed over.
    thread::sleep(Duration::from_millis(200));
    let args = [
        "send",
        "/topic/lan/a",
        "hello",
        "--count",
        "3",
        "--url",
        &url,
    ];
    let sent = stomp(&args, b"", &[]);
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let status = child.0.wait().unwrap();
    assert!(status.success());
    let lines: Vec<serde_json::Value> = BufReader::new(stdout)
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(line["body"], "hello");
        let headers = line["headers"].as_array().unwrap();
        assert!(headers.contains(&serde_json::json!(["destination", "/topic/lan/a"])));
    }
}

#[test]
fn a_host_list_with_a_dead_host_in_front_connects_in_every_form() {
    let (_broker, tcp, ws) = serve();
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let tcp = tcp.replace("stomp://", "stomp://guest:guest@");
    let ws = ws.replace("ws://", "ws://guest:guest@");
    let front = format!("stomp://127.0.0.1:{dead}");
    let lists = [
        format!("{front},{tcp}"),
        format!("failover:({front},{tcp})?randomize=false"),
        format!("failover:({front},{tcp})"),
        format!("ws://127.0.0.1:{dead}/stomp,{ws}"),
    ];
    for (i, url) in lists.iter().enumerate() {
        let start = Instant::now();
        let sent = stomp(
            &[
                "send",
                "--timeout",
                "3s",
                "--url",
                url,
                "--receipt",
                "/queue/fo",
                &format!("m{i}"),
            ],
            b"",
            &[],
        );
        assert!(sent.status.success(), "{url}: {}", text(&sent.stderr));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{url}: {:?}",
            start.elapsed()
        );
    }
    let got = stomp(
        &["subscribe", "--url", &lists[0], "/queue/fo", "--count", "4"],
        b"",
        &[],
    );
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert_eq!(
        text(&got.stdout).lines().collect::<Vec<_>>(),
        ["m0", "m1", "m2", "m3"]
    );

    // Every host dead: one line that says so, with why the last one failed.
    let dead_only = format!("{front},stomp://127.0.0.1:{dead}");
    let output = stomp(&["send", "--url", &dead_only, "/queue/fo", "x"], b"", &[]);
    assert_one_line(&output, 5, "no host could be reached");
    assert!(
        text(&output.stderr).contains("refused"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn serve_closes_a_connection_that_never_sends_connect_after_the_handshake_timeout() {
    use std::io::Read;
    let (_broker, url, _) = serve_with(&["--handshake-timeout", "1s"]);
    let addr = url.trim_start_matches("stomp://").trim_end_matches('/');
    // Silent: closed after the timeout, not before.
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0; 64];
    let n = silent.read(&mut buf).unwrap_or(0);
    let took = start.elapsed();
    assert_eq!(n, 0, "closed without a word: {:?}", &buf[..n]);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    // A client that connects at once is unaffected, and stays past it.
    let url = url.replace("stomp://", "stomp://guest:guest@");
    let sent = stomp(
        &["send", "--url", &url, "--receipt", "/queue/hs", "fine"],
        b"",
        &[],
    );
    assert!(sent.status.success(), "{}", text(&sent.stderr));
}

#[test]
fn bind_and_keepalive_flags_shape_the_socket() {
    let (_broker, tcp, _ws) = serve();
    let authed = tcp.replace("stomp://", "stomp://guest:guest@");
    let send = |extra: &[&str]| {
        let mut args = vec!["send", "--url", &authed, "--receipt"];
        args.extend(extra);
        args.extend(["/queue/cli-bind", "from 127.0.0.2"]);
        stomp(&args, b"", &[])
    };
    let sent = send(&["--bind", "127.0.0.2:0", "--keepalive", "30s"]);
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    // (That the socket is bound and probes is checked in the kernel's
    // socket table by the suite.) A local address that cannot reach the broker: a failed connect (5).
    let unreachable = send(&["--bind", "[::1]:0"]);
    assert_one_line(&unreachable, 5, "cannot connect");
    for bad in [["--bind", "nowhere"], ["--keepalive", "soon"]] {
        let refused = send(&bad);
        assert_eq!(refused.status.code(), Some(4), "{}", text(&refused.stderr));
        assert!(text(&refused.stderr).contains(bad[0]));
    }
}

#[test]
fn shell_sendrec_run_sendfile_and_save_work_as_stomp_py_users_expect() {
    let (_broker, tcp, _) = serve();
    let dir = std::env::temp_dir().join(format!("stomp-shell-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let saved = dir.join("saved");
    std::fs::create_dir_all(&saved).unwrap();
    let report = dir.join("report.bin");
    std::fs::write(&report, b"\x00binary\xffreport").unwrap();
    let headers = dir.join("headers.txt");
    std::fs::write(
        &headers,
        "# sent with the file\nx-kind:report\n\npriority:4\n",
    )
    .unwrap();
    // Saved once already: the second copy does not overwrite it.
    std::fs::write(saved.join("report.bin"), b"older").unwrap();
    let inner = dir.join("inner.stomp");
    std::fs::write(&inner, "send /queue/files from run\nwait 2\n").unwrap();
    let script = format!(
        "subscribe /queue/files\nheaders on\nsave {saved}\nsendrec /queue/files ping\n\
         run {inner}\nsendfile /queue/files {report} {headers}\nwait 3\nsendrec /queue/nobody lost\n",
        saved = saved.display(),
        inner = inner.display(),
        report = report.display(),
        headers = headers.display(),
    );
    let args = [
        "shell",
        "--url",
        &tcp,
        "--login",
        "guest",
        "--passcode",
        "guest",
        "--timeout",
        "1s",
    ];
    let output = stomp(&args, script.as_bytes(), &[]);
    let out = text(&output.stdout);
    // The last sendrec has no subscription to come back on: it fails.
    assert_one_line(&output, 5, "not received back within 1s");
    assert!(
        out.contains("sent to /queue/files and received back in "),
        "{out}"
    );
    assert!(out.contains("[/queue/files] from run"), "{out}");
    assert!(out.contains("    filename:report.bin"), "{out}");
    assert!(out.contains("    x-kind:report"), "{out}");
    let copy = saved.join("report.bin.1");
    assert!(
        out.contains(&format!("(saved to {})", copy.display())),
        "{out}"
    );
    assert_eq!(std::fs::read(&copy).unwrap(), b"\x00binary\xffreport");
    assert_eq!(std::fs::read(saved.join("report.bin")).unwrap(), b"older");

    // A failing line of a run file is named by its file and line.
    std::fs::write(&inner, "version\nfrobnicate\n").unwrap();
    let output = stomp(&args, format!("run {}\n", inner.display()).as_bytes(), &[]);
    assert_one_line(
        &output,
        5,
        &format!("{}:2: frobnicate: unknown command", inner.display()),
    );
    // One that runs itself stops at a depth.
    std::fs::write(&inner, format!("run {}\n", inner.display())).unwrap();
    let output = stomp(&args, format!("run {}\n", inner.display()).as_bytes(), &[]);
    assert!(
        text(&output.stderr).contains("run nests deeper than 8"),
        "{}",
        text(&output.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_stops_on_sigterm_and_reports_what_it_measured() {
    let child = Command::new(STOMP)
        .args(["bench", "--duration", "60s", "--rate", "400", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let sent = report["sent"].as_u64().unwrap();
    // About 1.5 s at 400 a second, and not the minute asked for.
    assert!((100..4000).contains(&sent), "{report}");
    assert_eq!(report["received"].as_u64(), Some(sent), "{report}");
}
