//! The events an appointment change leaves in the outbox (docs/events.md), on the
//! appointments topic: `AppointmentBooked`, `AppointmentRescheduled`, `AppointmentCancelled`,
//! `AppointmentCompleted`, `AppointmentNoShow`. A check-in changes the appointment but is not
//! announced: nothing downstream acts on it.

use kit::{
    config::{self, ConfigError},
    outbox::{OutboxEvent, event_timestamp},
};
use proto::appointments::v1 as pb;
use time::OffsetDateTime;

use crate::{domain::Status, store::Booking};

/// The sink of the Kafka topic.
pub const KAFKA: &str = "kafka";

pub const BOOKED: &str = "pms.appointments.v1.AppointmentBooked";
pub const RESCHEDULED: &str = "pms.appointments.v1.AppointmentRescheduled";
pub const CANCELLED: &str = "pms.appointments.v1.AppointmentCancelled";
pub const COMPLETED: &str = "pms.appointments.v1.AppointmentCompleted";
pub const NO_SHOW: &str = "pms.appointments.v1.AppointmentNoShow";

/// Where the service's events go.
#[derive(Debug, Clone)]
pub struct AppointmentEvents {
    /// `PMS_APPOINTMENTS_TOPIC`, default `appointments.v1`.
    pub topic: String,
}

impl AppointmentEvents {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::on(config::var("PMS_APPOINTMENTS_TOPIC").unwrap_or_else(|| "appointments.v1".to_owned())))
    }

    pub fn on(topic: impl Into<String>) -> Self {
        Self { topic: topic.into() }
    }

    pub fn booked(&self, booking: &Booking, trace_id: Option<&str>) -> OutboxEvent {
        let message = pb::AppointmentBooked { appointment: Some(to_proto(booking)) };
        self.event(BOOKED, booking, trace_id, &message)
    }

    pub fn rescheduled(
        &self,
        booking: &Booking,
        previous: (OffsetDateTime, OffsetDateTime),
        trace_id: Option<&str>,
    ) -> OutboxEvent {
        let message = pb::AppointmentRescheduled {
            appointment: Some(to_proto(booking)),
            previous_start: Some(event_timestamp(previous.0)),
            previous_end: Some(event_timestamp(previous.1)),
        };
        self.event(RESCHEDULED, booking, trace_id, &message)
    }

    /// The event of a status change, if it is one that is announced.
    pub fn status_changed(&self, booking: &Booking, trace_id: Option<&str>) -> Option<OutboxEvent> {
        let appointment = Some(to_proto(booking));
        Some(match booking.appointment.status {
            Status::Cancelled => {
                self.event(CANCELLED, booking, trace_id, &pb::AppointmentCancelled { appointment })
            }
            Status::Completed => {
                self.event(COMPLETED, booking, trace_id, &pb::AppointmentCompleted { appointment })
            }
            Status::NoShow => self.event(NO_SHOW, booking, trace_id, &pb::AppointmentNoShow { appointment }),
            Status::Booked | Status::CheckedIn => return None,
        })
    }

    fn event(
        &self,
        event_type: &'static str,
        booking: &Booking,
        trace_id: Option<&str>,
        message: &impl proto::Message,
    ) -> OutboxEvent {
        let a = &booking.appointment;
        OutboxEvent::new(KAFKA, &self.topic, event_type, a.id, trace_id, a.updated_at, message)
    }
}

pub fn to_proto(booking: &Booking) -> pb::Appointment {
    let a = &booking.appointment;
    pb::Appointment {
        id: a.id.to_string(),
        patient_id: a.patient_id.to_string(),
        practitioner_id: a.practitioner_id.to_string(),
        practitioner_name: booking.practitioner_name.clone(),
        time_zone: a.time_zone.clone(),
        r#type: a.kind.clone().unwrap_or_default(),
        start: Some(event_timestamp(a.start)),
        end: Some(event_timestamp(a.end)),
        status: a.status.as_str().to_owned(),
        cancel_reason: a.cancel_reason.clone().unwrap_or_default(),
        location: booking.location.clone().unwrap_or_default(),
        version: a.version,
    }
}
