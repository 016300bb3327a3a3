//! Listens to the patients topic: when a patient is deactivated, their booked appointments
//! that have not started are cancelled (each with its `AppointmentCancelled` event), once per
//! event: the event id is recorded in the same transaction as the cancellations.

use kit::{
    RequestContext,
    consumer::{Delivery, Handled, Handler},
};
use proto::{Message as _, patients::v1::PatientDeactivated};
use uuid::Uuid;

use crate::store::Appointments;

/// The event type acted on; every other patient event is passed over.
pub const DEACTIVATED: &str = "pms.patients.v1.PatientDeactivated";
/// The cancel reason the appointments get (shown to staff, and in the patient's notice).
pub const REASON: &str = "The patient record was deactivated";
/// Who the audit trail names for these cancellations.
pub const ACTOR: &str = "service:appointments (patient deactivated)";

#[derive(Clone)]
pub struct Deactivations {
    appointments: Appointments,
}

impl Deactivations {
    pub fn new(appointments: Appointments) -> Self {
        Self { appointments }
    }

    async fn apply(&self, batch: &[Delivery]) -> Result<Handled, crate::error::Error> {
        let mut handled = Handled::default();
        let mut tx = self.appointments.pool().begin().await?;
        let ctx = RequestContext::of(ACTOR, Vec::new());
        let mut cancelled = 0;
        for (index, delivery) in batch.iter().enumerate() {
            let envelope = &delivery.envelope;
            if envelope.event_type != DEACTIVATED {
                continue;
            }
            let decoded = Uuid::parse_str(&envelope.event_id).ok().zip(
                PatientDeactivated::decode(envelope.payload.as_slice())
                    .ok()
                    .and_then(|d| Uuid::parse_str(&d.patient_id).ok()),
            );
            let Some((event_id, patient_id)) = decoded else {
                handled.poison.push((index, "not a PatientDeactivated with UUIDs".to_owned()));
                continue;
            };
            if kit::consumer::first_delivery(&mut tx, event_id).await? {
                let mut ctx = ctx.clone();
                ctx.trace_id = Some(envelope.trace_id.clone()).filter(|t| !t.is_empty());
                cancelled +=
                    self.appointments.cancel_future_of_patient(&mut tx, &ctx, patient_id, REASON).await?;
            }
        }
        tx.commit().await?;
        if cancelled > 0 {
            tracing::info!(cancelled, "appointments of deactivated patients cancelled");
            self.appointments.wake();
        }
        Ok(handled)
    }
}

impl Handler for Deactivations {
    async fn handle(&self, batch: &[Delivery]) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.apply(batch).await?)
    }
}
