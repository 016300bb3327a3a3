//! `Store`: the SQL of the notifications service: contacts and appointments as the events
//! say they are, preferences, and the messages (queue and delivery log).

use std::{collections::HashMap, sync::OnceLock};

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::templates::Kind;

/// Both channels of every message.
pub const CHANNELS: [&str; 2] = ["email", "sms"];

/// A message's status as the delivery log shows it: a queued message whose claim runs is
/// being sent (stored, it stays `queued`: [`Store::claim`]).
const SHOWN_STATUS: &str =
    "CASE WHEN status = 'queued' AND lease_until >= now() THEN 'sending' ELSE status END";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Contact {
    pub given_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppointmentRow {
    pub practitioner_name: String,
    pub time_zone: String,
    pub location: Option<String>,
    pub starts_at: OffsetDateTime,
    pub status: String,
}

/// Which channels a patient accepts (both unless they said otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    pub email: bool,
    pub sms: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self { email: true, sms: true }
    }
}

/// A patient's contact as of a version of the patient record.
#[derive(Debug, Clone)]
pub struct KeptContact {
    pub patient_id: Uuid,
    pub contact: Contact,
    pub family_name: String,
    pub version: i32,
}

/// An appointment as of a version of it.
#[derive(Debug, Clone)]
pub struct KeptAppointment {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub row: AppointmentRow,
    pub ends_at: OffsetDateTime,
    pub version: i32,
}

/// A message to queue (on both channels), due at `due_at`, once per `key`.
#[derive(Debug, Clone)]
pub struct Queued {
    pub patient_id: Uuid,
    pub appointment_id: Option<Uuid>,
    pub kind: Kind,
    pub due_at: OffsetDateTime,
    pub key: String,
}

/// A message claimed for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub appointment_id: Option<Uuid>,
    pub kind: String,
    pub channel: String,
    pub attempts: i32,
}

#[derive(sqlx::FromRow)]
struct ContactOf {
    patient_id: Uuid,
    #[sqlx(flatten)]
    contact: Contact,
}

#[derive(sqlx::FromRow)]
struct AppointmentOf {
    id: Uuid,
    #[sqlx(flatten)]
    appointment: AppointmentRow,
}

/// What the messages of a pass are rendered from, by patient and appointment id.
#[derive(Debug, Clone, Default)]
pub struct Contexts {
    contacts: HashMap<Uuid, Contact>,
    preferences: HashMap<Uuid, Preferences>,
    appointments: HashMap<Uuid, AppointmentRow>,
}

impl Contexts {
    /// The message's contact, its patient's preferences and its appointment, if known.
    pub fn of(&self, message: &Claimed) -> (Option<&Contact>, Preferences, Option<&AppointmentRow>) {
        (
            self.contacts.get(&message.patient_id),
            self.preferences.get(&message.patient_id).copied().unwrap_or_default(),
            message.appointment_id.and_then(|id| self.appointments.get(&id)),
        )
    }
}

/// How an attempt to send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        provider_id: String,
        recipient: String,
        subject: Option<String>,
    },
    /// Not sent, by the patient's choice or for want of an address.
    Skipped(String),
    /// Not sent: no longer wanted (the appointment moved, was cancelled, or began).
    Cancelled(String),
    /// Try again at `at`.
    Retry {
        error: String,
        at: OffsetDateTime,
    },
    Failed(String),
}

/// One line of the delivery log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: Uuid,
    pub patient_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<Uuid>,
    #[schema(value_type = Kind)]
    pub kind: String,
    /// `email` or `sms`.
    pub channel: String,
    /// `queued`, `sending`, `sent`, `failed`, `cancelled` or `skipped`.
    pub status: String,
    /// When it is (or was) due.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub due_at: OffsetDateTime,
    pub attempts: i32,
    /// Why it failed, was skipped or cancelled, or the last provider error before a retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The address or number it went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<OffsetDateTime>,
}

