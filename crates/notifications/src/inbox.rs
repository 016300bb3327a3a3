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

use std::{collections::HashMap, sync::Arc};

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
    store::{AppointmentRow, Contact, KeptAppointment, KeptContact, Queued, Store},
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

    /// Applies `batch` in one transaction: the event ids recorded in one statement, the
    /// contacts, the appointments and the queued messages folded into a statement each.
    async fn apply(&self, batch: &[Delivery]) -> Result<Handled, sqlx::Error> {
        let mut handled = Handled::default();
        let mut events = Vec::with_capacity(batch.len());
        for (index, delivery) in batch.iter().enumerate() {
            match Uuid::parse_str(&delivery.envelope.event_id) {
                Ok(event_id) => events.push((index, event_id)),
                Err(_) => handled.poison.push((index, "the event id is not a UUID".to_owned())),
            }
        }
        let mut tx = self.store.pool().begin().await?;
        let ids: Vec<Uuid> = events.iter().map(|(_, id)| *id).collect();
        let mut first = kit::consumer::first_deliveries(&mut tx, &ids).await?;
        let mut pending = Pending::default();
        for (index, event_id) in events {
            if !first.remove(&event_id) {
                continue;
            }
            let envelope = &batch[index].envelope;
            let key = event_id.to_string();
            if let Err(Poison(why)) =
                self.apply_one(&mut tx, &mut pending, &envelope.event_type, &envelope.payload, &key).await?
            {
                handled.poison.push((index, why.to_owned()));
            }
        }
        pending.write(&mut tx).await?;
        tx.commit().await?;
        self.dispatcher.notify_one();
        Ok(handled)
    }

    async fn apply_one(
        &self,
        tx: &mut PgConnection,
        pending: &mut Pending,
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
                let Some(id) = pending.keep_patient(&patient) else {
                    return Ok(Err(Poison("bad patient id")));
                };
                pending.enqueue(id, None, Kind::Welcome, now, key.to_owned());
            }
            "pms.patients.v1.PatientUpdated" => {
                let Some(patient) = patients::PatientUpdated::decode(payload).ok().and_then(|e| e.patient)
                else {
                    return Ok(Err(Poison("undecodable PatientUpdated")));
                };
                if pending.keep_patient(&patient).is_none() {
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
                let version = pending.deactivations.entry(id).or_insert(event.version);
                *version = (*version).max(event.version);
            }
            "pms.appointments.v1.AppointmentBooked" => {
                let appointment =
                    appointments::AppointmentBooked::decode(payload).ok().and_then(|e| e.appointment);
                let Some((id, patient, start)) = Self::keep_appointment(pending, appointment) else {
                    return Ok(Err(Poison("undecodable AppointmentBooked")));
                };
                pending.enqueue(patient, Some(id), Kind::Confirmation, now, key.to_owned());
                self.schedule_reminders(pending, id, patient, start, key);
            }
            "pms.appointments.v1.AppointmentRescheduled" => {
                let appointment =
                    appointments::AppointmentRescheduled::decode(payload).ok().and_then(|e| e.appointment);
                let Some((id, patient, start)) = Self::keep_appointment(pending, appointment) else {
                    return Ok(Err(Poison("undecodable AppointmentRescheduled")));
                };
                pending.enqueue(patient, Some(id), Kind::Rescheduled, now, key.to_owned());
                pending.cancel_reminders(tx, id, "the appointment moved").await?;
                self.schedule_reminders(pending, id, patient, start, key);
            }
            "pms.appointments.v1.AppointmentCancelled" => {
                let appointment =
                    appointments::AppointmentCancelled::decode(payload).ok().and_then(|e| e.appointment);
                let Some((id, patient, _)) = Self::keep_appointment(pending, appointment) else {
                    return Ok(Err(Poison("undecodable AppointmentCancelled")));
                };
                pending.enqueue(patient, Some(id), Kind::Cancellation, now, key.to_owned());
                pending.cancel_reminders(tx, id, "the appointment was cancelled").await?;
            }
            "pms.appointments.v1.AppointmentCompleted" | "pms.appointments.v1.AppointmentNoShow" => {
                // Both messages hold only the appointment, as field 1: one decoding reads either.
                let appointment =
                    appointments::AppointmentCompleted::decode(payload).ok().and_then(|e| e.appointment);
                let Some((id, _, _)) = Self::keep_appointment(pending, appointment) else {
                    return Ok(Err(Poison("undecodable appointment event")));
                };
                pending.cancel_reminders(tx, id, "the appointment is over").await?;
            }
            // Other events (check-ins, types added later) need no message.
            _ => {}
        }
        Ok(Ok(()))
    }

    /// Keeps the appointment of an event (written with the batch's others, [`Pending::write`]);
    /// its id, patient and start.
    fn keep_appointment(
        pending: &mut Pending,
        appointment: Option<appointments::Appointment>,
    ) -> Option<(Uuid, Uuid, OffsetDateTime)> {
        let a = appointment?;
        let (Ok(id), Ok(patient), Some(start), Some(end)) = (
            Uuid::parse_str(&a.id),
            Uuid::parse_str(&a.patient_id),
            a.start.as_ref().and_then(kit::outbox::event_instant),
            a.end.as_ref().and_then(kit::outbox::event_instant),
        ) else {
            return None;
        };
        let row = AppointmentRow {
            practitioner_name: a.practitioner_name,
            time_zone: a.time_zone,
            location: Some(a.location).filter(|l| !l.is_empty()),
            starts_at: start,
            status: a.status,
        };
        pending.keep_appointment(KeptAppointment {
            id,
            patient_id: patient,
            row,
            ends_at: end,
            version: a.version,
        });
        Some((id, patient, start))
    }

    /// Queues a reminder `lead` before `start` for each lead time still ahead.
    fn schedule_reminders(
        &self,
        pending: &mut Pending,
        id: Uuid,
        patient: Uuid,
        start: OffsetDateTime,
        key: &str,
    ) {
        let now = OffsetDateTime::now_utc();
        for lead in &self.leads {
            let due = start - *lead;
            if due > now {
                let key = format!("{key}:reminder:{}", lead.whole_seconds());
                pending.enqueue(patient, Some(id), Kind::Reminder, due, key);
            }
        }
    }
}

