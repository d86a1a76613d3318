//! The differential conformance suite (`stomp_suite::conformance`): the same
//! raw-frame scenarios against RabbitMQ, ActiveMQ and the embedded broker,
//! one test per broker, and the table in `CONFORMANCE.md` kept current.

use stomp_suite::conformance::{self, Target, TARGETS};
use stomp_suite::support;

fn check(kind: &str) {
    let target: Target = *TARGETS.iter().find(|t| t.kind == kind).unwrap();
    if kind == "embedded" {
        support::embedded();
    }
    if !support::require(kind, target.port) {
        return;
    }
    let wrong = conformance::run_all(target);
    let report = wrong
        .iter()
        .map(|(name, want, got)| format!("  {name}: expected {want:?}, got {got:?}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(wrong.is_empty(), "{kind} answered otherwise:\n{report}");
}

#[test]
fn rabbitmq_answers_as_recorded() {
    check("rabbitmq");
}

#[test]
fn activemq_answers_as_recorded() {
    check("activemq");
}

#[test]
fn embedded_answers_as_recorded() {
    check("embedded");
}

#[test]
fn conformance_md_is_the_current_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/CONFORMANCE.md");
    let file = std::fs::read_to_string(path).unwrap_or_default();
    let table = conformance::table();
    if std::env::var("STOMP_BLESS").is_ok_and(|v| v == "1") {
        let head = file
            .split("<!-- table -->")
            .next()
            .unwrap_or("")
            .to_string();
        std::fs::write(path, format!("{head}<!-- table -->\n{table}")).unwrap();
        return;
    }
    assert!(
        file.ends_with(&format!("<!-- table -->\n{table}")),
        "CONFORMANCE.md is not the current table: run with STOMP_BLESS=1"
    );
}
