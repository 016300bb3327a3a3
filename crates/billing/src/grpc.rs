//! `pms.billing.v1.BillingService` over gRPC (served with health checking and reflection by
//! [`kit::grpc::serve`]).

use kit::{auth::Verifier, grpc};
use proto::billing::v1::{self as pb, billing_service_server::BillingService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    accounts::{Account, AccountRepository, Opening},
    error::Error,
    policy::{self, Action},
};

#[derive(Clone)]
pub struct BillingGrpc {
    pub accounts: AccountRepository,
    pub verifier: Verifier,
}

fn patient_id(raw: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw).map_err(|_| Status::invalid_argument("patient_id must be a UUID"))
}

/// Entries per `CreateBillingAccounts` call (the relay's batch).
pub const MAX_BATCH: usize = 500;

/// A valid request to open an account, or why not.
fn opening(ask: &pb::CreateBillingAccountRequest) -> Result<Opening<'_>, Status> {
    let patient_id = patient_id(&ask.patient_id)?;
    let name = ask.name.trim();
    if name.is_empty() || name.chars().count() > 300 {
        return Err(Status::invalid_argument("name must have 1 to 300 characters"));
    }
    let email = Some(ask.email.trim()).filter(|e| !e.is_empty());
    Ok(Opening { patient_id, name, email })
}

fn to_proto(account: Account) -> pb::BillingAccount {
    pb::BillingAccount {
        id: account.id.to_string(),
        number: account.number,
        patient_id: account.patient_id.to_string(),
        status: account.status,
        name: account.name,
        email: account.email.unwrap_or_default(),
    }
}

impl BillingGrpc {
    async fn authorize<T>(&self, request: &Request<T>, action: Action) -> Result<(), Status> {
        let ctx = grpc::caller(&self.verifier, request).await?;
        if policy::may(&ctx, action) {
            Ok(())
        } else {
            tracing::warn!(action = kit::auth::Action::as_str(action), actor = %ctx.user_id, "access denied");
            Err(Error::Forbidden.into())
        }
    }
}

#[tonic::async_trait]
impl BillingService for BillingGrpc {
    async fn create_billing_account(
        &self,
        request: Request<pb::CreateBillingAccountRequest>,
    ) -> Result<Response<pb::BillingAccount>, Status> {
        self.authorize(&request, Action::OpenAccount).await?;
        let ask = request.into_inner();
        let (account, opened) = self.accounts.open(opening(&ask)?).await?;
        if opened {
            tracing::info!(account = %account.number, "billing account opened");
        }
        Ok(Response::new(to_proto(account)))
    }

    async fn create_billing_accounts(
        &self,
        request: Request<pb::CreateBillingAccountsRequest>,
    ) -> Result<Response<pb::CreateBillingAccountsResponse>, Status> {
        self.authorize(&request, Action::OpenAccount).await?;
        let asked = request.into_inner().accounts;
        if asked.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!("at most {MAX_BATCH} accounts per call")));
        }
        let openings = asked
            .iter()
            .enumerate()
            .map(|(i, ask)| {
                opening(ask).map_err(|e| Status::invalid_argument(format!("accounts[{i}]: {}", e.message())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let accounts = self.accounts.open_many(&openings).await?;
        for ((account, opened), ask) in accounts.iter().zip(&asked) {
            if *opened {
                // In the trace of the registration it follows, when the entry names one.
                if kit::trace::is_trace_id(&ask.trace_id) {
                    tracing::info!(account = %account.number, trace_id = %ask.trace_id, "billing account opened");
                } else {
                    tracing::info!(account = %account.number, "billing account opened");
                }
            }
        }
        let accounts = accounts.into_iter().map(|(account, _)| to_proto(account)).collect();
        Ok(Response::new(pb::CreateBillingAccountsResponse { accounts }))
    }

    async fn get_billing_account(
        &self,
        request: Request<pb::GetBillingAccountRequest>,
    ) -> Result<Response<pb::BillingAccount>, Status> {
        self.authorize(&request, Action::ReadAccount).await?;
        let patient_id = patient_id(&request.get_ref().patient_id)?;
        let account = self.accounts.get(patient_id).await?.ok_or(Error::NotFound)?;
        Ok(Response::new(to_proto(account)))
    }
}
