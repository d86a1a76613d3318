//! `stomp serve` over TLS: STOMP over TLS and WebSocket over TLS with a
//! certificate of a throw-away CA, client certificates required or
//! optional, and bad TLS files refused at start in one line.

use std::path::PathBuf;
use std::time::Duration;

mod common;

use common::{stomp, url, Killed};
use stomp_tokio::{AckMode, Client, Config, Error, Tls};

/// A CA, a server certificate for 127.0.0.1 and localhost, a client
/// certificate of that CA and one of another CA, written to a fresh
/// directory.
struct Pki {
    dir: PathBuf,
}

/// A CA named `name` and the issuer it makes.
fn ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(params, key))
}

/// A leaf certificate for `names` signed by `issuer`: (certificate, key).
fn leaf(names: &[&str], issuer: &rcgen::Issuer<'static, rcgen::KeyPair>) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("stomp-cli-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca_pem, issuer) = ca("test CA");
        let (server, server_key) = leaf(&["127.0.0.1", "localhost"], &issuer);
        let (client, client_key) = leaf(&["client"], &issuer);
        let (_, other_ca) = ca("another CA");
        let (stranger, stranger_key) = leaf(&["stranger"], &other_ca);
        for (file, pem) in [
            ("ca.pem", ca_pem),
            ("server.pem", server),
            ("server-key.pem", server_key),
            ("client.pem", client),
            ("client-key.pem", client_key),
            ("stranger.pem", stranger),
            ("stranger-key.pem", stranger_key),
        ] {
            std::fs::write(dir.join(file), pem).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(file)).unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `stomp serve` on ephemeral ports with `extra`: the process and the URLs
/// its first line names.
fn serve(extra: &[&str]) -> (Killed, Vec<String>) {
    let mut args = vec!["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"];
    args.extend(extra);
    common::serve(&args)
}

/// [`serve`] with the test PKI's server certificate and `extra`.
fn serve_tls(pki: &Pki, extra: &[&str]) -> (Killed, Vec<String>) {
    let (cert, key) = (pki.path("server.pem"), pki.path("server-key.pem"));
    let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
    args.extend(extra);
    serve(&args)
}

/// A client configuration for `url` trusting the test CA, with the client
/// certificate `cert` (a file stem) if given.
fn config(pki: &Pki, url: &str, cert: Option<&str>) -> Config {
    let mut config = Config::from_url(url).unwrap();
    config.session.connect_timeout = Duration::from_secs(5);
    config.tls = Tls::default().with_ca_pem(pki.read("ca.pem"));
    if let Some(stem) = cert {
        config.tls = config.tls.with_client_cert_pem(
            pki.read(&format!("{stem}.pem")),
            pki.read(&format!("{stem}-key.pem")),
        );
    }
    config
}

/// Sends over `producer` and receives over `consumer`.
async fn round_trip(producer: Config, consumer: Config, queue: &str) {
    let consumer = Client::connect_with(consumer).await.unwrap();
    let sub = consumer.subscribe(queue, AckMode::Auto).await.unwrap();
    let producer = Client::connect_with(producer).await.unwrap();
    producer.send_with_receipt(queue, "over tls").await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.body().as_ref(), b"over tls");
    producer.disconnect().await.unwrap();
    consumer.disconnect().await.unwrap();
}

