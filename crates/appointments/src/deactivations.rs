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
        let mut deactivations = Vec::new();
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
            match decoded {
                Some((event_id, patient_id)) => {
                    deactivations.push((event_id, patient_id, &envelope.trace_id))
                }
                None => handled.poison.push((index, "not a PatientDeactivated with UUIDs".to_owned())),
            }
        }
        // Most batches hold no deactivation: they cost no transaction.
        if deactivations.is_empty() {
            return Ok(handled);
        }
        let mut tx = self.appointments.pool().begin().await?;
        let ids: Vec<Uuid> = deactivations.iter().map(|(id, _, _)| *id).collect();
        let mut first = kit::consumer::first_deliveries(&mut tx, &ids).await?;
        let ctx = RequestContext::of(ACTOR, Vec::new());
        let mut cancelled = 0;
        for (event_id, patient_id, trace_id) in deactivations {
            if first.remove(&event_id) {
                let mut ctx = ctx.clone();
                ctx.trace_id = Some(trace_id.clone()).filter(|t| !t.is_empty());
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
