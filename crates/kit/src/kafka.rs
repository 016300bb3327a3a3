//! The connection to a Kafka-protocol broker: Tansu on a laptop and in tests, Apache Kafka or
//! Amazon MSK in production. Only the settings differ ([`KafkaConfig::from_env`]); the client
//! is librdkafka (the `rdkafka` crate, bundled build).
//!
//! Producers are idempotent (`enable.idempotence`, `acks=all`): a retry inside the client
//! never duplicates or reorders records of one partition. Topics a service writes to are
//! created on first use ([`ensure_topics`]); a topic that exists already is left alone.

use std::time::Duration;

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::KafkaError,
    producer::FutureProducer,
    types::RDKafkaErrorCode,
};

use crate::config::{self, ConfigError};

/// How to reach the broker. Read from `PMS_KAFKA_*` (docs/configuration.md).
#[derive(Clone)]
pub struct KafkaConfig {
    /// `PMS_KAFKA_BROKERS`: comma-separated `host:port` list.
    pub brokers: String,
    /// `PMS_KAFKA_SECURITY_PROTOCOL`: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// `PMS_KAFKA_SASL_MECHANISM` (`PLAIN`, `SCRAM-SHA-512`, ...), with
    /// `PMS_KAFKA_SASL_USERNAME` and `PMS_KAFKA_SASL_PASSWORD`.
    pub sasl: Option<Sasl>,
    /// `PMS_KAFKA_PARTITIONS`: partitions of the topics pms creates.
    pub partitions: i32,
    /// `PMS_KAFKA_REPLICATION`: replication factor of the topics pms creates.
    pub replication: i32,
    /// `PMS_KAFKA_SLOW_DELIVERY_MS`: how long a publish may wait for the broker's
    /// acknowledgements before a warning says so (again after each further such wait). The
    /// records are never given up: see [`KafkaConfig::producer`].
    pub slow_delivery: Duration,
    /// `PMS_KAFKA_FETCH_WAIT_MS`: the longest a consumer's fetch waits at the broker for
    /// records (librdkafka's `fetch.wait.max.ms`). Apache Kafka answers as soon as records
    /// are there, so the wait only bounds an idle fetch; Tansu always holds a fetch this long,
    /// so it is also the consumer's part of an event's delay, and each fetch costs Tansu CPU
    /// (docs/benchmarks.md, 2026-12-02).
    pub fetch_wait: Duration,
    /// `PMS_KAFKA_COMMIT_INTERVAL_MS`: how often a consumer commits the offsets of the batches
    /// it handled (librdkafka's `auto.commit.interval.ms`; also when stopping). A crash
    /// replays at most this much, which the handlers' processed event ids absorb.
    pub commit_interval: Duration,
}

#[derive(Clone)]
pub struct Sasl {
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl", &self.sasl.as_ref().map(|s| (&s.mechanism, &s.username, "<secret>")))
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

const DEFAULT_FETCH_WAIT: Duration = Duration::from_millis(25);
const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_secs(1);

const PROTOCOLS: [&str; 4] = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];

