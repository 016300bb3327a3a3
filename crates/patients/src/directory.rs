//! `pms.patients.v1.PatientDirectory` over gRPC: other services (appointments) ask whether a
//! patient exists and is active, on behalf of their caller. The caller's own access token
//! travels with the call, so the same policy decides as over REST and the audit trail names
//! the person who asked, not the service in between; a denial and every read are audited.

use kit::{auth::Verifier, grpc};
use proto::patients::v1::{self as pb, patient_directory_server::PatientDirectory};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{access::PatientAccess, error::Error, events::to_proto, policy::Action};

#[derive(Clone)]
pub struct Directory {
    pub access: PatientAccess,
    pub verifier: Verifier,
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match err {
            Error::NotFound => Status::not_found("no patient has this id"),
            Error::Gone => Status::failed_precondition("the patient record is deactivated"),
            Error::Forbidden => Status::permission_denied("the caller's roles may not read patients"),
            Error::AuditUnavailable(_) => Status::unavailable("the audit log is unavailable"),
            Error::Stopping => Status::unavailable("the service is stopping"),
            Error::DatabaseUnavailable => Status::unavailable("the database is unavailable"),
            Error::Database(err) if kit::db::is_unavailable(&err) => {
                Status::unavailable("the database is unavailable")
            }
            other => {
                tracing::error!(error = %other, "directory call failed");
                Status::internal("internal error")
            }
        }
    }
}

#[tonic::async_trait]
impl PatientDirectory for Directory {
    async fn get_patient(
        &self,
        request: Request<pb::GetPatientRequest>,
    ) -> Result<Response<pb::Patient>, Status> {
        let ctx = grpc::caller(&self.verifier, &request).await?;
        let id = Uuid::parse_str(&request.get_ref().id)
            .map_err(|_| Status::invalid_argument("id must be a UUID"))?
            .into();
        self.access.authorize(&ctx, Action::Read, Some(id)).await?;
        let patient = self.access.read(&ctx, id).await?;
        Ok(Response::new(to_proto(&patient)))
    }
}
