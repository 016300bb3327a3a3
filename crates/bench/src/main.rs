//! `pms-bench`: writes the requests of one benchmark measurement, one per line, for the load
//! generator (`wrk` with scripts/bench.lua) that `scripts/bench.sh` runs against pms.
//!
//! - `read`: `/api/patients/{id}` for ids from `--ids-file`;
//! - `exact`: `/api/patients?name=<family>&limit=20`, family names spread as `--names`;
//! - `mixed`: the same with the front desk's mixed queries, a quarter each exact family name,
//!   three-letter prefix, one typo, and "given family" (`patients::sample::name_query`);
//! - `audit`: `/api/audit-events?patientId={id}&limit=50`, the trail of a random patient from
//!   `--ids-file` (who saw this record), for an admin;
//! - `create`: JSON bodies of sample patients for `POST /api/patients` (emails are random, so
//!   every body can be registered once);
//! - `broker`: not a request list but a measurement: how many event records a second the
//!   broker at `--brokers` takes from the outbox relay's publisher, and with `--groups` how
//!   far behind consumer groups reading meanwhile get ([`broker`]).
//!
//! The requests are made here, with the same sample names `pms seed` stored, so the load
//! generator itself only picks lines: it must cost the two shared cores as little as possible.

use std::io::{BufWriter, Write};

use anyhow::{Context, bail};
use clap::Parser;
use patients::sample::{self, Names};

mod broker;

#[derive(Parser)]
#[command(about = "Write the requests of a pms benchmark measurement, one per line")]
struct Args {
    /// read, exact, mixed, audit, create or broker.
    kind: String,
    /// How many lines.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// How the family names of the stored patients are spread: wide or common.
    #[arg(long, default_value = "wide")]
    names: String,
    /// Patient ids (one per line), for `read` and `audit`.
    #[arg(long)]
    ids_file: Option<std::path::PathBuf>,
    /// The broker, for `broker`.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Records per publish, for `broker` (the relay's `PMS_OUTBOX_BATCH`).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Consumer groups reading meanwhile, for `broker`.
    #[arg(long, default_value_t = 0)]
    groups: usize,
    /// Records a second to publish, for `broker` (0: as fast as acknowledged).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
}

/// A search path for `name`, its query percent-encoded.
fn search(name: &str) -> String {
    let query: String = url_encode(name);
    format!("/api/patients?name={query}&limit=20")
}

fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A sample patient as the API's JSON body.
fn create_body(rng: &mut fastrand::Rng, names: Names) -> anyhow::Result<String> {
    let input = sample::patient(names, rng);
    let mut body = serde_json::json!({
        "givenName": input.given_name, "familyName": input.family_name,
        "birthDate": input.birth_date, "sex": input.sex,
    });
    if let Some(email) = input.email {
        body["email"] = email.into();
    }
    if let Some(phone) = input.phone {
        body["phone"] = phone.into();
    }
    Ok(serde_json::to_string(&body)?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let names: Names = args.names.parse().map_err(anyhow::Error::msg)?;
    let mut rng = fastrand::Rng::new();
    let mut out = BufWriter::new(std::io::stdout().lock());
    match args.kind.as_str() {
        "read" | "audit" => {
            let path = args.ids_file.context("read and audit need --ids-file")?;
            let ids =
                std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let ids: Vec<&str> = ids.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            if ids.is_empty() {
                bail!("no patient ids in {}", path.display());
            }
            for _ in 0..args.count {
                let id = ids[rng.usize(..ids.len())];
                if args.kind == "read" {
                    writeln!(out, "/api/patients/{id}")?;
                } else {
                    writeln!(out, "/api/audit-events?patientId={id}&limit=50")?;
                }
            }
        }
        "exact" => {
            for _ in 0..args.count {
                writeln!(out, "{}", search(names.family(&mut rng)))?;
            }
        }
        "mixed" => {
            for _ in 0..args.count {
                writeln!(out, "{}", search(&sample::name_query(names, &mut rng)))?;
            }
        }
        "create" => {
            for _ in 0..args.count {
                writeln!(out, "{}", create_body(&mut rng, names)?)?;
            }
        }
        "broker" => broker::run(&args.brokers, args.count, args.batch.max(1), args.groups, args.rate)?,
        other => bail!("{other}: the kinds are read, exact, mixed, audit, create and broker"),
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_accents_and_spaces_are_percent_encoded() {
        assert_eq!(search("García"), "/api/patients?name=Garc%C3%ADa&limit=20");
        assert_eq!(search("Anna De Boer"), "/api/patients?name=Anna%20De%20Boer&limit=20");
    }
}