impl KafkaConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let security_protocol = config::var("PMS_KAFKA_SECURITY_PROTOCOL")
            .unwrap_or_else(|| "plaintext".to_owned())
            .to_ascii_lowercase();
        if !PROTOCOLS.contains(&security_protocol.as_str()) {
            return Err(ConfigError::Invalid {
                name: "PMS_KAFKA_SECURITY_PROTOCOL".to_owned(),
                reason: format!("must be one of {}", PROTOCOLS.join(", ")),
            });
        }
        let sasl = match config::var("PMS_KAFKA_SASL_MECHANISM") {
            None => None,
            Some(mechanism) => Some(Sasl {
                mechanism,
                username: required("PMS_KAFKA_SASL_USERNAME")?,
                password: required("PMS_KAFKA_SASL_PASSWORD")?,
            }),
        };
        Ok(Self {
            brokers: config::var("PMS_KAFKA_BROKERS").unwrap_or_else(|| "127.0.0.1:9092".to_owned()),
            security_protocol,
            sasl,
            partitions: config::parse_or("PMS_KAFKA_PARTITIONS", 3)?,
            replication: config::parse_or("PMS_KAFKA_REPLICATION", 1)?,
            slow_delivery: config::millis_or("PMS_KAFKA_SLOW_DELIVERY_MS", Duration::from_secs(10))?,
            fetch_wait: config::millis_or("PMS_KAFKA_FETCH_WAIT_MS", DEFAULT_FETCH_WAIT)?,
            commit_interval: config::millis_or("PMS_KAFKA_COMMIT_INTERVAL_MS", DEFAULT_COMMIT_INTERVAL)?,
        })
    }

    /// A plaintext broker at `brokers` with laptop defaults (tests).
    pub fn plaintext(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            security_protocol: "plaintext".to_owned(),
            sasl: None,
            partitions: 3,
            replication: 1,
            slow_delivery: Duration::from_secs(10),
            fetch_wait: DEFAULT_FETCH_WAIT,
            commit_interval: DEFAULT_COMMIT_INTERVAL,
        }
    }

    /// The librdkafka settings every client of pms shares: where, and how to authenticate.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("security.protocol", &self.security_protocol)
            // librdkafka logs through its own callback; keep it to what an operator needs.
            .set("log_level", "4");
        if self.security_protocol.ends_with("ssl") {
            // The broker's certificate is checked against the system's CA bundle (Amazon MSK's
            // are publicly trusted): "probe" finds it wherever the distribution keeps it, also
            // in a distroless image where OpenSSL's compiled-in directory does not exist.
            config.set("ssl.ca.location", "probe");
        }
        if let Some(sasl) = &self.sasl {
            config
                .set("sasl.mechanism", &sasl.mechanism)
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        config
    }

    /// An idempotent producer: acknowledged by every in-sync replica, retried by the client
    /// without duplicates, ordered per partition.
    ///
    /// A record is never given up (`message.timeout.ms = 0`): the client retries it until the
    /// broker acknowledges it, however long the broker is down or stalled. Giving up a record
    /// the broker may already hold makes the idempotent producer bump its epoch, and then
    /// whoever sent it (the outbox relay) would send it again as a new record: a duplicate on
    /// any broker. Tansu 0.6's sqlite engine, moreover, cannot take the bumped epoch: it
    /// stops serving every client until it is restarted (measured: docs/benchmarks.md,
    /// 2026-12-02). Whoever waits for a delivery decides how long to wait
    /// ([`KafkaConfig::slow_delivery`], the relay's stop).
    pub fn producer(&self) -> Result<FutureProducer, KafkaError> {
        self.client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "0")
            .create()
    }
}

fn required(name: &str) -> Result<String, ConfigError> {
    config::var(name).ok_or_else(|| ConfigError::Missing { name: name.to_owned() })
}

/// Creates each of `topics` that does not exist yet, with the configured partitions and
/// replication.
pub async fn ensure_topics(config: &KafkaConfig, topics: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, config.partitions, TopicReplication::Fixed(config.replication)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for outcome in admin.create_topics(&new, &options).await? {
        match outcome {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::warn!(%topic, error = %code, "cannot create topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(protocol: &str, sasl: Option<Sasl>) -> KafkaConfig {
        KafkaConfig { security_protocol: protocol.to_owned(), sasl, ..KafkaConfig::plaintext("127.0.0.1:9") }
    }

    // Amazon MSK speaks TLS (and SASL/SCRAM over TLS): librdkafka refuses these protocols
    // unless it was built with OpenSSL, which would only show in production.
    #[tokio::test]
    async fn producers_can_be_made_for_tls_brokers() {
        let _tls = config("ssl", None).producer().expect("a TLS producer");
        let scram = Sasl {
            mechanism: "SCRAM-SHA-512".to_owned(),
            username: "pms".to_owned(),
            password: "secret".to_owned(),
        };
        let _scram = config("sasl_ssl", Some(scram)).producer().expect("a SASL/SCRAM over TLS producer");
    }
}
