//! The events a patient write leaves in the outbox (docs/events.md): `PatientRegistered`,
//! `PatientUpdated` and `PatientDeactivated` on the patients topic, and for each registration
//! one more row for the `billing` sink, which opens the patient's billing account.

use kit::{
    config::{self, ConfigError},
    outbox::{OutboxEvent, event_timestamp},
};
use proto::patients::v1 as pb;
use time::OffsetDateTime;

use crate::domain::Patient;

/// The sink of the Kafka topic.
pub const KAFKA: &str = "kafka";
/// The sink of billing account opening (the [`crate::billing`] publisher).
pub const BILLING: &str = "billing";

pub const REGISTERED: &str = "pms.patients.v1.PatientRegistered";
pub const UPDATED: &str = "pms.patients.v1.PatientUpdated";
pub const DEACTIVATED: &str = "pms.patients.v1.PatientDeactivated";

/// What the service's writes emit, and where.
#[derive(Debug, Clone)]
pub struct PatientEvents {
    /// `PMS_PATIENTS_TOPIC`, default `patients.v1`.
    pub topic: String,
    /// Whether registrations also leave a row for the `billing` sink (off when the service
    /// opens no billing accounts: `PMS_BILLING_GRPC_URL=off`).
    pub billing: bool,
}

impl PatientEvents {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            topic: config::var("PMS_PATIENTS_TOPIC").unwrap_or_else(|| "patients.v1".to_owned()),
            billing: config::var("PMS_BILLING_GRPC_URL").as_deref() != Some("off"),
        })
    }

    /// Events on `topic`, registrations also for billing.
    pub fn on(topic: impl Into<String>) -> Self {
        Self { topic: topic.into(), billing: true }
    }

    /// A registration's events: one for the topic, and the same one for billing.
    pub fn registered(&self, patient: &Patient, trace_id: Option<&str>) -> Vec<OutboxEvent> {
        let message = pb::PatientRegistered { patient: Some(to_proto(patient)) };
        let event = self.event(REGISTERED, patient, patient.registered_at, trace_id, &message);
        match self.billing {
            true => vec![event.for_sink(BILLING), event],
            false => vec![event],
        }
    }

    pub fn updated(&self, patient: &Patient, trace_id: Option<&str>) -> OutboxEvent {
        let message = pb::PatientUpdated { patient: Some(to_proto(patient)) };
        self.event(UPDATED, patient, patient.updated_at, trace_id, &message)
    }

    pub fn deactivated(&self, patient: &Patient, trace_id: Option<&str>) -> OutboxEvent {
        let message = pb::PatientDeactivated {
            patient_id: patient.id.to_string(),
            version: patient.version,
            deactivated_at: Some(event_timestamp(patient.updated_at)),
        };
        self.event(DEACTIVATED, patient, patient.updated_at, trace_id, &message)
    }

    fn event(
        &self,
        event_type: &'static str,
        patient: &Patient,
        at: OffsetDateTime,
        trace_id: Option<&str>,
        message: &impl proto::Message,
    ) -> OutboxEvent {
        OutboxEvent::new(KAFKA, &self.topic, event_type, patient.id.as_uuid(), trace_id, at, message)
    }
}

/// A record as other services see it (events and `PatientDirectory`): no address.
pub fn to_proto(patient: &Patient) -> pb::Patient {
    pb::Patient {
        id: patient.id.to_string(),
        mrn: patient.mrn.clone(),
        given_name: patient.given_name.clone(),
        family_name: patient.family_name.clone(),
        birth_date: patient.birth_date.clone(),
        sex: patient.sex.as_str().to_owned(),
        email: patient.email.clone().unwrap_or_default(),
        phone: patient.phone.clone().unwrap_or_default(),
        active: patient.active,
        version: patient.version,
        registered_at: Some(event_timestamp(patient.registered_at)),
        updated_at: Some(event_timestamp(patient.updated_at)),
    }
}
