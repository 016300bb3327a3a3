//! The notifications service: messages to patients, driven by events. It consumes
//! `patients.v1` and `appointments.v1`, queues a welcome on registration, a confirmation on
//! booking and rescheduling, a notice on cancellation and reminders before each appointment
//! (durable rows with a due time), and sends them by email (Amazon SES) and SMS (Amazon SNS),
//! respecting each patient's preferences, with a delivery log staff can read
//! (docs/notifications.md). Its face is the one every pms service has.

pub mod dispatcher;
pub mod error;
pub mod http;
pub mod inbox;
pub mod policy;
pub mod sender;
pub mod store;
pub mod templates;

use std::sync::Arc;

use axum::Router;
use kit::{
    auth::VerifierConfig,
    config::{self, ConfigError, HttpConfig},
    consumer::{self, ConsumerConfig},
    db::{DbConfig, Plans, Schema},
    health::{self, Readiness},
    kafka::KafkaConfig,
    net::TrustedProxies,
    service::{BoxError, Launch, Peers, Profile, Running, Service},
    shutdown::Shutdown,
    tasks::Background,
};
use sqlx::{PgPool, migrate::Migrator};
use time::Duration;
use tokio::{net::TcpListener, sync::Notify};

use crate::{
    dispatcher::Dispatcher,
    http::NotificationsState,
    inbox::Inbox,
    sender::{AnySender, AwsSender, AwsSettings, LogSender, Sender},
    store::Store,
};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub const SCHEMA: Schema = Schema { name: "notifications", migrator: &MIGRATOR, plans: Plans::Custom };

pub const SERVICE: Service = Service {
    name: "notifications",
    bind_var: "PMS_NOTIFICATIONS_BIND",
    default_port: 8086,
    grpc: None,
    schema: Some(&SCHEMA),
    routes: policy::ROUTES,
    openapi: http::document,
    launch,
};

/// How messages leave (`PMS_NOTIFICATIONS_CHANNEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Through SES and SNS.
    Aws,
    /// Nowhere: recorded in the delivery log only.
    Log,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbConfig,
    pub http: HttpConfig,
    pub verifier: VerifierConfig,
    pub trusted_proxies: TrustedProxies,
    pub kafka: KafkaConfig,
    /// Group `PMS_NOTIFICATIONS_GROUP` (`pms-notifications`) on the patients and appointments
    /// topics; dead letters to `notifications.dlq`.
    pub consumer: ConsumerConfig,
    pub channel: Channel,
    pub aws: AwsSettings,
    /// Reminder lead times (`PMS_REMINDER_LEADS`, default `24h,2h`).
    pub leads: Vec<Duration>,
    /// The name messages are signed with (`PMS_CLINIC_NAME`).
    pub clinic: String,
}

impl Config {
    pub fn from_env(peers: &Peers) -> Result<Self, ConfigError> {
        let patients = config::var("PMS_PATIENTS_TOPIC").unwrap_or_else(|| "patients.v1".to_owned());
        let appointments =
            config::var("PMS_APPOINTMENTS_TOPIC").unwrap_or_else(|| "appointments.v1".to_owned());
        let channel = match config::var("PMS_NOTIFICATIONS_CHANNEL").as_deref() {
            None | Some("aws") => Channel::Aws,
            Some("log") => Channel::Log,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "PMS_NOTIFICATIONS_CHANNEL".into(),
                    reason: "must be aws or log".into(),
                });
            }
        };
        let leads = match config::var("PMS_REMINDER_LEADS") {
            None => vec![Duration::hours(24), Duration::hours(2)],
            Some(text) => parse_leads(&text)
                .map_err(|reason| ConfigError::Invalid { name: "PMS_REMINDER_LEADS".into(), reason })?,
        };
        Ok(Self {
            db: DbConfig::from_env(SERVICE.name)?,
            http: HttpConfig::from_env(SERVICE.bind_var, SERVICE.bind_address()?)?,
            verifier: VerifierConfig::from_env(&peers.auth_url())?,
            trusted_proxies: TrustedProxies::from_env()?,
            kafka: KafkaConfig::from_env()?,
            consumer: ConsumerConfig {
                group: config::var("PMS_NOTIFICATIONS_GROUP")
                    .unwrap_or_else(|| "pms-notifications".to_owned()),
                topics: vec![patients, appointments],
                dead_letter_topic: "notifications.dlq".to_owned(),
                max_batch: 200,
            },
            channel,
            aws: AwsSettings {
                region: config::var("PMS_AWS_REGION"),
                endpoint: config::var("PMS_AWS_ENDPOINT_URL"),
                from: config::var("PMS_NOTIFICATIONS_FROM")
                    .unwrap_or_else(|| "no-reply@pms.local".to_owned()),
            },
            leads,
            clinic: config::var("PMS_CLINIC_NAME").unwrap_or_else(|| "pms clinic".to_owned()),
        })
    }
}

