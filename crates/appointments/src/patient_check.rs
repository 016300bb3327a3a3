//! Asks the patients service (`PatientDirectory.GetPatient`, over gRPC, with a deadline)
//! whether a patient exists and is active, on behalf of the caller: the caller's own access
//! token, trace and request id travel with the call, so patients applies its own policy and
//! its audit trail names the person who booked. When patients cannot answer in time, nothing
//! is booked (503): never blind.

use std::time::Duration;

use kit::{RequestContext, grpc};
use proto::patients::v1::{GetPatientRequest, patient_directory_client::PatientDirectoryClient};
use tonic::Code;
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct PatientCheck {
    client: PatientDirectoryClient<grpc::PeerChannel>,
    deadline: Duration,
}

impl PatientCheck {
    /// Asks the directory at `url` (`http://host:port`; in-process when this process serves
    /// it, [`grpc::PeerChannel`]), each call within `deadline`.
    pub fn new(url: &str, deadline: Duration) -> Result<Self, tonic::transport::Error> {
        Ok(Self { client: PatientDirectoryClient::new(grpc::PeerChannel::new(url, deadline)?), deadline })
    }

    /// Ok when the patient exists and is active; a 422 naming `/patientId` when not; 503 when
    /// the patients service does not answer.
    pub async fn ensure_active(&self, ctx: &RequestContext, token: &str, patient_id: Uuid) -> Result<()> {
        let traceparent = ctx.trace_id.as_deref().map(kit::trace::traceparent_for);
        let mut request = grpc::outgoing(
            GetPatientRequest { id: patient_id.to_string() },
            token,
            traceparent.as_deref(),
            self.deadline,
        );
        if let Some(value) = ctx.request_id.as_deref().and_then(|r| r.parse().ok()) {
            request.metadata_mut().insert("x-request-id", value);
        }
        match self.client.clone().get_patient(request).await.map_err(grpc::status) {
            Ok(patient) if patient.get_ref().active => Ok(()),
            Ok(_) => Err(Error::field("/patientId", "the patient record is deactivated")),
            Err(status) => Err(match status.code() {
                Code::NotFound | Code::InvalidArgument => {
                    Error::field("/patientId", "no patient has this id")
                }
                Code::FailedPrecondition => Error::field("/patientId", "the patient record is deactivated"),
                Code::PermissionDenied => Error::Forbidden,
                code => {
                    tracing::warn!(?code, message = status.message(), "the patient directory did not answer");
                    metrics::counter!("appointments_patient_check_failures_total").increment(1);
                    Error::PatientsUnavailable
                }
            }),
        }
    }
}