/// Where a page of the log ends: the last line's due time and id.
pub type Position = (OffsetDateTime, Uuid);

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub patient_id: Option<Uuid>,
    pub appointment_id: Option<Uuid>,
    pub status: Option<String>,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Keeps patients' contacts, each as of its version (an older version never overwrites a
    /// newer), in one statement; at most one row per patient.
    pub async fn keep_contacts(tx: &mut PgConnection, contacts: &[KeptContact]) -> Result<(), sqlx::Error> {
        if contacts.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO contacts (patient_id, given_name, family_name, email, phone, active, version)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[],
                                  $7::integer[])
             ON CONFLICT (patient_id) DO UPDATE SET given_name = excluded.given_name,
                 family_name = excluded.family_name, email = excluded.email, phone = excluded.phone,
                 active = excluded.active, version = excluded.version
             WHERE contacts.version < excluded.version",
        )
        .bind(contacts.iter().map(|c| c.patient_id).collect::<Vec<_>>())
        .bind(contacts.iter().map(|c| c.contact.given_name.as_str()).collect::<Vec<_>>())
        .bind(contacts.iter().map(|c| c.family_name.as_str()).collect::<Vec<_>>())
        .bind(contacts.iter().map(|c| c.contact.email.as_deref()).collect::<Vec<_>>())
        .bind(contacts.iter().map(|c| c.contact.phone.as_deref()).collect::<Vec<_>>())
        .bind(contacts.iter().map(|c| c.contact.active).collect::<Vec<_>>())
        .bind(contacts.iter().map(|c| c.version).collect::<Vec<_>>())
        .execute(tx)
        .await?;
        Ok(())
    }

    /// Marks contacts deactivated as of each (patient, version), in one statement; at most one
    /// element per patient.
    pub async fn deactivate_contacts(tx: &mut PgConnection, gone: &[(Uuid, i32)]) -> Result<(), sqlx::Error> {
        if gone.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE contacts c SET active = false, version = d.version
             FROM unnest($1::uuid[], $2::integer[]) AS d(patient_id, version)
             WHERE c.patient_id = d.patient_id AND c.version < d.version",
        )
        .bind(gone.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(gone.iter().map(|(_, version)| *version).collect::<Vec<_>>())
        .execute(tx)
        .await?;
        Ok(())
    }

    /// Keeps appointments, each as of its version (an older version never overwrites a newer),
    /// in one statement; at most one element per appointment.
    pub async fn keep_appointments(
        tx: &mut PgConnection,
        appointments: &[KeptAppointment],
    ) -> Result<(), sqlx::Error> {
        if appointments.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&KeptAppointment) -> &str| appointments.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO appointments (id, patient_id, practitioner_name, time_zone, location, starts_at, ends_at,
                                       status, version)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                                  $7::timestamptz[], $8::text[], $9::integer[])
             ON CONFLICT (id) DO UPDATE SET practitioner_name = excluded.practitioner_name,
                 time_zone = excluded.time_zone, location = excluded.location, starts_at = excluded.starts_at,
                 ends_at = excluded.ends_at, status = excluded.status, version = excluded.version
             WHERE appointments.version < excluded.version",
        )
        .bind(appointments.iter().map(|a| a.id).collect::<Vec<_>>())
        .bind(appointments.iter().map(|a| a.patient_id).collect::<Vec<_>>())
        .bind(column(|a| &a.row.practitioner_name))
        .bind(column(|a| &a.row.time_zone))
        .bind(appointments.iter().map(|a| a.row.location.as_deref()).collect::<Vec<_>>())
        .bind(appointments.iter().map(|a| a.row.starts_at).collect::<Vec<_>>())
        .bind(appointments.iter().map(|a| a.ends_at).collect::<Vec<_>>())
        .bind(column(|a| &a.row.status))
        .bind(appointments.iter().map(|a| a.version).collect::<Vec<_>>())
        .execute(tx)
        .await?;
        Ok(())
    }

    /// Queues each message on both channels, in one statement; a message whose key was queued
    /// before is not queued again.
    pub async fn enqueue(tx: &mut PgConnection, messages: &[Queued]) -> Result<(), sqlx::Error> {
        if messages.is_empty() {
            return Ok(());
        }
        let rows = || messages.iter().flat_map(|m| CHANNELS.iter().map(move |channel| (m, *channel)));
        sqlx::query(
            "INSERT INTO messages (id, patient_id, appointment_id, kind, channel, due_at, dedupe_key)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[],
                                  $7::text[])
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(rows().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
        .bind(rows().map(|(m, _)| m.patient_id).collect::<Vec<_>>())
        .bind(rows().map(|(m, _)| m.appointment_id).collect::<Vec<_>>())
        .bind(rows().map(|(m, _)| m.kind.as_str()).collect::<Vec<_>>())
        .bind(rows().map(|(_, channel)| channel).collect::<Vec<_>>())
        .bind(rows().map(|(m, _)| m.due_at).collect::<Vec<_>>())
        .bind(rows().map(|(m, channel)| format!("{}:{channel}", m.key)).collect::<Vec<_>>())
        .execute(tx)
        .await?;
        Ok(())
    }

    /// Cancels an appointment's reminders that are neither sent nor being sent (a dispatcher's
    /// send in progress records its own outcome); returns how many.
    pub async fn cancel_reminders(
        tx: &mut PgConnection,
        appointment_id: Uuid,
        why: &str,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE messages SET status = 'cancelled', last_error = $2, lease_until = NULL
             WHERE appointment_id = $1 AND kind = 'reminder' AND status = 'queued'
               AND (lease_until IS NULL OR lease_until < now())",
        )
        .bind(appointment_id)
        .bind(why)
        .execute(tx)
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims up to `limit` due messages (and any whose claim lapsed) for `lease`: no other
    /// dispatcher takes them meanwhile.
    ///
    /// A claim sets only the lease: the message stays `queued` (the log shows it as `sending`
    /// while the lease runs, [`SHOWN_STATUS`]), so the update changes no indexed column and is
    /// heap-only, writing no index entry (migration 0002).
    ///
    /// Only messages already due are looked at: a claimed message was due when it was claimed
    /// (a retry queues it again with a later due time), so `due_at <= now()` holds for every
    /// lapsed claim too. Without that bound on the index the claim read every future reminder
    /// whenever fewer than `limit` were due: 13 ms per poll with 80 000 of them queued, against
    /// 0.04 ms (docs/benchmarks.md, 2026-12-04, third session).
    pub async fn claim(&self, limit: i64, lease: Duration) -> Result<Vec<Claimed>, sqlx::Error> {
        sqlx::query_as(
            "UPDATE messages SET lease_until = now() + $2
             WHERE id IN (SELECT id FROM messages
                          WHERE status = 'queued' AND due_at <= now() AND (lease_until IS NULL OR lease_until < now())
                          ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING id, patient_id, appointment_id, kind, channel, attempts",
        )
        .bind(limit)
        .bind(lease)
        .fetch_all(&self.pool)
        .await
    }

    /// What the messages of a pass are rendered from: their patients' contacts and
    /// preferences and their appointments, as far as known, in three queries.
    pub async fn contexts(&self, messages: &[Claimed]) -> Result<Contexts, sqlx::Error> {
        let mut patients: Vec<Uuid> = messages.iter().map(|m| m.patient_id).collect();
        patients.sort_unstable();
        patients.dedup();
        let mut appointments: Vec<Uuid> = messages.iter().filter_map(|m| m.appointment_id).collect();
        appointments.sort_unstable();
        appointments.dedup();
        let contacts: Vec<ContactOf> = sqlx::query_as(
            "SELECT patient_id, given_name, email, phone, active FROM contacts WHERE patient_id = ANY($1)",
        )
        .bind(&patients)
        .fetch_all(&self.pool)
        .await?;
        let preferences: Vec<(Uuid, bool, bool)> =
            sqlx::query_as("SELECT patient_id, email, sms FROM preferences WHERE patient_id = ANY($1)")
                .bind(&patients)
                .fetch_all(&self.pool)
                .await?;
        let visits: Vec<AppointmentOf> = if appointments.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT id, practitioner_name, time_zone, location, starts_at, status FROM appointments
                 WHERE id = ANY($1)",
            )
            .bind(&appointments)
            .fetch_all(&self.pool)
            .await?
        };
        Ok(Contexts {
            contacts: contacts.into_iter().map(|c| (c.patient_id, c.contact)).collect(),
            preferences: preferences
                .into_iter()
                .map(|(id, email, sms)| (id, Preferences { email, sms }))
                .collect(),
            appointments: visits.into_iter().map(|a| (a.id, a.appointment)).collect(),
        })
    }

    /// Records how the attempts of a pass ended, in one statement.
    pub async fn finish(&self, outcomes: &[(Uuid, Outcome)]) -> Result<(), sqlx::Error> {
        let mut ids = Vec::with_capacity(outcomes.len());
        let mut statuses = Vec::with_capacity(outcomes.len());
        let mut errors: Vec<Option<&str>> = Vec::with_capacity(outcomes.len());
        let mut recipients: Vec<Option<&str>> = Vec::with_capacity(outcomes.len());
        let mut subjects: Vec<Option<&str>> = Vec::with_capacity(outcomes.len());
        let mut providers: Vec<Option<&str>> = Vec::with_capacity(outcomes.len());
        let mut dues: Vec<Option<OffsetDateTime>> = Vec::with_capacity(outcomes.len());
        for (id, outcome) in outcomes {
            let (status, error, due) = match outcome {
                Outcome::Sent { .. } => ("sent", None, None),
                Outcome::Skipped(why) => ("skipped", Some(why.as_str()), None),
                Outcome::Cancelled(why) => ("cancelled", Some(why.as_str()), None),
                Outcome::Retry { error, at } => ("queued", Some(error.as_str()), Some(*at)),
                Outcome::Failed(error) => ("failed", Some(error.as_str()), None),
            };
            let (provider, recipient, subject) = match outcome {
                Outcome::Sent { provider_id, recipient, subject } => {
                    (Some(provider_id.as_str()), Some(recipient.as_str()), subject.as_deref())
                }
                _ => (None, None, None),
            };
            ids.push(*id);
            statuses.push(status);
            errors.push(error);
            recipients.push(recipient);
            subjects.push(subject);
            providers.push(provider);
            dues.push(due);
        }
        sqlx::query(
            "UPDATE messages m SET status = o.status, last_error = o.error, recipient = coalesce(o.recipient, m.recipient),
                    subject = coalesce(o.subject, m.subject), provider_id = o.provider_id, due_at = coalesce(o.due, m.due_at),
                    lease_until = NULL,
                    attempts = m.attempts + CASE WHEN o.status IN ('sent', 'queued', 'failed') THEN 1 ELSE 0 END,
                    sent_at = CASE WHEN o.status = 'sent' THEN clock_timestamp() END
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
                  AS o(id, status, error, recipient, subject, provider_id, due)
             WHERE m.id = o.id",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&errors)
        .bind(&recipients)
        .bind(&subjects)
        .bind(&providers)
        .bind(&dues)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn preferences(&self, patient_id: Uuid) -> Result<Preferences, sqlx::Error> {
        let row: Option<(bool, bool)> =
            sqlx::query_as("SELECT email, sms FROM preferences WHERE patient_id = $1")
                .bind(patient_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(email, sms)| Preferences { email, sms }).unwrap_or_default())
    }

    pub async fn set_preferences(
        &self,
        patient_id: Uuid,
        preferences: Preferences,
        by: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO preferences (patient_id, email, sms, updated_at, updated_by) VALUES ($1, $2, $3, now(), $4)
             ON CONFLICT (patient_id) DO UPDATE SET email = excluded.email, sms = excluded.sms,
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(patient_id)
        .bind(preferences.email)
        .bind(preferences.sms)
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One page (`limit` + 1 rows) of the log, newest due first, after `after`.
    pub async fn log(
        &self,
        filter: &LogFilter,
        limit: u32,
        after: Option<&Position>,
    ) -> Result<Vec<Delivery>, sqlx::Error> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
                "SELECT id, patient_id, appointment_id, kind, channel, {SHOWN_STATUS} AS status, due_at, attempts,
                        last_error, recipient, subject, sent_at
                 FROM messages
                 WHERE ($1::uuid IS NULL OR patient_id = $1) AND ($2::uuid IS NULL OR appointment_id = $2)
                   AND ($3::text IS NULL OR {SHOWN_STATUS} = $3)
                   AND ($4::timestamptz IS NULL OR (due_at, id) < ($4, $5))
                 ORDER BY due_at DESC, id DESC LIMIT $6"
            )
        });
        sqlx::query_as(sql)
            .bind(filter.patient_id)
            .bind(filter.appointment_id)
            .bind(&filter.status)
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await
    }
}
