//! The events the service acts on, from `patients.v1` and `appointments.v1`: it keeps what
//! messages need to know (contacts, appointments), and queues the messages each event calls
//! for, once per event (the event id is recorded in the same transaction):
//!
//! | event | messages |
//! |---|---|
//! | `PatientRegistered` | a welcome |
//! | `AppointmentBooked` | a confirmation, and a reminder before the start for each lead time |
//! | `AppointmentRescheduled` | a notice of the new time; reminders moved to it |
//! | `AppointmentCancelled` | a notice; pending reminders cancelled |
//! | `AppointmentCompleted`, `AppointmentNoShow` | none; pending reminders cancelled |
//!
//! Messages are queued on both channels; whether each goes out (preferences, addresses) is
//! decided when it is due, on what is known then ([`crate::dispatcher`]).

use std::sync::Arc;

use kit::consumer::{Delivery, Handled, Handler};
use proto::{
    Message as _,
    appointments::v1 as appointments,
    patients::v1::{self as patients, Patient},
};
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    store::{AppointmentRow, Contact, Store},
    templates::Kind,
};

/// Applies batches of patient and appointment events.
#[derive(Clone)]
pub struct Inbox {
    store: Store,
    /// Before each appointment, a reminder this long before its start.
    leads: Vec<Duration>,
    /// Woken when messages were queued.
    dispatcher: Arc<Notify>,
}

