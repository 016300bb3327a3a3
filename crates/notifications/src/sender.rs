//! Where messages go: email through Amazon SES (the v1 `SendEmail` API, which LocalStack
//! emulates) and SMS through Amazon SNS (`Publish` to a phone number), behind one small trait
//! so the dispatcher does not know which provider, or none, is behind it.
//!
//! `PMS_NOTIFICATIONS_CHANNEL=aws` (the default) sends through AWS with the SDK's settings
//! (region, credentials; `PMS_AWS_ENDPOINT_URL` for an emulator such as LocalStack); `log`
//! sends nothing and only records the messages in the delivery log, for a laptop without AWS.

use std::time::Duration;

use aws_sdk_ses::{
    config::http::HttpResponse,
    types::{Body, Content, Destination, Message},
};

/// What the provider said when a message could not be handed over.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (throttled, unreachable, a server error).
    #[error("{0}")]
    Transient(String),
    /// Never going to work as it is (an address the provider refuses).
    #[error("{0}")]
    Permanent(String),
}

/// An email ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Hands messages to a provider; answers the provider's message id.
pub trait Sender: Send + Sync + 'static {
    fn email(&self, email: &Email) -> impl Future<Output = Result<String, SendError>> + Send;
    fn sms(&self, to: &str, text: &str) -> impl Future<Output = Result<String, SendError>> + Send;
    /// `aws` or `log`, for the start-up line.
    fn name(&self) -> &'static str;
}

/// The AWS settings (`PMS_AWS_REGION`, `PMS_AWS_ENDPOINT_URL`; else the SDK's own
/// `AWS_REGION`, `AWS_ENDPOINT_URL`, credentials chain).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub endpoint: Option<String>,
    /// The address emails come from (`PMS_NOTIFICATIONS_FROM`); it must be verified in SES.
    pub from: String,
}

#[derive(Clone)]
pub struct AwsSender {
    ses: aws_sdk_ses::Client,
    sns: aws_sdk_sns::Client,
    from: String,
}

impl AwsSender {
    /// Clients for SES and SNS. Against an emulator (an endpoint is set) without credentials
    /// in the environment, the dummy ones emulators accept are used, and the sender address is
    /// verified (real SES needs that done once by an operator).
    pub async fn connect(settings: &AwsSettings) -> Result<Self, SendError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(3))
                .build(),
        );
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                loader = loader.credentials_provider(aws_sdk_ses::config::Credentials::new(
                    "test", "test", None, None, "emulator",
                ));
            }
            if settings.region.is_none() && std::env::var_os("AWS_REGION").is_none() {
                loader = loader.region(aws_config::Region::new("us-east-1"));
            }
        }
        let config = loader.load().await;
        let sender = Self {
            ses: aws_sdk_ses::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            from: settings.from.clone(),
        };
        if settings.endpoint.is_some() {
            sender.ses.verify_email_identity().email_address(&sender.from).send().await.map_err(|e| {
                SendError::Transient(format!("cannot verify the sender address: {}", describe(&e)))
            })?;
        }
        Ok(sender)
    }
}

impl Sender for AwsSender {
    async fn email(&self, email: &Email) -> Result<String, SendError> {
        let content = |text: &str| Content::builder().data(text).charset("UTF-8").build();
        let message = Message::builder()
            .subject(content(&email.subject).map_err(|e| SendError::Permanent(e.to_string()))?)
            .body(
                Body::builder()
                    .text(content(&email.text).map_err(|e| SendError::Permanent(e.to_string()))?)
                    .html(content(&email.html).map_err(|e| SendError::Permanent(e.to_string()))?)
                    .build(),
            )
            .build();
        let sent = self
            .ses
            .send_email()
            .source(&self.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .message(message)
            .send()
            .await
            .map_err(classify)?;
        Ok(sent.message_id().to_owned())
    }

    async fn sms(&self, to: &str, text: &str) -> Result<String, SendError> {
        let sent = self.sns.publish().phone_number(to).message(text).send().await.map_err(classify)?;
        Ok(sent.message_id().unwrap_or_default().to_owned())
    }

    fn name(&self) -> &'static str {
        "aws"
    }
}

/// A provider error as transient (retry) or permanent (give up): a 4xx answer other than
/// throttling is the request's fault; everything else (5xx, timeouts, no connection) may pass.
fn classify<E>(err: aws_sdk_ses::error::SdkError<E, HttpResponse>) -> SendError
where
    E: aws_sdk_ses::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = describe(&err);
    match &err {
        aws_sdk_ses::error::SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let throttled = status == 429 || service.err().code().is_some_and(|c| c.contains("Throttl"));
            if (400..500).contains(&status) && !throttled {
                SendError::Permanent(text)
            } else {
                SendError::Transient(text)
            }
        }
        _ => SendError::Transient(text),
    }
}

fn describe<E, R>(err: &aws_sdk_ses::error::SdkError<E, R>) -> String
where
    E: aws_sdk_ses::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        aws_sdk_ses::error::SdkError::ServiceError(service) => {
            let e = service.err();
            format!("{}: {}", e.code().unwrap_or("error"), e.message().unwrap_or("no message"))
        }
        other => format!("{}", aws_sdk_ses::error::DisplayErrorContext(other)),
    }
}

/// Sends nothing: the messages are only recorded in the delivery log (`PMS_NOTIFICATIONS_CHANNEL=log`).
#[derive(Clone, Default)]
pub struct LogSender;

impl Sender for LogSender {
    async fn email(&self, _email: &Email) -> Result<String, SendError> {
        Ok(format!("log-{}", uuid::Uuid::now_v7()))
    }

    async fn sms(&self, _to: &str, _text: &str) -> Result<String, SendError> {
        Ok(format!("log-{}", uuid::Uuid::now_v7()))
    }

    fn name(&self) -> &'static str {
        "log"
    }
}

/// The configured sender, whichever it is.
#[derive(Clone)]
pub enum AnySender {
    Aws(AwsSender),
    Log(LogSender),
}

impl Sender for AnySender {
    async fn email(&self, email: &Email) -> Result<String, SendError> {
        match self {
            AnySender::Aws(s) => s.email(email).await,
            AnySender::Log(s) => s.email(email).await,
        }
    }

    async fn sms(&self, to: &str, text: &str) -> Result<String, SendError> {
        match self {
            AnySender::Aws(s) => s.sms(to, text).await,
            AnySender::Log(s) => s.sms(to, text).await,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            AnySender::Aws(s) => s.name(),
            AnySender::Log(s) => s.name(),
        }
    }
}
