//! The `billing` sink: for each registration in the outbox, the billing account is opened
//! over gRPC (`BillingService.CreateBillingAccount`), as the patients service itself (a
//! service token from auth) and in the registration's trace. The call is idempotent by
//! patient id, so a retried batch never opens a second account; while billing is down the
//! relay keeps the rows and retries with backoff (docs/events.md).

use std::time::Duration;

use futures_util::future::try_join_all;
use kit::{
    grpc,
    outbox::{Message, PublishError, Publisher},
    service_token::ServiceTokens,
};
use proto::{
    Message as _,
    billing::v1::{CreateBillingAccountRequest, billing_service_client::BillingServiceClient},
    events::v1::Envelope,
    patients::v1::PatientRegistered,
};
use tonic::{Code, transport::Channel};

use crate::events;

/// Calls in flight at once per batch (one HTTP/2 connection carries them).
const IN_FLIGHT: usize = 32;

#[derive(Clone)]
pub struct BillingPublisher {
    client: BillingServiceClient<Channel>,
    tokens: ServiceTokens,
    deadline: Duration,
}

impl BillingPublisher {
    /// Calls billing at `url` (`http://host:port`) with tokens from `tokens`, each call within
    /// `deadline`.
    pub fn new(
        url: &str,
        tokens: ServiceTokens,
        deadline: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = grpc::channel(url, deadline)?;
        Ok(Self { client: BillingServiceClient::new(channel), tokens, deadline })
    }

    async fn open_account(&self, message: &Message, token: &str) -> Result<(), PublishError> {
        let Some((envelope, patient)) = registration(message) else {
            // Written by this service, so never expected: logged, counted, and passed over
            // rather than blocking every later account.
            tracing::error!(event_id = %message.event_id, "an undecodable billing outbox row was skipped");
            metrics::counter!("billing_rows_skipped_total").increment(1);
            return Ok(());
        };
        let name = format!("{} {}", patient.given_name, patient.family_name);
        let ask = CreateBillingAccountRequest { patient_id: patient.id, name, email: patient.email };
        let traceparent =
            (!envelope.trace_id.is_empty()).then(|| kit::trace::traceparent_for(&envelope.trace_id));
        let request = grpc::outgoing(ask, token, traceparent.as_deref(), self.deadline);
        match self.client.clone().create_billing_account(request).await {
            Ok(_) => Ok(()),
            Err(status) => {
                let status = grpc::status(status);
                if status.code() == Code::Unauthenticated {
                    self.tokens.forget().await;
                }
                Err(PublishError(format!("billing answered {:?}: {}", status.code(), status.message())))
            }
        }
    }
}

/// The envelope and patient of a registration row.
fn registration(message: &Message) -> Option<(Envelope, proto::patients::v1::Patient)> {
    let envelope = Envelope::decode(message.payload.as_slice()).ok()?;
    if envelope.event_type != events::REGISTERED {
        return None;
    }
    let patient = PatientRegistered::decode(envelope.payload.as_slice()).ok()?.patient?;
    Some((envelope, patient))
}

impl Publisher for BillingPublisher {
    async fn publish(&self, batch: &[Message]) -> Result<(), PublishError> {
        let token = self.tokens.get().await.map_err(|e| PublishError(format!("no service token: {e}")))?;
        for calls in batch.chunks(IN_FLIGHT) {
            try_join_all(calls.iter().map(|message| self.open_account(message, &token))).await?;
        }
        Ok(())
    }
}