/// The root of a failed connect, as text.
fn refusal(result: Result<Client, Error>) -> String {
    match result {
        Err(Error::Connect(reason)) => reason.root().to_string(),
        Err(other) => panic!("expected a refused connect, got {other:?}"),
        Ok(_) => panic!("connected without an acceptable client certificate"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn stomp_over_tls_and_wss_carry_messages() {
    let pki = Pki::new("plain");
    let (_broker, urls) = serve_tls(&pki, &["--wss", "127.0.0.1:0"]);
    let tls = url(&urls, "stomp+ssl://").to_string();
    let wss = url(&urls, "wss://").replace("127.0.0.1", "localhost");
    runtime().block_on(round_trip(
        config(&pki, &tls, None),
        config(&pki, &wss, None),
        "/queue/tls-plain",
    ));

    // The `stomp` tool, trusting the CA with --ca.
    let ca = pki.path("ca.pem");
    let sent = stomp(
        &[
            "send",
            "--url",
            &tls,
            "--ca",
            &ca,
            "--receipt",
            "/queue/tls-cli",
            "from the tool",
        ],
        b"",
        &[],
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );

    // A client that does not trust the CA is refused by its own side.
    let untrusted = Config::from_url(&tls).unwrap();
    let error = runtime().block_on(async { refusal(Client::connect_with(untrusted).await) });
    assert!(error.contains("UnknownIssuer"), "{error}");
}

/// `stomp serve` over TLS checking client certificates against the test
/// CA (`extra`: `--client-cert-optional` or nothing): its `stomp+ssl://` URL.
fn serve_checking_clients(pki: &Pki, extra: &[&str]) -> (Killed, String) {
    let ca = pki.path("ca.pem");
    let mut args = vec!["--client-ca", &ca];
    args.extend(extra);
    let (broker, urls) = serve_tls(pki, &args);
    let tls = url(&urls, "stomp+ssl://").to_string();
    (broker, tls)
}

/// What connecting to `tls` with the client certificate `cert` (a file
/// stem, or none) comes to: the root of the refusal.
fn refused(rt: &tokio::runtime::Runtime, pki: &Pki, tls: &str, cert: Option<&str>) -> String {
    rt.block_on(async { refusal(Client::connect_with(config(pki, tls, cert)).await) })
}

#[test]
fn client_certificates_required_with_client_ca() {
    let pki = Pki::new("required");
    let (_broker, tls) = serve_checking_clients(&pki, &[]);
    let rt = runtime();
    rt.block_on(round_trip(
        config(&pki, &tls, Some("client")),
        config(&pki, &tls, Some("client")),
        "/queue/tls-required",
    ));
    // Under TLS 1.3 the refusal comes once our side has finished.
    let error = refused(&rt, &pki, &tls, None);
    assert!(error.contains("CertificateRequired"), "{error}");
    let error = refused(&rt, &pki, &tls, Some("stranger"));
    assert!(error.contains("UnknownCA"), "{error}");

    // The `stomp` tool presents one with --cert and --key.
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client-key.pem"),
    );
    let send = |extra: &[&str]| {
        let mut args = vec!["send", "--url", &tls, "--ca", &ca, "--receipt"];
        args.extend(extra);
        args.extend(["/queue/tls-cli-cert", "with a certificate"]);
        stomp(&args, b"", &[])
    };
    let sent = send(&["--cert", &cert, "--key", &key]);
    let said = String::from_utf8_lossy(&sent.stderr).into_owned();
    assert!(sent.status.success(), "{said}");
    // Without one, the broker refuses: a remote failure (5).
    let bare = send(&[]);
    let said = String::from_utf8_lossy(&bare.stderr).into_owned();
    assert_eq!(bare.status.code(), Some(5), "{said}");
    assert!(said.contains("CertificateRequired"), "{said}");
    // --cert without --key, and a key that is no PEM, are usage errors (4).
    let half = send(&["--cert", &cert]);
    assert_eq!(
        half.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&half.stderr)
    );
    let garbage = send(&["--cert", &cert, "--key", &ca]);
    let said = String::from_utf8_lossy(&garbage.stderr).into_owned();
    assert_eq!(garbage.status.code(), Some(4), "{said}");
}

#[test]
fn client_certificates_optional_are_still_checked() {
    let pki = Pki::new("optional");
    let (_broker, tls) = serve_checking_clients(&pki, &["--client-cert-optional"]);
    let rt = runtime();
    rt.block_on(round_trip(
        config(&pki, &tls, None),
        config(&pki, &tls, Some("client")),
        "/queue/tls-optional",
    ));
    let error = refused(&rt, &pki, &tls, Some("stranger"));
    assert!(error.contains("UnknownCA"), "{error}");
}

#[test]
fn a_tls_handshake_never_begun_is_closed_at_the_handshake_timeout() {
    let pki = Pki::new("silent");
    let (_broker, urls) = serve_tls(&pki, &["--handshake-timeout", "300ms"]);
    let addr = url(&urls, "stomp+ssl://")
        .trim_start_matches("stomp+ssl://")
        .to_string();
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0; 16];
    let n = std::io::Read::read(&mut socket, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the broker wrote to a client that never began TLS");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "closed only after {waited:?}"
    );
}

#[test]
fn bad_tls_files_are_refused_in_one_line() {
    let pki = Pki::new("bad");
    let (cert, ca) = (pki.path("server.pem"), pki.path("ca.pem"));
    for (args, wanted) in [
        (vec!["--tls-cert", &cert, "--tls-key", &ca], "TLS key"),
        (
            vec!["--tls-cert", &ca, "--tls-key", "/nonexistent.pem"],
            "--tls-key /nonexistent.pem",
        ),
        (vec!["--tls-cert", &cert], "--tls-key"),
        (vec!["--wss", "127.0.0.1:0"], "--tls-cert"),
    ] {
        let mut all = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
        ];
        all.extend(args);
        let output = stomp(&all, b"", &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{all:?} started");
        assert!(stderr.contains(wanted), "{all:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