/// `24h,2h,30m`: lead times in hours, minutes or seconds.
pub fn parse_leads(text: &str) -> Result<Vec<Duration>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let (number, unit) = t.split_at(t.len().saturating_sub(1));
            let n: i64 =
                number.parse().map_err(|_| format!("`{t}` is not a lead time such as 24h, 30m or 90s"))?;
            match unit {
                "h" => Ok(Duration::hours(n)),
                "m" => Ok(Duration::minutes(n)),
                "s" => Ok(Duration::seconds(n)),
                _ => Err(format!("`{t}` is not a lead time such as 24h, 30m or 90s")),
            }
        })
        .collect()
}

#[derive(Clone)]
pub struct State {
    pub pool: PgPool,
    pub api: NotificationsState,
    pub http: HttpConfig,
}

/// The sender `config` asks for: AWS (SES and SNS), or the log only.
pub async fn sender(config: &Config) -> Result<AnySender, BoxError> {
    Ok(match config.channel {
        Channel::Aws => AnySender::Aws(AwsSender::connect(&config.aws).await?),
        Channel::Log => AnySender::Log(LogSender),
    })
}

/// Connects to the database and starts the consumer and the dispatcher (sending through
/// `sender`) on `background`.
pub async fn build(config: &Config, sender: AnySender, background: &Background) -> Result<State, BoxError> {
    let pool = SCHEMA.connect(&config.db).await?;
    let store = Store::new(pool.clone());
    let wake = Arc::new(Notify::new());
    tracing::info!(channel = sender.name(), "notifications send through {}", sender.name());
    Dispatcher::new(store.clone(), sender, config.clinic.clone()).start(background, wake.clone());
    consumer::start(
        &config.kafka,
        config.consumer.clone(),
        Inbox::new(store.clone(), config.leads.clone(), wake),
        background,
    )?;
    let api = NotificationsState {
        store,
        verifier: config.verifier.start(background),
        trusted_proxies: config.trusted_proxies.clone(),
    };
    Ok(State { pool, api, http: config.http.clone() })
}

pub fn router(state: State) -> Router {
    let readiness = Readiness::default().with(health::Database(state.pool.clone()));
    kit::http::app(SERVICE.name, http::routes(state.api), readiness, &state.http)
}

pub async fn run(
    config: Config,
    sender: AnySender,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), BoxError> {
    let background = Background::new();
    let state = build(&config, sender, &background).await?;
    kit::http::run(listener, router(state), config.http.clone(), background, shutdown).await?;
    Ok(())
}

fn launch(launch: Launch) -> Running {
    Box::pin(async move {
        let config = Config::from_env(&launch.peers)?;
        let no_aws = config.aws.endpoint.is_none()
            && [
                "AWS_ACCESS_KEY_ID",
                "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
            ]
            .iter()
            .all(|v| std::env::var_os(v).is_none());
        let sender = match sender(&config).await {
            // A laptop with neither LocalStack nor AWS credentials: record, do not send.
            Ok(AnySender::Aws(_)) if no_aws && launch.profile == Profile::Laptop => {
                tracing::warn!(
                    "no AWS credentials and no PMS_AWS_ENDPOINT_URL (LocalStack): notifications are only recorded in the delivery log, not sent"
                );
                AnySender::Log(LogSender)
            }
            Ok(sender) => sender,
            // On a laptop without LocalStack or AWS, messages are recorded but not sent.
            Err(err) if launch.profile == Profile::Laptop => {
                tracing::warn!(error = %err, "AWS (or LocalStack) is not reachable: notifications are only recorded in the delivery log, not sent");
                AnySender::Log(LogSender)
            }
            Err(err) => return Err(err),
        };
        run(config, sender, launch.listener, launch.shutdown).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_times_read_hours_minutes_and_seconds() {
        assert_eq!(
            parse_leads("24h, 2h,30m,90s"),
            Ok(vec![Duration::hours(24), Duration::hours(2), Duration::minutes(30), Duration::seconds(90)])
        );
        assert!(parse_leads("2 days").is_err());
        assert!(parse_leads("h").is_err());
    }
}
