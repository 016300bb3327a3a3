//! The `billing` sink: the billing accounts of a batch of registrations in the outbox are
//! opened over gRPC in one call (`BillingService.CreateBillingAccounts`, up to 500), as the
//! patients service itself (a service token from auth), each entry carrying its
//! registration's trace. The call is idempotent by patient id, so a retried batch never opens
//! a second account; while billing is down the relay keeps the rows and retries with backoff
//! (docs/events.md).

use std::time::Duration;

use kit::{
    grpc,
    outbox::{Message, PublishError, Publisher},
    service_token::ServiceTokens,
};
use proto::{
    Message as _,
    billing::v1::{
        CreateBillingAccountRequest, CreateBillingAccountsRequest,
        billing_service_client::BillingServiceClient,
    },
    events::v1::Envelope,
    patients::v1::PatientRegistered,
};
use tonic::Code;

use crate::events;

/// Accounts per call: what billing takes at most (`CreateBillingAccounts`).
const PER_CALL: usize = 500;

#[derive(Clone)]
pub struct BillingPublisher {
    client: BillingServiceClient<grpc::PeerChannel>,
    tokens: ServiceTokens,
    deadline: Duration,
}

impl BillingPublisher {
    /// Calls billing at `url` (`http://host:port`; in-process when this process serves it,
    /// [`grpc::PeerChannel`]) with tokens from `tokens`, each call within `deadline`.
    pub fn new(
        url: &str,
        tokens: ServiceTokens,
        deadline: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = grpc::PeerChannel::new(url, deadline)?;
        Ok(Self { client: BillingServiceClient::new(channel), tokens, deadline })
    }

    /// Opens the accounts of `asks` in one call.
    async fn open_accounts(
        &self,
        asks: Vec<CreateBillingAccountRequest>,
        token: &str,
    ) -> Result<(), PublishError> {
        let request =
            grpc::outgoing(CreateBillingAccountsRequest { accounts: asks }, token, None, self.deadline);
        match self.client.clone().create_billing_accounts(request).await {
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

/// What billing is asked to open for a registration row, in the registration's trace; none
/// for a row that is not a registration.
fn ask(message: &Message) -> Option<CreateBillingAccountRequest> {
    let (envelope, patient) = registration(message)?;
    let name = format!("{} {}", patient.given_name, patient.family_name);
    Some(CreateBillingAccountRequest {
        patient_id: patient.id,
        name,
        email: patient.email,
        trace_id: envelope.trace_id,
    })
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
        let mut asks = Vec::with_capacity(batch.len());
        for message in batch {
            match ask(message) {
                Some(ask) => asks.push(ask),
                None => {
                    // Written by this service, so never expected: logged, counted, and passed
                    // over rather than blocking every later account.
                    tracing::error!(event_id = %message.event_id, "an undecodable billing outbox row was skipped");
                    metrics::counter!("billing_rows_skipped_total").increment(1);
                }
            }
        }
        if asks.is_empty() {
            return Ok(());
        }
        let token = self.tokens.get().await.map_err(|e| PublishError(format!("no service token: {e}")))?;
        let mut asks = asks.into_iter().peekable();
        while asks.peek().is_some() {
            self.open_accounts(asks.by_ref().take(PER_CALL).collect(), &token).await?;
        }
        Ok(())
    }
}
