//! The chaos scenarios' long form: `rounds` rounds of every scenario with
//! every adapter against `scripts/cluster`'s clusters, then the table of
//! failover times, lost (0), duplicates and unconfirmed sends. Run through
//! `scripts/chaos`, which starts the clusters first.
//!
//! `chaos [--rounds N] [--adapters blocking,tokio,async-std,smol]
//! [--scenarios rabbitmq-kill,...] [--out FILE]`

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;

use stomp_suite::adapters::{AsyncStd, Blocking, Smol, Tokio};
use stomp_suite::chaos::{self, Round, Scenario, SCENARIOS};

fn main() -> ExitCode {
    let mut rounds = 10;
    let mut adapters = vec!["blocking", "tokio", "async-std", "smol"];
    let mut scenarios: Vec<Scenario> = SCENARIOS.to_vec();
    let mut out = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .unwrap_or_else(|| usage(&format!("{flag} wants a value")))
        };
        match flag.as_str() {
            "--rounds" => rounds = value().parse().unwrap_or_else(|_| usage("--rounds N")),
            "--adapters" => {
                let list = value();
                adapters = ["blocking", "tokio", "async-std", "smol"]
                    .into_iter()
                    .filter(|a| list.split(',').any(|w| w == *a))
                    .collect();
            }
            "--scenarios" => {
                let list = value();
                scenarios.retain(|s| list.split(',').any(|w| w == s.key()));
            }
            "--out" => out = Some(value()),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if adapters.is_empty() || scenarios.is_empty() {
        usage("no adapter or no scenario chosen");
    }
    let mut all: Vec<Round> = Vec::new();
    let mut failures = Vec::new();
    for scenario in &scenarios {
        for adapter in &adapters {
            let run = || match *adapter {
                "blocking" => chaos::run::<Blocking>(*scenario, rounds),
                "tokio" => chaos::run::<Tokio>(*scenario, rounds),
                "async-std" => chaos::run::<AsyncStd>(*scenario, rounds),
                _ => chaos::run::<Smol>(*scenario, rounds),
            };
            match catch_unwind(AssertUnwindSafe(run)) {
                Ok(results) => all.extend(results),
                Err(_) => failures.push(format!("{adapter} {scenario}")),
            }
        }
    }
    let mut report = format!(
        "{rounds} rounds per scenario and adapter; a producer at 100 msg/s (persistent, \
         receipted) and a client-individual consumer, heart-beats 1 s both ways.\n\n{}",
        chaos::table(&all)
    );
    if !failures.is_empty() {
        report += &format!("\nFailed (see the log above): {}\n", failures.join("; "));
    }
    println!("{report}");
    if let Some(path) = out {
        if let Err(e) = std::fs::write(&path, &report) {
            eprintln!("chaos: {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(why: &str) -> ! {
    let keys: Vec<String> = SCENARIOS.iter().map(Scenario::key).collect();
    eprintln!(
        "chaos: {why}\nusage: chaos [--rounds N] [--adapters blocking,tokio,async-std,smol] \
         [--scenarios {}] [--out FILE]",
        keys.join(",")
    );
    std::process::exit(4)
}