/// What a batch's events write, folded: the newest contact and deactivation of each patient
/// and the newest version of each appointment (all version-gated, so writing them together
/// ends where applying the events one by one would: nothing the events queue depends on these
/// rows), and the messages to queue, in event order.
#[derive(Default)]
struct Pending {
    contacts: HashMap<Uuid, KeptContact>,
    deactivations: HashMap<Uuid, i32>,
    appointments: HashMap<Uuid, KeptAppointment>,
    queued: Vec<Queued>,
}

impl Pending {
    /// Keeps a patient's contact (unless a newer version is already kept); its id, if it is a UUID.
    fn keep_patient(&mut self, patient: &Patient) -> Option<Uuid> {
        let id = Uuid::parse_str(&patient.id).ok()?;
        if self.contacts.get(&id).is_some_and(|kept| kept.version >= patient.version) {
            return Some(id);
        }
        let contact = Contact {
            given_name: patient.given_name.clone(),
            email: Some(patient.email.clone()).filter(|e| !e.is_empty()),
            phone: Some(patient.phone.clone()).filter(|p| !p.is_empty()),
            active: patient.active,
        };
        let kept = KeptContact {
            patient_id: id,
            contact,
            family_name: patient.family_name.clone(),
            version: patient.version,
        };
        self.contacts.insert(id, kept);
        Some(id)
    }

    /// Keeps an appointment unless a newer version of it is already kept.
    fn keep_appointment(&mut self, appointment: KeptAppointment) {
        if self.appointments.get(&appointment.id).is_none_or(|kept| kept.version < appointment.version) {
            self.appointments.insert(appointment.id, appointment);
        }
    }

    fn enqueue(
        &mut self,
        patient_id: Uuid,
        appointment_id: Option<Uuid>,
        kind: Kind,
        due_at: OffsetDateTime,
        key: String,
    ) {
        self.queued.push(Queued { patient_id, appointment_id, kind, due_at, key });
    }

    /// Cancels an appointment's queued reminders, those of this batch's earlier events included
    /// (the messages queued so far are written first).
    async fn cancel_reminders(
        &mut self,
        tx: &mut PgConnection,
        id: Uuid,
        why: &str,
    ) -> Result<(), sqlx::Error> {
        Store::enqueue(tx, &std::mem::take(&mut self.queued)).await?;
        Store::cancel_reminders(tx, id, why).await?;
        Ok(())
    }

    async fn write(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut contacts: Vec<KeptContact> = self.contacts.into_values().collect();
        // In id order, so that two writers (replicas during a rebalance) lock rows in one order.
        contacts.sort_by_key(|c| c.patient_id);
        Store::keep_contacts(tx, &contacts).await?;
        let mut gone: Vec<(Uuid, i32)> = self.deactivations.into_iter().collect();
        gone.sort_unstable();
        Store::deactivate_contacts(tx, &gone).await?;
        let mut appointments: Vec<KeptAppointment> = self.appointments.into_values().collect();
        appointments.sort_by_key(|a| a.id);
        Store::keep_appointments(tx, &appointments).await?;
        Store::enqueue(tx, &self.queued).await
    }
}

impl Handler for Inbox {
    async fn handle(&self, batch: &[Delivery]) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.apply(batch).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: Uuid, version: i32, status: &str) -> KeptAppointment {
        KeptAppointment {
            id,
            patient_id: Uuid::nil(),
            row: AppointmentRow {
                practitioner_name: "Dr. Vega".into(),
                time_zone: "Europe/Madrid".into(),
                location: None,
                starts_at: OffsetDateTime::UNIX_EPOCH,
                status: status.into(),
            },
            ends_at: OffsetDateTime::UNIX_EPOCH,
            version,
        }
    }

    #[test]
    fn a_batch_keeps_the_newest_version_of_each_appointment_whatever_the_order() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut pending = Pending::default();
        pending.keep_appointment(version(a, 1, "booked"));
        pending.keep_appointment(version(a, 2, "cancelled"));
        pending.keep_appointment(version(b, 3, "completed"));
        pending.keep_appointment(version(b, 2, "checked_in"));
        let status = |id| pending.appointments[&id].row.status.clone();
        assert_eq!((status(a), status(b)), ("cancelled".to_owned(), "completed".to_owned()));
        assert_eq!(pending.appointments.len(), 2);
    }
}