/// Why an event of a known type cannot be applied: it is parked, not retried.
struct Poison(&'static str);

impl Inbox {
    pub fn new(store: Store, leads: Vec<Duration>, dispatcher: Arc<Notify>) -> Self {
        Self { store, leads, dispatcher }
    }

    async fn apply(&self, batch: &[Delivery]) -> Result<Handled, sqlx::Error> {
        let mut handled = Handled::default();
        let mut tx = self.store.pool().begin().await?;
        for (index, delivery) in batch.iter().enumerate() {
            let envelope = &delivery.envelope;
            let Ok(event_id) = Uuid::parse_str(&envelope.event_id) else {
                handled.poison.push((index, "the event id is not a UUID".to_owned()));
                continue;
            };
            if !kit::consumer::first_delivery(&mut tx, event_id).await? {
                continue;
            }
            let key = event_id.to_string();
            if let Err(Poison(why)) =
                self.apply_one(&mut tx, &envelope.event_type, &envelope.payload, &key).await?
            {
                handled.poison.push((index, why.to_owned()));
            }
        }
        tx.commit().await?;
        self.dispatcher.notify_one();
        Ok(handled)
    }

    async fn apply_one(
        &self,
        tx: &mut PgConnection,
        event_type: &str,
        payload: &[u8],
        key: &str,
    ) -> Result<Result<(), Poison>, sqlx::Error> {
        let now = OffsetDateTime::now_utc();
        match event_type {
            "pms.patients.v1.PatientRegistered" => {
                let Some(patient) = patients::PatientRegistered::decode(payload).ok().and_then(|e| e.patient)
                else {
                    return Ok(Err(Poison("undecodable PatientRegistered")));
                };
                let Some(id) = keep_patient(tx, &patient).await? else {
                    return Ok(Err(Poison("bad patient id")));
                };
                Store::enqueue(tx, id, None, Kind::Welcome, now, key).await?;
            }
            "pms.patients.v1.PatientUpdated" => {
                let Some(patient) = patients::PatientUpdated::decode(payload).ok().and_then(|e| e.patient)
                else {
                    return Ok(Err(Poison("undecodable PatientUpdated")));
                };
                if keep_patient(tx, &patient).await?.is_none() {
                    return Ok(Err(Poison("bad patient id")));
                }
            }
            "pms.patients.v1.PatientDeactivated" => {
                let Some(event) = patients::PatientDeactivated::decode(payload).ok() else {
                    return Ok(Err(Poison("undecodable PatientDeactivated")));
                };
                let Ok(id) = Uuid::parse_str(&event.patient_id) else {
                    return Ok(Err(Poison("bad patient id")));
                };
                Store::deactivate_contact(tx, id, event.version).await?;
            }
            "pms.appointments.v1.AppointmentBooked" => {
                let appointment =
                    appointments::AppointmentBooked::decode(payload).ok().and_then(|e| e.appointment);
                let Some((id, patient, start)) = self.keep_appointment(tx, appointment).await? else {
                    return Ok(Err(Poison("undecodable AppointmentBooked")));
                };
                Store::enqueue(tx, patient, Some(id), Kind::Confirmation, now, key).await?;
                self.schedule_reminders(tx, id, patient, start, key).await?;
            }
            "pms.appointments.v1.AppointmentRescheduled" => {
                let appointment =
                    appointments::AppointmentRescheduled::decode(payload).ok().and_then(|e| e.appointment);
                let Some((id, patient, start)) = self.keep_appointment(tx, appointment).await? else {
                    return Ok(Err(Poison("undecodable AppointmentRescheduled")));
                };
                Store::enqueue(tx, patient, Some(id), Kind::Rescheduled, now, key).await?;
                Store::cancel_reminders(tx, id, "the appointment moved").await?;
                self.schedule_reminders(tx, id, patient, start, key).await?;
            }
            "pms.appointments.v1.AppointmentCancelled" => {
                let appointment =
                    appointments::AppointmentCancelled::decode(payload).ok().and_then(|e| e.appointment);
                let Some((id, patient, _)) = self.keep_appointment(tx, appointment).await? else {
                    return Ok(Err(Poison("undecodable AppointmentCancelled")));
                };
                Store::enqueue(tx, patient, Some(id), Kind::Cancellation, now, key).await?;
                Store::cancel_reminders(tx, id, "the appointment was cancelled").await?;
            }
            "pms.appointments.v1.AppointmentCompleted" | "pms.appointments.v1.AppointmentNoShow" => {
                // Both messages hold only the appointment, as field 1: one decoding reads either.
                let appointment =
                    appointments::AppointmentCompleted::decode(payload).ok().and_then(|e| e.appointment);
                let Some((id, _, _)) = self.keep_appointment(tx, appointment).await? else {
                    return Ok(Err(Poison("undecodable appointment event")));
                };
                Store::cancel_reminders(tx, id, "the appointment is over").await?;
            }
            // Other events (check-ins, types added later) need no message.
            _ => {}
        }
        Ok(Ok(()))
    }

    /// Keeps the appointment of an event; its id, patient and start.
    async fn keep_appointment(
        &self,
        tx: &mut PgConnection,
        appointment: Option<appointments::Appointment>,
    ) -> Result<Option<(Uuid, Uuid, OffsetDateTime)>, sqlx::Error> {
        let Some(a) = appointment else { return Ok(None) };
        let (Ok(id), Ok(patient), Some(start), Some(end)) = (
            Uuid::parse_str(&a.id),
            Uuid::parse_str(&a.patient_id),
            a.start.as_ref().and_then(kit::outbox::event_instant),
            a.end.as_ref().and_then(kit::outbox::event_instant),
        ) else {
            return Ok(None);
        };
        let row = AppointmentRow {
            practitioner_name: a.practitioner_name,
            time_zone: a.time_zone,
            location: Some(a.location).filter(|l| !l.is_empty()),
            starts_at: start,
            status: a.status,
        };
        Store::keep_appointment(tx, id, patient, &row, end, a.version).await?;
        Ok(Some((id, patient, start)))
    }

    /// Queues a reminder `lead` before `start` for each lead time still ahead.
    async fn schedule_reminders(
        &self,
        tx: &mut PgConnection,
        id: Uuid,
        patient: Uuid,
        start: OffsetDateTime,
        key: &str,
    ) -> Result<(), sqlx::Error> {
        let now = OffsetDateTime::now_utc();
        for lead in &self.leads {
            let due = start - *lead;
            if due > now {
                let key = format!("{key}:reminder:{}", lead.whole_seconds());
                Store::enqueue(tx, patient, Some(id), Kind::Reminder, due, &key).await?;
            }
        }
        Ok(())
    }
}

/// Keeps a patient's contact; its id, if it is a UUID.
async fn keep_patient(tx: &mut PgConnection, patient: &Patient) -> Result<Option<Uuid>, sqlx::Error> {
    let Ok(id) = Uuid::parse_str(&patient.id) else { return Ok(None) };
    let contact = Contact {
        given_name: patient.given_name.clone(),
        email: Some(patient.email.clone()).filter(|e| !e.is_empty()),
        phone: Some(patient.phone.clone()).filter(|p| !p.is_empty()),
        active: patient.active,
    };
    Store::keep_contact(tx, id, &contact, &patient.family_name, patient.version).await?;
    Ok(Some(id))
}

impl Handler for Inbox {
    async fn handle(&self, batch: &[Delivery]) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.apply(batch).await?)
    }
}
